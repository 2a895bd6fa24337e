// Package docker implements the agent's runtime over Docker Engine. It is
// the only package that imports the Docker SDK.
package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	rt "orch.dev/orch/node/runtime"
)

// Docker is a runtime over one Docker Engine.
type Docker struct {
	cli *client.Client
}

var _ rt.Runtime = (*Docker)(nil)

// New connects to the engine at host (a URL such as unix:///var/run/docker.sock;
// empty: DOCKER_HOST or the default socket) and makes sure the pause image
// exists.
func New(ctx context.Context, host string) (*Docker, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	d := &Docker{cli: cli}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker: cannot reach Docker Engine at %s: %w", cli.DaemonHost(), err)
	}
	if err := d.ensurePauseImage(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the connection.
func (d *Docker) Close() error { return d.cli.Close() }

func notFound(err error) bool { return cerrdefs.IsNotFound(err) }

func wrapNotFound(err error) error {
	if notFound(err) {
		return fmt.Errorf("%w: %v", rt.ErrNotFound, err)
	}
	return err
}

// Info describes the engine's machine.
func (d *Docker) Info(ctx context.Context) (rt.Info, error) {
	i, err := d.cli.Info(ctx)
	if err != nil {
		return rt.Info{}, fmt.Errorf("docker: info: %w", err)
	}
	arch := i.Architecture
	switch arch {
	case "x86_64":
		arch = "amd64"
	case "aarch64":
		arch = "arm64"
	}
	return rt.Info{
		CPUs: i.NCPU, MemoryBytes: i.MemTotal, OS: i.OSType, OSImage: i.OperatingSystem,
		Kernel: i.KernelVersion, Architecture: arch, RuntimeVersion: "docker://" + i.ServerVersion,
	}, nil
}

// EnsureImage makes ref present as policy says.
func (d *Docker) EnsureImage(ctx context.Context, ref string, policy rt.PullPolicy, auth []rt.RegistryAuth) error {
	if policy != rt.PullAlways {
		if _, err := d.cli.ImageInspect(ctx, ref); err == nil {
			return nil
		} else if !notFound(err) {
			return fmt.Errorf("docker: inspect image %s: %w", ref, err)
		}
		if policy == rt.PullNever {
			return fmt.Errorf("%w: %s", rt.ErrImageNeverPull, ref)
		}
	}
	opts := image.PullOptions{}
	if a, ok := authFor(ref, auth); ok {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: a.Server})
		if err != nil {
			return fmt.Errorf("docker: encode registry credentials: %w", err)
		}
		opts.RegistryAuth = enc
	}
	rc, err := d.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", rt.ErrImagePull, ref, err)
	}
	defer rc.Close()
	// The pull reports progress, and errors, as a stream of JSON messages.
	dec := json.NewDecoder(bufio.NewReader(rc))
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%w: %s: %v", rt.ErrImagePull, ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("%w: %s: %s", rt.ErrImagePull, ref, msg.Error)
		}
	}
}

// authFor picks the credentials for ref's registry.
func authFor(ref string, auth []rt.RegistryAuth) (rt.RegistryAuth, bool) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return rt.RegistryAuth{}, false
	}
	domain := reference.Domain(named)
	for _, a := range auth {
		s := strings.TrimPrefix(strings.TrimPrefix(a.Server, "https://"), "http://")
		s = strings.TrimSuffix(strings.SplitN(s, "/", 2)[0], "/")
		if s == domain || (domain == "docker.io" && (s == "index.docker.io" || s == "registry-1.docker.io")) {
			return a, true
		}
	}
	return rt.RegistryAuth{}, false
}

// EnsureNetwork creates the bridge network unless it exists with subnet.
func (d *Docker) EnsureNetwork(ctx context.Context, name, subnet, gateway string) error {
	n, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		for _, c := range n.IPAM.Config {
			if c.Subnet == subnet {
				return nil
			}
		}
		return fmt.Errorf("docker: network %s exists with another subnet than %s; remove it (docker network rm %s) or its containers first", name, subnet, name)
	}
	if !notFound(err) {
		return fmt.Errorf("docker: inspect network %s: %w", name, err)
	}
	_, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gateway}}},
		Labels: map[string]string{rt.LabelManaged: "true"},
	})
	if err != nil {
		return fmt.Errorf("docker: create network %s (%s): %w", name, subnet, err)
	}
	return nil
}

