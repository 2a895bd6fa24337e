// Package runtime is the agent's view of a container engine: the few
// operations pods need (a sandbox per pod, containers joining it, images,
// logs, exec, one network), in terms of pods rather than of an engine's
// API. The only implementation is runtime/docker, the one package that
// imports the Docker SDK.
//
// Containers carry labels that name their pod and role, so an agent that
// restarts finds, adopts and cleans up the containers it made.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Labels every container of a pod carries.
const (
	LabelManaged      = "orch.managed"        // "true"
	LabelNode         = "orch.node"           // the agent that made it
	LabelPodUID       = "orch.pod.uid"        // the pod's UID
	LabelPodNamespace = "orch.pod.namespace"  // the pod's namespace
	LabelPodName      = "orch.pod.name"       // the pod's name
	LabelContainer    = "orch.container.name" // the container's name in the pod spec
	LabelRole         = "orch.container.role" // "sandbox", "init" or "app"
	LabelAttempt      = "orch.container.attempt"
	LabelSandbox      = "orch.sandbox.id" // on init and app containers: the sandbox they joined
)

// Container roles.
const (
	RoleSandbox = "sandbox"
	RoleInit    = "init"
	RoleApp     = "app"
)

// Sentinel errors.
var (
	// ErrNotFound means the container, image or network does not exist.
	ErrNotFound = errors.New("runtime: not found")
	// ErrImagePull means an image could not be pulled; the error text is
	// the registry's message.
	ErrImagePull = errors.New("runtime: image pull failed")
	// ErrImageNeverPull means the image is absent and the policy is Never.
	ErrImageNeverPull = errors.New("runtime: image not present and pull policy is Never")
)

// PullPolicy says when to pull an image.
type PullPolicy string

// Pull policies, as Kubernetes names them.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// RegistryAuth is one set of registry credentials.
type RegistryAuth struct {
	Server   string
	Username string
	Password string
}

// SandboxSpec describes a pod's sandbox: the container that owns the pod's
// network and IPC namespaces.
type SandboxSpec struct {
	Labels   map[string]string
	Hostname string
	// Network is the engine network to attach to; empty for the host's
	// network (hostNetwork pods).
	Network string
	// Ports are published on the sandbox, for hostPort.
	Ports      []PortMapping
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	// ResolvConf is a host file bound at /etc/resolv.conf instead of the
	// one the engine writes from DNS, DNSSearch and DNSOptions.
	ResolvConf string
	// ExtraHosts are "name:ip" entries for /etc/hosts.
	ExtraHosts []string
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	HostIP        string
	HostPort      int32
	ContainerPort int32
	Protocol      string // "tcp" or "udp"
}

// ContainerSpec describes an application or init container of a pod.
type ContainerSpec struct {
	Labels     map[string]string
	Image      string
	Command    []string // the image's entrypoint when empty
	Args       []string // the image's command when empty
	Env        []string // KEY=VALUE
	WorkingDir string
	// SandboxID is the sandbox whose namespaces the container joins.
	SandboxID string
	TTY       bool
	Stdin     bool
	// Limits: 0 means unlimited.
	MemoryBytes int64
	NanoCPUs    int64
	// Security.
	User           string // "UID" or "UID:GID"; empty: the image's
	Privileged     bool
	ReadOnlyRootFS bool
	CapAdd         []string
	CapDrop        []string
	Mounts         []Mount
	// StopSignal overrides the image's stop signal (default SIGTERM).
	StopSignal string
}

// Mount is a filesystem mounted into a container: a host path bound into
// it (the default), or a fresh in-memory filesystem of its own.
type Mount struct {
	Type     MountType
	Source   string // the host path (bind); unused for tmpfs
	Target   string
	ReadOnly bool
	// SizeBytes limits a tmpfs; 0 takes the engine's default.
	SizeBytes int64
}

// MountType says what a Mount mounts.
type MountType string

// Mount types.
const (
	MountBind  MountType = ""      // Source, a host file or directory
	MountTmpfs MountType = "tmpfs" // a tmpfs private to the container
)

// State is what a container is doing.
type State string

// Container states.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Container is a container as the engine reports it.
type Container struct {
	ID         string
	Name       string
	Image      string
	ImageID    string
	Labels     map[string]string
	State      State
	ExitCode   int
	Error      string // the engine's message when the container could not start
	OOMKilled  bool
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// IP is the container's address on its network (sandboxes).
	IP string
}

// LogOptions select container logs.
type LogOptions struct {
	Follow     bool
	Tail       int // lines from the end; negative: all
	Timestamps bool
	Since      time.Time
}

// ExecOptions describe a command run in a container.
type ExecOptions struct {
	Cmd    []string
	TTY    bool
	Stdin  io.Reader // nil: no stdin
	Stdout io.Writer
	Stderr io.Writer // ignored with a TTY
	// Resize delivers terminal sizes for a TTY.
	Resize <-chan TermSize
}

// TermSize is a terminal's size.
type TermSize struct{ Width, Height uint16 }

// Info describes the machine and engine.
type Info struct {
	CPUs            int
	MemoryBytes     int64
	OS              string
	OSImage         string
	Kernel          string
	Architecture    string
	RuntimeVersion  string // e.g. "docker://20.10.24"
	MaxContainerLog int64
}

// Event says a container started, stopped (died) or was removed.
type Event struct {
	ContainerID string
	Action      string // "start", "die", "oom", "destroy"
	Labels      map[string]string
}

// Runtime is the container engine, in pod terms.
type Runtime interface {
	Info(ctx context.Context) (Info, error)
	// EnsureImage makes the image present as policy says, pulling with
	// auth when needed. Pull failures wrap ErrImagePull.
	EnsureImage(ctx context.Context, ref string, policy PullPolicy, auth []RegistryAuth) error
	// EnsureNetwork creates a bridge network with the subnet unless it
	// exists with it.
	EnsureNetwork(ctx context.Context, name, subnet, gateway string) error
	RunSandbox(ctx context.Context, spec SandboxSpec) (Container, error)
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends the stop signal, waits up to grace, then kills.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
	// ListContainers lists containers, running or not, with all the labels.
	ListContainers(ctx context.Context, labels map[string]string) ([]Container, error)
	InspectContainer(ctx context.Context, id string) (Container, error)
	Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error)
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)
	// Events streams the lifecycle events of containers with all the
	// labels until ctx ends or the stream breaks (an error is sent then).
	Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error)
}
