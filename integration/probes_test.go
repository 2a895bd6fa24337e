package integration

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// postPod sends a POST to the pod's IP, as the hello image's toggles want.
func postPod(t *testing.T, ip, pathAndQuery string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(fmt.Sprintf("http://%s:8080%s", ip, pathAndQuery), "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s to the pod: %v", pathAndQuery, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s to the pod: got status %d, want 200", pathAndQuery, resp.StatusCode)
	}
}

// podEvents lists the events about a pod as "Type Reason Message".
func (nc *nodeCluster) podEvents(t *testing.T, name string) []string {
	t.Helper()
	evs, err := nc.cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Type+" "+e.Reason+" "+e.Message)
	}
	return out
}

// hasEvents says which of the wanted events (substrings) are missing.
func hasEvents(events []string, want ...string) string {
	for _, w := range want {
		found := false
		for _, e := range events {
			if strings.Contains(e, w) {
				found = true
			}
		}
		if !found {
			return fmt.Sprintf("no event %q among %q", w, events)
		}
	}
	return ""
}

func httpProbe(path string, port intstr.IntOrString, period, failure int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}},
		PeriodSeconds: period, FailureThreshold: failure}
}

func readyIs(want bool) func(*corev1.Pod) string {
	return func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
			return fmt.Sprintf("pod %s is %s (%s)", p.Name, p.Status.Phase, containerStates(p))
		}
		if got := podReady(p); got != want || p.Status.ContainerStatuses[0].Ready != want {
			return fmt.Sprintf("pod %s: Ready %v, container ready %v; want %v", p.Name, got, p.Status.ContainerStatuses[0].Ready, want)
		}
		return ""
	}
}

// busyboxLoop is a busybox command that runs until SIGTERM, then exits 0
// (a shell as PID 1 ignores SIGTERM without a trap).
var busyboxLoop = []string{"sh", "-c", "trap 'exit 0' TERM; touch /ok; while :; do sleep 1; done"}

