// Package agent is the node agent (`orchd agent`): it joins the cluster,
// registers its Node, and runs the pods bound to it on Docker Engine, one
// worker per pod converging the engine to the pod's spec.
//
// The agent owns only containers labelled with its node name, so several
// agents can share one engine (as in tests), and an agent restarted after a
// crash finds its containers by label: it adopts those of pods still bound
// to it and removes the rest.
package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"orch.dev/orch/internal/gossip"
	"orch.dev/orch/internal/logging"
	"orch.dev/orch/node/prober"
	rt "orch.dev/orch/node/runtime"
)

// Config configures an agent.
type Config struct {
	Name    string
	DataDir string
	// Join lists gossip addresses of cluster members; Token is the cluster
	// token.
	Join  []string
	Token string
	// NodeIP is the address the node is reached at; GossipAddr and
	// EndpointAddr are where the agent listens.
	NodeIP       string
	GossipAddr   string
	EndpointAddr string
	Labels       map[string]string
	Taints       []corev1.Taint
	// Gossip timing (see internal/gossip); zero takes the defaults.
	GossipProbeInterval time.Duration
	GossipSuspicionMult int
	MaxPods             int
	// ClusterCIDR is the cluster's pod network (--cluster-cidr); empty
	// takes the /16 around the node's pod subnet (see network.go).
	ClusterCIDR string
	// ClusterDomain is the DNS zone of Services and pods (--cluster-domain,
	// default cluster.local).
	ClusterDomain string
	// ProxyMode picks the service proxy (--proxy-mode): "nftables",
	// "userspace", or "auto" (the default: nftables where it works, else
	// userspace with a warning).
	ProxyMode string
	Logger    *slog.Logger
	// Resync is how often each pod is looked at without an event;
	// StatusInterval how often the Node's status is refreshed.
	Resync         time.Duration
	StatusInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = logging.Discard
	}
	if c.MaxPods == 0 {
		c.MaxPods = 110
	}
	if c.Resync == 0 {
		c.Resync = 10 * time.Second
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 30 * time.Second
	}
}

// Agent is a running node agent.
type Agent struct {
	cfg Config
	log *slog.Logger
	rt  rt.Runtime
	now func() time.Time

	pool       *gossip.Pool
	restConfig *rest.Config
	client     kubernetes.Interface
	recorder   record.EventRecorder
	network    string
	podCIDR    string
	// clusterDNS is the address of the node's DNS server that pods on the
	// pod network resolve through; empty when it could not start.
	clusterDNS string
	// usageCheck overrides how often emptyDir usage is measured (tests).
	usageCheck time.Duration

	backoff     *backoff
	pullBackoff *backoff
	status      *statusManager
	volumes     *volumeManager
	probes      *prober.Manager

	mu        sync.Mutex
	ctx       context.Context
	workers   map[types.UID]*podWorker
	podLister corelisters.PodLister
	inspected map[string]rt.Container
}

// New returns an agent over the runtime; Run starts it.
func New(cfg Config, runtime rt.Runtime) (*Agent, error) {
	cfg.setDefaults()
	if cfg.Name == "" {
		return nil, fmt.Errorf("--name is required")
	}
	// Volumes and the pods' resolv.conf are bound into containers from
	// under the data dir, and the engine takes absolute paths only.
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dir
	return &Agent{
		cfg: cfg, log: cfg.Logger.With("node", cfg.Name), rt: runtime, now: time.Now,
		backoff: newBackoff(), pullBackoff: newBackoff(),
		volumes: newVolumeManager(cfg.DataDir),
		probes:  prober.NewManager(prober.NewRunner(runtime, nil), nil),
		workers: map[types.UID]*podWorker{}, inspected: map[string]rt.Container{},
	}, nil
}

// event records an event about a pod.
func (a *Agent) event(pod *corev1.Pod, typ, reason, format string, args ...any) {
	if a.recorder != nil {
		a.recorder.Eventf(pod, typ, reason, format, args...)
	}
}

func (a *Agent) startRecorder(ctx context.Context) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	a.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "orch-agent", Host: a.cfg.Name})
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
}

// inspect returns a container with its full state, from a cache: a
// container's details change only with its state.
func (a *Agent) inspect(ctx context.Context, c rt.Container) (rt.Container, error) {
	a.mu.Lock()
	cached, ok := a.inspected[c.ID]
	a.mu.Unlock()
	if ok && cached.State == c.State {
		return cached, nil
	}
	full, err := a.rt.InspectContainer(ctx, c.ID)
	if err != nil {
		return rt.Container{}, err
	}
	a.mu.Lock()
	a.inspected[c.ID] = full
	a.mu.Unlock()
	return full, nil
}

func (a *Agent) forgetInspect(id string) {
	a.mu.Lock()
	delete(a.inspected, id)
	a.mu.Unlock()
}

