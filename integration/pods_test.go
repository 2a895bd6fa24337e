package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

func helloPod(name string, c ...corev1.Container) *corev1.Pod {
	if len(c) == 0 {
		c = []corev1.Container{{Name: "app", Image: testutil.HelloImage}}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: c}}
}

// ctlOut runs the orchctl binary and returns its output and exit code.
func ctlOut(t *testing.T, kc string, stdin string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, orchctl, args...)
	cmd.Env = append(os.Environ(), "ORCHCONFIG="+kc)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return out.String(), code
}

func TestPodsOnDocker(t *testing.T) {
	nc := startNodes(t, 3)
	ctx := context.Background()
	node := nc.agents[0].name

	t.Run("containers of a pod share localhost", func(t *testing.T) {
		p := helloPod("duo",
			corev1.Container{Name: "server", Image: testutil.HelloImage, Env: []corev1.EnvVar{{Name: "GREETING", Value: "Hi"}}},
			corev1.Container{Name: "client", Image: testutil.HelloImage, Args: []string{"fetch", "http://localhost:8080/"}})
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		nc.createPod(t, p)
		nc.waitPod(t, "default", "duo", 60*time.Second, func(p *corev1.Pod) string {
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == "client" && c.State.Terminated != nil && c.State.Terminated.ExitCode == 0 {
					return ""
				}
			}
			return "the client has not fetched from the server yet: " + containerStates(p)
		})
		out, code := ctlOut(t, nc.kc, "", 30*time.Second, "logs", "duo", "-c", "client")
		if code != 0 || !strings.Contains(out, "Hi from duo") {
			t.Fatalf("client logs: got %d %q, want the server's greeting from host duo", code, out)
		}
	})

	t.Run("a crashing container restarts with back-off", func(t *testing.T) {
		nc.createPod(t, helloPod("crash", corev1.Container{Name: "app", Image: testutil.HelloImage, Args: []string{"exit", "1"}}))
		sawBackoff := false
		nc.waitPod(t, "default", "crash", 60*time.Second, func(p *corev1.Pod) string {
			if len(p.Status.ContainerStatuses) == 0 {
				return "no container status yet"
			}
			cs := p.Status.ContainerStatuses[0]
			if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
				sawBackoff = true
			}
			if cs.RestartCount < 2 || !sawBackoff {
				return fmt.Sprintf("restartCount %d, CrashLoopBackOff seen %v: %s", cs.RestartCount, sawBackoff, containerStates(p))
			}
			if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
				return "no last termination with exit code 1"
			}
			return ""
		})
	})

	t.Run("restartPolicy Never ends Failed with the exit code", func(t *testing.T) {
		p := helloPod("never", corev1.Container{Name: "app", Image: testutil.HelloImage, Args: []string{"exit", "3"}})
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		nc.createPod(t, p)
		got := nc.waitPod(t, "default", "never", 60*time.Second, phaseIs(corev1.PodFailed))
		if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
			t.Fatalf("got %+v, want terminated with exit code 3", got.Status.ContainerStatuses[0].State)
		}
	})

	t.Run("restartPolicy OnFailure and exit 0 ends Succeeded", func(t *testing.T) {
		p := helloPod("onfailure", corev1.Container{Name: "app", Image: testutil.HelloImage, Args: []string{"exit", "0"}})
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		nc.createPod(t, p)
		nc.waitPod(t, "default", "onfailure", 60*time.Second, phaseIs(corev1.PodSucceeded))
	})

	t.Run("init containers run first, in order", func(t *testing.T) {
		p := helloPod("inits", corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "cat /tmp/order 2>/dev/null; sleep 3600"}})
		p.Spec.InitContainers = []corev1.Container{
			{Name: "one", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "echo one"}},
			{Name: "two", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "echo two"}},
		}
		nc.createPod(t, p)
		got := nc.waitPod(t, "default", "inits", 60*time.Second, phaseIs(corev1.PodRunning))
		a, b := got.Status.InitContainerStatuses[0].State.Terminated, got.Status.InitContainerStatuses[1].State.Terminated
		if a == nil || b == nil || a.ExitCode != 0 || b.ExitCode != 0 || b.StartedAt.Before(&a.FinishedAt) {
			t.Fatalf("init containers: got %+v, want both done, the second after the first", got.Status.InitContainerStatuses)
		}
	})

	t.Run("exec and logs -f", func(t *testing.T) {
		p := helloPod("ticker", corev1.Container{Name: "app", Image: testutil.BusyboxImage,
			Command: []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"}})
		p.Spec.NodeName = node
		nc.createPod(t, p)
		nc.waitPod(t, "default", "ticker", 60*time.Second, phaseIs(corev1.PodRunning))
		out, _ := ctlOut(t, nc.kc, "", 3*time.Second, "logs", "-f", "ticker")
		if !strings.Contains(out, "tick 0") || !strings.Contains(out, "tick 4") {
			t.Fatalf("logs -f for 3 s: got %q, want ticks 0 to at least 4", out)
		}
		out, code := ctlOut(t, nc.kc, "hello from stdin\n", 30*time.Second, "exec", "-i", "ticker", "--", "sh", "-c", "cat; echo done; exit 7")
		if code != 7 || !strings.Contains(out, "hello from stdin") || !strings.Contains(out, "done") {
			t.Fatalf("exec: got %d %q, want exit 7 with stdin echoed", code, out)
		}
	})

	t.Run("limits reach Docker", func(t *testing.T) {
		p := helloPod("limited", corev1.Container{Name: "app", Image: testutil.HelloImage, Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("250m")}}})
		got := nc.createPod(t, p)
		nc.waitPod(t, "default", "limited", 60*time.Second, phaseIs(corev1.PodRunning))
		ids := dockerPS(t, "orch.pod.uid="+string(got.UID))
		found := false
		for _, id := range ids {
			out, err := exec.Command("docker", "inspect", "--format", "{{index .Config.Labels \"orch.container.role\"}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", id).Output()
			if err != nil {
				t.Fatal(err)
			}
			if f := strings.Fields(string(out)); f[0] == "app" {
				found = true
				if f[1] != fmt.Sprint(64<<20) || f[2] != "250000000" {
					t.Fatalf("docker inspect: got memory %s nanocpus %s, want %d and 250000000", f[1], f[2], 64<<20)
				}
			}
		}
		if !found {
			t.Fatal("no app container found")
		}
	})

	t.Run("a deleted pod's containers go within its grace period", func(t *testing.T) {
		// The app ignores SIGTERM for a minute: only the grace period ends it.
		p := helloPod("graceful", corev1.Container{Name: "app", Image: testutil.HelloImage, Env: []corev1.EnvVar{{Name: "TERM_DELAY", Value: "60s"}}})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(3))
		got := nc.createPod(t, p)
		nc.waitPod(t, "default", "graceful", 60*time.Second, phaseIs(corev1.PodRunning))
		start := time.Now()
		if err := nc.cs.CoreV1().Pods("default").Delete(ctx, "graceful", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, func() string {
			if ids := dockerPS(t, "orch.pod.uid="+string(got.UID)); len(ids) > 0 {
				return fmt.Sprintf("%d containers of the deleted pod left", len(ids))
			}
			return ""
		})
		took := time.Since(start)
		t.Logf("containers gone %v after the delete (grace period 3s)", took)
		if took > 5*time.Second {
			t.Fatalf("containers gone after %v, want within the 3 s grace period + 2 s", took)
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			if _, err := nc.cs.CoreV1().Pods("default").Get(ctx, "graceful", metav1.GetOptions{}); err == nil {
				return "the pod object is still there"
			}
			return ""
		})
	})

	t.Run("an unschedulable pod gets a FailedScheduling event", func(t *testing.T) {
		p := helloPod("huge", corev1.Container{Name: "app", Image: testutil.HelloImage, Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}}})
		nc.createPod(t, p)
		testutil.Eventually(t, 30*time.Second, func() string {
			evs, err := nc.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=huge"})
			if err != nil {
				return err.Error()
			}
			for _, e := range evs.Items {
				if e.Reason == "FailedScheduling" && strings.Contains(e.Message, "0/3 nodes are available: 3 Insufficient cpu") {
					return ""
				}
			}
			return fmt.Sprintf("no FailedScheduling event naming insufficient cpu among %d events", len(evs.Items))
		})
	})

	t.Run("a pull from an unreachable registry backs off", func(t *testing.T) {
		nc.createPod(t, helloPod("nopull", corev1.Container{Name: "app", Image: "127.0.0.1:9/orch/absent:1"}))
		seen := map[string]bool{}
		nc.waitPod(t, "default", "nopull", 60*time.Second, func(p *corev1.Pod) string {
			for _, c := range p.Status.ContainerStatuses {
				if w := c.State.Waiting; w != nil {
					seen[w.Reason] = true
					if w.Reason == "ErrImagePull" && !strings.Contains(w.Message, "127.0.0.1:9") {
						t.Fatalf("got message %q, want the registry's error naming it", w.Message)
					}
				}
			}
			if !seen["ErrImagePull"] || !seen["ImagePullBackOff"] {
				return fmt.Sprintf("seen %v, want ErrImagePull then ImagePullBackOff", seen)
			}
			return ""
		})
	})

	t.Run("pods spread over the nodes", func(t *testing.T) {
		for i := 0; i < 6; i++ {
			nc.createPod(t, helloPod(fmt.Sprintf("spread-%d", i)))
		}
		testutil.Eventually(t, 60*time.Second, func() string {
			perNode := map[string]int{}
			for i := 0; i < 6; i++ {
				p, err := nc.cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("spread-%d", i), metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				if p.Status.Phase != corev1.PodRunning {
					return p.Name + " is " + string(p.Status.Phase)
				}
				perNode[p.Spec.NodeName]++
			}
			if len(perNode) != 3 {
				return fmt.Sprintf("pods on %d nodes (%v), want all 3", len(perNode), perNode)
			}
			return ""
		})
	})
}