func TestProbesOnDocker(t *testing.T) {
	nc := startNodes(t, 1)
	ctx := context.Background()

	t.Run("a failing liveness probe restarts the container", func(t *testing.T) {
		t.Parallel()
		nc.createPod(t, helloPod("live", corev1.Container{Name: "app", Image: testutil.HelloImage,
			LivenessProbe: httpProbe("/healthz", intstr.FromInt32(8080), 1, 2)}))
		p := nc.waitPod(t, "default", "live", 60*time.Second, readyIs(true))
		postPod(t, p.Status.PodIP, "/fail")
		nc.waitPod(t, "default", "live", 60*time.Second, func(p *corev1.Pod) string {
			cs := p.Status.ContainerStatuses[0]
			if cs.RestartCount < 1 || cs.State.Running == nil {
				return fmt.Sprintf("restartCount %d: %s", cs.RestartCount, containerStates(p))
			}
			return ""
		})
		testutil.Eventually(t, 30*time.Second, func() string {
			return hasEvents(nc.podEvents(t, "live"),
				"Warning Unhealthy Liveness probe failed: HTTP probe failed with statuscode: 500",
				"Normal Killing Container app failed liveness probe, will be restarted")
		})
		out, code := ctlOut(t, nc.kc, "", 30*time.Second, "describe", "pod", "live")
		for _, re := range []string{
			`(?m)^\s+Liveness:\s+http-get http://:8080/healthz delay=0s timeout=1s period=1s #success=1 #failure=2$`,
			`(?m)^\s+Warning\s+Unhealthy\s+.*Liveness probe failed: HTTP probe failed with statuscode: 500`,
		} {
			if code != 0 || !regexp.MustCompile(re).MatchString(out) {
				t.Fatalf("orchctl describe pod live (exit %d):\n%s\nwant a line matching %s", code, out, re)
			}
		}
	})

	t.Run("a readiness probe flips the Ready condition and the endpoints", func(t *testing.T) {
		t.Parallel()
		pod := helloPod("ready", corev1.Container{Name: "app", Image: testutil.HelloImage,
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: httpProbe("/readyz", intstr.FromString("http"), 1, 1)})
		pod.Labels = map[string]string{"probe": "ready"}
		nc.createPod(t, pod)
		if _, err := nc.cs.CoreV1().Services("default").Create(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ready"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"probe": "ready"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// endpointsAre waits until the pod's IP is listed as ready or not.
		endpointsAre := func(ip string, ready bool) {
			t.Helper()
			testutil.Eventually(t, 30*time.Second, func() string {
				eps, err := nc.cs.CoreV1().Endpoints("default").Get(context.Background(), "ready", metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				for _, s := range eps.Subsets {
					list := s.NotReadyAddresses
					if ready {
						list = s.Addresses
					}
					for _, a := range list {
						if a.IP == ip {
							return ""
						}
					}
				}
				return fmt.Sprintf("endpoints %+v do not list %s as ready=%v", eps.Subsets, ip, ready)
			})
		}
		p := nc.waitPod(t, "default", "ready", 60*time.Second, readyIs(true))
		endpointsAre(p.Status.PodIP, true)
		postPod(t, p.Status.PodIP, "/ready?state=false")
		p = nc.waitPod(t, "default", "ready", 30*time.Second, readyIs(false))
		endpointsAre(p.Status.PodIP, false)
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.State.Running == nil {
			t.Fatalf("got %s with %d restarts, want the container running as before", containerStates(p), cs.RestartCount)
		}
		postPod(t, p.Status.PodIP, "/ready")
		nc.waitPod(t, "default", "ready", 30*time.Second, readyIs(true))
		endpointsAre(p.Status.PodIP, true)
		if msg := hasEvents(nc.podEvents(t, "ready"), "Warning Unhealthy Readiness probe failed: HTTP probe failed with statuscode: 503"); msg != "" {
			t.Fatal(msg)
		}
	})

	t.Run("a startup probe holds the liveness probe back", func(t *testing.T) {
		t.Parallel()
		// The liveness probe can never pass; it may only start failing
		// once the startup probe passed, after its initial delay.
		startup := httpProbe("/healthz", intstr.FromInt32(8080), 1, 30)
		startup.InitialDelaySeconds = 3
		nc.createPod(t, helloPod("slowstart", corev1.Container{Name: "app", Image: testutil.HelloImage,
			StartupProbe:  startup,
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}}, PeriodSeconds: 1, FailureThreshold: 1},
		}))
		p := nc.waitPod(t, "default", "slowstart", 60*time.Second, func(p *corev1.Pod) string {
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
				return "not restarted yet: " + containerStates(p)
			}
			return ""
		})
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		if cs.State.Terminated != nil {
			last = cs.State.Terminated
		}
		if last == nil {
			t.Fatalf("got %+v, want the killed attempt's termination", cs)
		}
		if ran := last.FinishedAt.Sub(last.StartedAt.Time); ran < 3*time.Second {
			t.Fatalf("the first attempt ran %s, want at least the startup probe's initial delay of 3s", ran)
		}
		testutil.Eventually(t, 30*time.Second, func() string {
			return hasEvents(nc.podEvents(t, "slowstart"), "Warning Unhealthy Liveness probe failed: dial tcp", "Container app failed liveness probe")
		})
		for _, e := range nc.podEvents(t, "slowstart") {
			if strings.Contains(e, "Startup probe failed") {
				t.Fatalf("got event %q, want the startup probe to pass", e)
			}
		}
	})

	t.Run("exec and tcp probes", func(t *testing.T) {
		t.Parallel()
		nc.createPod(t, helloPod("tcp", corev1.Container{Name: "app", Image: testutil.HelloImage,
			Ports:          []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("web")}}, PeriodSeconds: 1}}))
		p := helloPod("exec", corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: busyboxLoop,
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/ok"}}}, PeriodSeconds: 1, FailureThreshold: 1}})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(2))
		nc.createPod(t, p)
		nc.waitPod(t, "default", "tcp", 60*time.Second, readyIs(true))
		p = nc.waitPod(t, "default", "exec", 60*time.Second, readyIs(true))
		id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "docker://")
		if err := runDocker("exec", id, "rm", "/ok"); err != nil {
			t.Fatal(err)
		}
		nc.waitPod(t, "default", "exec", 30*time.Second, readyIs(false))
		testutil.Eventually(t, 30*time.Second, func() string {
			return hasEvents(nc.podEvents(t, "exec"), "Warning Unhealthy Readiness probe failed: cat: can't open '/ok'")
		})
	})

	t.Run("preStop runs before the container is stopped and within the grace period", func(t *testing.T) {
		t.Parallel()
		p := helloPod("prestop", corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: busyboxLoop,
			Lifecycle: &corev1.Lifecycle{
				PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started > /poststart"}}},
				PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "test -f /poststart && sleep 2"}}},
			}})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(20))
		nc.createPod(t, p)
		nc.waitPod(t, "default", "prestop", 60*time.Second, readyIs(true))
		start := time.Now()
		if err := nc.cs.CoreV1().Pods("default").Delete(ctx, "prestop", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 60*time.Second, func() string {
			_, err := nc.cs.CoreV1().Pods("default").Get(ctx, "prestop", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return ""
			}
			return fmt.Sprintf("pod still there (%v)", err)
		})
		// The hook succeeds only in the running container (after the
		// postStart hook), and the container exits at once on SIGTERM: a
		// deletion this long means the hook ran first, to its end.
		if took := time.Since(start); took < 2*time.Second {
			t.Fatalf("deletion took %s, want at least the preStop hook's 2s", took)
		}
		for _, e := range nc.podEvents(t, "prestop") {
			if strings.Contains(e, "FailedPreStopHook") || strings.Contains(e, "FailedPostStartHook") {
				t.Fatalf("got event %q, want the hooks to succeed", e)
			}
		}
	})

	t.Run("a failing postStart hook kills the container", func(t *testing.T) {
		t.Parallel()
		p := helloPod("poststart", corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: busyboxLoop,
			Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo no way; exit 3"}}}}})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(2))
		nc.createPod(t, p)
		nc.waitPod(t, "default", "poststart", 60*time.Second, func(p *corev1.Pod) string {
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
				return "not restarted yet: " + containerStates(p)
			}
			return ""
		})
		testutil.Eventually(t, 30*time.Second, func() string {
			return hasEvents(nc.podEvents(t, "poststart"), "Warning FailedPostStartHook", "exited with 3: no way")
		})
	})
}