// containerName makes a readable, unique engine name from a container's
// labels: orch_<container>_<pod>_<namespace>_<uid>_<attempt>.
func containerName(labels map[string]string) string {
	c := labels[rt.LabelContainer]
	if labels[rt.LabelRole] == rt.RoleSandbox {
		c = "POD"
	}
	uid := labels[rt.LabelPodUID]
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return strings.Join([]string{"orch", c, labels[rt.LabelPodName], labels[rt.LabelPodNamespace], uid, labels[rt.LabelAttempt]}, "_")
}

// RunSandbox creates and starts a pod's sandbox.
func (d *Docker) RunSandbox(ctx context.Context, spec rt.SandboxSpec) (rt.Container, error) {
	cfg := &container.Config{Image: PauseImage, Hostname: spec.Hostname, Labels: spec.Labels}
	hc := &container.HostConfig{
		IpcMode:    "shareable",
		DNS:        spec.DNS,
		DNSSearch:  spec.DNSSearch,
		DNSOptions: spec.DNSOptions,
		ExtraHosts: spec.ExtraHosts,
	}
	if spec.ResolvConf != "" {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: spec.ResolvConf, Target: "/etc/resolv.conf"})
	}
	if spec.Network == "" {
		hc.NetworkMode = "host"
		cfg.Hostname = ""
	} else {
		hc.NetworkMode = container.NetworkMode(spec.Network)
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range spec.Ports {
			port := nat.Port(fmt.Sprintf("%d/%s", p.ContainerPort, strings.ToLower(p.Protocol)))
			cfg.ExposedPorts[port] = struct{}{}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, containerName(spec.Labels))
	if err != nil {
		return rt.Container{}, fmt.Errorf("docker: create sandbox: %w", err)
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		_ = d.RemoveContainer(context.WithoutCancel(ctx), created.ID) // the start error is the one to report
		return rt.Container{}, fmt.Errorf("docker: start sandbox: %w", err)
	}
	return d.InspectContainer(ctx, created.ID)
}

// CreateContainer creates (without starting) a container in a sandbox.
func (d *Docker) CreateContainer(ctx context.Context, spec rt.ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image: spec.Image, Entrypoint: spec.Command, Cmd: spec.Args, Env: spec.Env, WorkingDir: spec.WorkingDir,
		Labels: spec.Labels, User: spec.User, Tty: spec.TTY, OpenStdin: spec.Stdin, StopSignal: spec.StopSignal,
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode("container:" + spec.SandboxID),
		IpcMode:        container.IpcMode("container:" + spec.SandboxID),
		Privileged:     spec.Privileged,
		ReadonlyRootfs: spec.ReadOnlyRootFS,
		CapAdd:         spec.CapAdd,
		CapDrop:        spec.CapDrop,
		Resources:      container.Resources{Memory: spec.MemoryBytes, NanoCPUs: spec.NanoCPUs},
	}
	for _, m := range spec.Mounts {
		switch m.Type {
		case rt.MountBind:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case rt.MountTmpfs:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: m.Target, ReadOnly: m.ReadOnly,
				TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.SizeBytes, Mode: 0o1777}})
		default:
			return "", fmt.Errorf("docker: create container %s: unknown mount type %q", spec.Labels[rt.LabelContainer], m.Type)
		}
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, containerName(spec.Labels))
	if err != nil {
		return "", fmt.Errorf("docker: create container %s: %w", spec.Labels[rt.LabelContainer], wrapNotFound(err))
	}
	return created.ID, nil
}

// StartContainer starts a created container.
func (d *Docker) StartContainer(ctx context.Context, id string) error {
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("docker: start: %w", wrapNotFound(err))
	}
	return nil
}

// StopContainer signals the container and kills it after grace.
func (d *Docker) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second)
	if err := d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !notFound(err) {
		return fmt.Errorf("docker: stop: %w", err)
	}
	return nil
}

// RemoveContainer removes a container, stopping it first if needed.
func (d *Docker) RemoveContainer(ctx context.Context, id string) error {
	// Stop before removing: a running container removed with force while
	// many others are torn down at once can leave a stale endpoint behind
	// in Docker Engine 20.10, after which its network cannot be removed.
	// A stop lets the engine release the network in order.
	zero := 0
	_ = d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &zero}) // if it fails, the forced remove still stops it
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !notFound(err) {
		return fmt.Errorf("docker: remove: %w", err)
	}
	return nil
}

