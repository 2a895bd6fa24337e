package agent

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
	rt "orch.dev/orch/node/runtime"
)

// probeRuntime is an engine in memory, enough for pod workers: containers
// start and stop at once (or exit when told), exec answers from a
// function, and every call that acts on a container is logged.
type probeRuntime struct {
	mu     sync.Mutex
	n      int
	cs     map[string]*rt.Container
	calls  []string
	execFn func(c *rt.Container, cmd []string) int
	events chan rt.Event
}

func newProbeRuntime() *probeRuntime {
	return &probeRuntime{cs: map[string]*rt.Container{}, events: make(chan rt.Event, 100)}
}

func (f *probeRuntime) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *probeRuntime) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *probeRuntime) Info(context.Context) (rt.Info, error) {
	return rt.Info{CPUs: 2, MemoryBytes: 1 << 30}, nil
}
func (f *probeRuntime) EnsureImage(context.Context, string, rt.PullPolicy, []rt.RegistryAuth) error {
	return nil
}
func (f *probeRuntime) EnsureNetwork(context.Context, string, string, string) error { return nil }

func (f *probeRuntime) add(labels map[string]string, image string) *rt.Container {
	f.n++
	c := &rt.Container{ID: "c" + strconv.Itoa(f.n), Labels: labels, Image: image, State: rt.StateCreated, CreatedAt: time.Now()}
	f.cs[c.ID] = c
	return c
}

func (f *probeRuntime) RunSandbox(_ context.Context, spec rt.SandboxSpec) (rt.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.add(spec.Labels, "pause")
	c.State, c.StartedAt, c.IP = rt.StateRunning, time.Now(), "10.42.0.9"
	return *c, nil
}

func (f *probeRuntime) CreateContainer(_ context.Context, spec rt.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.add(spec.Labels, spec.Image).ID, nil
}

func (f *probeRuntime) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cs[id]
	if !ok {
		return rt.ErrNotFound
	}
	c.State, c.StartedAt = rt.StateRunning, time.Now()
	f.log("start %s", c.Labels[rt.LabelContainer])
	return nil
}

func (f *probeRuntime) StopContainer(_ context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	c, ok := f.cs[id]
	if !ok {
		f.mu.Unlock()
		return nil
	}
	wasRunning := c.State == rt.StateRunning
	if wasRunning {
		c.State, c.FinishedAt, c.ExitCode = rt.StateExited, time.Now(), 143
		if c.Labels[rt.LabelRole] != rt.RoleSandbox {
			f.log("stop %s grace=%s", c.Labels[rt.LabelContainer], grace)
		}
	}
	ev := rt.Event{ContainerID: id, Action: "die", Labels: c.Labels}
	f.mu.Unlock()
	if wasRunning {
		f.events <- ev
	}
	return nil
}

func (f *probeRuntime) RemoveContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cs, id)
	return nil
}