// pullAuth reads the pod's imagePullSecrets (dockerconfigjson or the older
// dockercfg) into registry credentials.
func (a *Agent) pullAuth(ctx context.Context, pod *corev1.Pod) []rt.RegistryAuth {
	var out []rt.RegistryAuth
	for _, ref := range pod.Spec.ImagePullSecrets {
		sec, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			a.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", "Unable to retrieve image pull secret %s: %v", ref.Name, err)
			continue
		}
		auths, err := parseDockerConfig(sec)
		if err != nil {
			a.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", "Image pull secret %s: %v", ref.Name, err)
			continue
		}
		out = append(out, auths...)
	}
	return out
}

// parseDockerConfig reads registry credentials from a pull secret.
func parseDockerConfig(sec *corev1.Secret) ([]rt.RegistryAuth, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	var auths map[string]entry
	switch sec.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]entry `json:"auths"`
		}
		if err := json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON: %v", corev1.DockerConfigJsonKey, err)
		}
		auths = cfg.Auths
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(sec.Data[corev1.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON: %v", corev1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %s is not a registry credential (want %s)", sec.Type, corev1.SecretTypeDockerConfigJson)
	}
	var out []rt.RegistryAuth
	for server, e := range auths {
		user, pass := e.Username, e.Password
		if e.Auth != "" && user == "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("auth for %s is not base64: %v", server, err)
			}
			u, p, _ := strings.Cut(string(dec), ":")
			user, pass = u, p
		}
		out = append(out, rt.RegistryAuth{Server: server, Username: user, Password: pass})
	}
	return out, nil
}

// runPods watches the pods bound to this node and keeps a worker for each.
func (a *Agent) runPods(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + a.cfg.Name
	}))
	if err := a.startConfigSource(ctx); err != nil {
		return err
	}
	if err := a.startVolumeSource(ctx); err != nil {
		return err
	}
	inf := factory.Core().V1().Pods()
	a.mu.Lock()
	a.podLister = inf.Lister()
	a.mu.Unlock()
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				a.podGone(p.UID)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return ctx.Err()
	}
	a.log.Info("watching the pods bound to this node")
	go a.watchEngine(ctx)
	go a.gcVolumes(ctx)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		a.removeOrphans(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != a.cfg.Name {
		return
	}
	a.mu.Lock()
	w := a.workers[pod.UID]
	if w == nil {
		w = &podWorker{a: a, uid: pod.UID, kick: make(chan struct{}, 1), pullFail: map[string]pullFailure{}, backedOff: map[string]int{}}
		a.workers[pod.UID] = w
		go w.run(a.ctx)
	}
	a.mu.Unlock()
	w.setPod(pod)
}

func (a *Agent) podGone(uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		w.setPod(nil)
	}
}

func (a *Agent) forgetWorker(uid types.UID) {
	a.mu.Lock()
	delete(a.workers, uid)
	a.mu.Unlock()
	a.status.forget(uid)
	a.probes.StopPod(string(uid))
	a.backoff.forget(string(uid))
	a.pullBackoff.forget(string(uid))
}

// removeOrphans removes containers of this node whose pods are not bound
// to it any more (deleted while the agent was down, or never ours).
func (a *Agent) removeOrphans(ctx context.Context) {
	cs, err := a.rt.ListContainers(ctx, map[string]string{rt.LabelNode: a.cfg.Name})
	if err != nil {
		a.log.Warn("list containers", "err", err)
		return
	}
	orphans := map[string][]rt.Container{}
	a.mu.Lock()
	for _, c := range cs {
		uid := types.UID(c.Labels[rt.LabelPodUID])
		if _, ok := a.workers[uid]; !ok {
			orphans[string(uid)] = append(orphans[string(uid)], c)
		}
	}
	a.mu.Unlock()
	for uid, list := range orphans {
		a.log.Info("removing containers of a pod not bound to this node", "pod", list[0].Labels[rt.LabelPodNamespace]+"/"+list[0].Labels[rt.LabelPodName], "uid", uid, "containers", len(list))
		a.removeAll(ctx, list, 2*time.Second)
	}
}

// watchEngine turns engine events into pod syncs, so a container that
// stops is seen at once rather than at the next resync.
func (a *Agent) watchEngine(ctx context.Context) {
	for ctx.Err() == nil {
		events, errs := a.rt.Events(ctx, map[string]string{rt.LabelNode: a.cfg.Name})
	loop:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					break loop
				}
				a.forgetInspect(ev.ContainerID)
				if ev.Action == "die" || ev.Action == "destroy" {
					a.probes.Stop(ev.ContainerID) // no probe runs against a stopped container
				}
				a.mu.Lock()
				w := a.workers[types.UID(ev.Labels[rt.LabelPodUID])]
				a.mu.Unlock()
				if w != nil {
					w.poke()
				}
			case err := <-errs:
				a.log.Warn("engine events stopped; resubscribing", "err", err)
				break loop
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