func stateOf(s string) rt.State {
	switch s {
	case "created":
		return rt.StateCreated
	case "running", "paused", "restarting":
		return rt.StateRunning
	case "exited", "dead", "removing":
		return rt.StateExited
	}
	return rt.StateUnknown
}

// ListContainers lists the containers that carry all the labels.
func (d *Docker) ListContainers(ctx context.Context, labels map[string]string) ([]rt.Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	out := make([]rt.Container, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, rt.Container{ID: c.ID, Name: name, Image: c.Image, ImageID: c.ImageID, Labels: c.Labels,
			State: stateOf(c.State), CreatedAt: time.Unix(c.Created, 0)})
	}
	return out, nil
}

// InspectContainer reports a container's full state.
func (d *Docker) InspectContainer(ctx context.Context, id string) (rt.Container, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return rt.Container{}, fmt.Errorf("docker: inspect: %w", wrapNotFound(err))
	}
	out := rt.Container{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), ImageID: c.Image}
	if c.Config != nil {
		out.Image, out.Labels = c.Config.Image, c.Config.Labels
	}
	if c.State != nil {
		out.State = stateOf(c.State.Status)
		out.ExitCode = c.State.ExitCode
		out.Error = c.State.Error
		out.OOMKilled = c.State.OOMKilled
		out.StartedAt = parseTime(c.State.StartedAt)
		out.FinishedAt = parseTime(c.State.FinishedAt)
	}
	out.CreatedAt = parseTime(c.Created)
	if c.NetworkSettings != nil {
		for _, n := range c.NetworkSettings.Networks {
			if n != nil && n.IPAddress != "" {
				out.IP = n.IPAddress
				break
			}
		}
	}
	return out, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 2000 {
		return time.Time{}
	}
	return t
}

// Logs streams a container's output: stdout and stderr interleaved.
func (d *Docker) Logs(ctx context.Context, id string, opts rt.LogOptions) (io.ReadCloser, error) {
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("docker: logs: %w", wrapNotFound(err))
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Timestamps: opts.Timestamps, Tail: "all"}
	if opts.Tail >= 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = opts.Since.Format(time.RFC3339Nano)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, lo)
	if err != nil {
		return nil, fmt.Errorf("docker: logs: %w", wrapNotFound(err))
	}
	if info.Config != nil && info.Config.Tty {
		return rc, nil
	}
	// Without a TTY the engine multiplexes the two streams; join them.
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		rc.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// Exec runs a command in a running container and returns its exit code.
func (d *Docker) Exec(ctx context.Context, id string, opts rt.ExecOptions) (int, error) {
	created, err := d.cli.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: opts.Cmd, Tty: opts.TTY, AttachStdin: opts.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("docker: exec: %w", wrapNotFound(err))
	}
	att, err := d.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: opts.TTY})
	if err != nil {
		return -1, fmt.Errorf("docker: exec attach: %w", err)
	}
	defer att.Close()
	if opts.TTY && opts.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					// A failed resize leaves the old size; the session goes on.
					_ = d.cli.ContainerExecResize(ctx, created.ID, container.ResizeOptions{Width: uint(sz.Width), Height: uint(sz.Height)})
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if opts.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, opts.Stdin) // the command may exit before reading everything
			_ = att.CloseWrite()
		}()
	}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if opts.TTY {
		_, err = io.Copy(stdout, att.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return -1, fmt.Errorf("docker: exec output: %w", err)
	}
	for {
		ins, err := d.cli.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, fmt.Errorf("docker: exec inspect: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SubnetGateway returns the first host address of a subnet, the bridge's
// gateway by convention.
func SubnetGateway(subnet string) (string, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return "", err
	}
	return p.Masked().Addr().Next().String(), nil
}

// Events streams container lifecycle events for containers with the labels.
func (d *Docker) Events(ctx context.Context, labels map[string]string) (<-chan rt.Event, <-chan error) {
	args := filters.NewArgs(filters.Arg("type", "container"))
	for _, a := range []string{"start", "die", "oom", "destroy"} {
		args.Add("event", a)
	}
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: args})
	out := make(chan rt.Event, 64)
	outErr := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				ev := rt.Event{ContainerID: m.Actor.ID, Action: string(m.Action), Labels: m.Actor.Attributes}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					outErr <- fmt.Errorf("docker: events: %w", err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, outErr
}