func (f *probeRuntime) ListContainers(_ context.Context, labels map[string]string) ([]rt.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rt.Container
	for _, c := range f.cs {
		match := true
		for k, v := range labels {
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (f *probeRuntime) InspectContainer(_ context.Context, id string) (rt.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cs[id]
	if !ok {
		return rt.Container{}, rt.ErrNotFound
	}
	return *c, nil
}

func (f *probeRuntime) Logs(context.Context, string, rt.LogOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *probeRuntime) Exec(_ context.Context, id string, opts rt.ExecOptions) (int, error) {
	f.mu.Lock()
	c, ok := f.cs[id]
	if !ok || c.State != rt.StateRunning {
		f.mu.Unlock()
		return -1, fmt.Errorf("container %s is not running: %w", id, rt.ErrNotFound)
	}
	f.log("exec %s %s", c.Labels[rt.LabelContainer], strings.Join(opts.Cmd, " "))
	fn := f.execFn
	cc := *c
	f.mu.Unlock()
	if fn == nil {
		return 0, nil
	}
	return fn(&cc, opts.Cmd), nil
}

func (f *probeRuntime) Events(ctx context.Context, _ map[string]string) (<-chan rt.Event, <-chan error) {
	return f.events, make(chan error)
}

func (f *probeRuntime) setExec(fn func(c *rt.Container, cmd []string) int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execFn = fn
}

// healthAgent is an agent over a probeRuntime and a fake API, running the
// pod workers, the engine event watch and the status writer.
type healthAgent struct {
	*Agent
	rt     *probeRuntime
	events *record.FakeRecorder
	client *fake.Clientset
	first  *corev1.Pod
}

func startHealthAgent(t *testing.T, pod *corev1.Pod) *healthAgent {
	t.Helper()
	frt := newProbeRuntime()
	a, err := New(Config{Name: "n1", NodeIP: "192.0.2.10", DataDir: t.TempDir(), Resync: 200 * time.Millisecond}, frt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pod.Spec.NodeName = "n1"
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	if pod.UID == "" {
		pod.UID = "uid-" + "1"
	}
	client := fake.NewSimpleClientset(pod)
	rec := record.NewFakeRecorder(1000)
	a.ctx, a.client, a.recorder, a.network = ctx, client, rec, "orch-n1"
	a.status = newStatusManager(client, a.log)
	go a.status.run(ctx)
	go a.watchEngine(ctx)
	t.Cleanup(func() { a.probes.StopPod(string(pod.UID)) })
	return &healthAgent{Agent: a, rt: frt, events: rec, client: client, first: pod}
}

// start hands the pod to its worker; tests set the runtime's exec answers
// first, so no probe or hook runs against the default answer.
func (h *healthAgent) start() { h.podChanged(h.first) }

// eventsSoFar drains the recorder into a list.
func (h *healthAgent) eventsSoFar(seen *[]string) []string {
	for {
		select {
		case e := <-h.events.Events:
			*seen = append(*seen, e)
		default:
			return *seen
		}
	}
}

func (h *healthAgent) pod(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := h.client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func containsAll(list []string, subs ...string) string {
	for _, s := range subs {
		found := false
		for _, l := range list {
			if strings.Contains(l, s) {
				found = true
			}
		}
		if !found {
			return fmt.Sprintf("no %q among %q", s, list)
		}
	}
	return ""
}

func probedPod(c corev1.Container) *corev1.Pod {
	if c.Name == "" {
		c.Name = "app"
	}
	c.Image = "img"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To(int64(20)),
			Containers: []corev1.Container{c}},
	}
}

func execHandler(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

func TestLivenessFailureRestartsTheContainer(t *testing.T) {
	pod := probedPod(corev1.Container{LivenessProbe: &corev1.Probe{ProbeHandler: execHandler("check"),
		PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1, TerminationGracePeriodSeconds: ptr.To(int64(5))}})
	h := startHealthAgent(t, pod)
	// The first attempt fails its probe; later ones pass.
	h.rt.setExec(func(c *rt.Container, cmd []string) int {
		if c.Labels[rt.LabelAttempt] == "0" {
			return 1
		}
		return 0
	})
	h.start()
	var events []string
	testutil.Eventually(t, 30*time.Second, func() string {
		p := h.pod(t, pod)
		if len(p.Status.ContainerStatuses) == 0 {
			return "no container status yet"
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount < 1 || cs.State.Running == nil {
			return fmt.Sprintf("restartCount %d, state %+v; want a restarted, running container", cs.RestartCount, cs.State)
		}
		return containsAll(h.eventsSoFar(&events),
			"Warning Unhealthy Liveness probe failed: command \"check\" exited with 1",
			"Normal Killing Container app failed liveness probe, will be restarted")
	})
	calls := h.rt.callLog()
	if msg := containsAll(calls, "stop app grace=5s"); msg != "" {
		t.Fatalf("%s: want the probe's grace period for the kill", msg)
	}
	if n := h.probes.Len(); n != 1 {
		t.Fatalf("got %d probed containers, want 1 (the running attempt)", n)
	}
}

func TestReadinessDrivesReadyAndStarted(t *testing.T) {
	pod := probedPod(corev1.Container{
		StartupProbe:   &corev1.Probe{ProbeHandler: execHandler("started"), PeriodSeconds: 1, FailureThreshold: 100, TimeoutSeconds: 1},
		ReadinessProbe: &corev1.Probe{ProbeHandler: execHandler("ready"), PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1},
	})
	h := startHealthAgent(t, pod)
	var mu sync.Mutex
	answers := map[string]int{"started": 1, "ready": 1}
	set := func(cmd string, code int) {
		mu.Lock()
		defer mu.Unlock()
		answers[cmd] = code
	}
	h.rt.setExec(func(_ *rt.Container, cmd []string) int {
		mu.Lock()
		defer mu.Unlock()
		return answers[cmd[0]]
	})
	h.start()
	state := func(wantStarted, wantReady bool) func() string {
		return func() string {
			p := h.pod(t, pod)
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
				return "container not running yet"
			}
			cs := p.Status.ContainerStatuses[0]
			ready := condStatus(p.Status, corev1.PodReady) == corev1.ConditionTrue
			cready := condStatus(p.Status, corev1.ContainersReady) == corev1.ConditionTrue
			if cs.Started == nil || *cs.Started != wantStarted || cs.Ready != wantReady || ready != wantReady || cready != wantReady {
				return fmt.Sprintf("started=%v ready=%v Ready=%v ContainersReady=%v; want started=%v ready=%v", ptr.Deref(cs.Started, false), cs.Ready, ready, cready, wantStarted, wantReady)
			}
			return ""
		}
	}
	testutil.Eventually(t, 30*time.Second, state(false, false))
	// Readiness is held back while the startup probe fails.
	set("ready", 0)
	testutil.Eventually(t, 30*time.Second, func() string {
		for _, c := range h.rt.callLog() {
			if strings.HasPrefix(c, "exec app ready") {
				return "readiness probed before the startup probe passed"
			}
		}
		var n int
		for _, c := range h.rt.callLog() {
			if strings.HasPrefix(c, "exec app started") {
				n++
			}
		}
		if n < 2 {
			return fmt.Sprintf("startup probed %d times, want 2", n)
		}
		return ""
	})
	set("started", 0)
	testutil.Eventually(t, 30*time.Second, state(true, true))
	set("ready", 1)
	testutil.Eventually(t, 30*time.Second, state(true, false))
	set("ready", 0)
	testutil.Eventually(t, 30*time.Second, state(true, true))
	var events []string
	if msg := containsAll(h.eventsSoFar(&events), "Warning Unhealthy Readiness probe failed", "Warning Unhealthy Startup probe failed"); msg != "" {
		t.Fatal(msg)
	}
}

func TestHooks(t *testing.T) {
	t.Run("preStop runs before the stop and its time counts against the grace period", func(t *testing.T) {
		pod := probedPod(corev1.Container{Lifecycle: &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"hello"}}},
			PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"bye"}}},
		}})
		h := startHealthAgent(t, pod)
		h.rt.setExec(func(_ *rt.Container, cmd []string) int {
			if cmd[0] == "bye" {
				time.Sleep(1100 * time.Millisecond) // a slow hook: the grace left is less than 20 s
			}
			return 0
		})
		h.start()
		testutil.Eventually(t, 30*time.Second, func() string {
			if p := h.pod(t, pod); len(p.Status.ContainerStatuses) == 0 || !p.Status.ContainerStatuses[0].Ready {
				return "container not ready yet"
			}
			return ""
		})
		now := metav1.Now()
		cur := h.pod(t, pod)
		cur.DeletionTimestamp, cur.DeletionGracePeriodSeconds = &now, ptr.To(int64(20))
		h.podChanged(cur)
		var stop string
		testutil.Eventually(t, 30*time.Second, func() string {
			calls := h.rt.callLog()
			for _, c := range calls {
				if strings.HasPrefix(c, "stop app") {
					stop = c
				}
			}
			want := []string{"start app", "exec app hello", "exec app bye", "stop app"}
			i := 0
			for _, c := range calls {
				if i < len(want) && strings.HasPrefix(c, want[i]) {
					i++
				}
			}
			if i < len(want) {
				return fmt.Sprintf("calls %q, want in order %q", calls, want)
			}
			return ""
		})
		graceStr := strings.TrimPrefix(stop, "stop app grace=")
		grace, err := time.ParseDuration(graceStr)
		if err != nil {
			t.Fatal(err)
		}
		if grace >= 19*time.Second || grace < 10*time.Second {
			t.Fatalf("got a stop grace of %s, want 20s less the hook's time", grace)
		}
	})

}
