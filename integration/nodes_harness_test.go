package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/internal/testutil"
)

// nodeCluster is one orchd server and agents on this machine, sharing its
// Docker Engine; each agent owns only the containers labelled with its name.
type nodeCluster struct {
	*cluster
	agents []*proc
	cs     *kubernetes.Clientset
	kc     string // admin kubeconfig
}

// startNodes starts a server and n agents and waits for n Ready nodes.
func startNodes(t testing.TB, n int) *nodeCluster {
	t.Helper()
	return startNodesWith(t, n)
}

// startNodesWith is startNodes with extra flags for every agent.
func startNodesWith(t testing.TB, n int, agentFlags ...string) *nodeCluster {
	t.Helper()
	testutil.RequireDocker(t)
	testutil.EnsureImages(t)
	c := startCluster(t, 1)
	nc := &nodeCluster{cluster: c, cs: c.procs[0].client(), kc: filepath.Join(c.procs[0].dir, "admin.kubeconfig")}
	base := t.TempDir()
	prefix := fmt.Sprintf("it%04d", rand.IntN(10000))
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-n%d", prefix, i)
		p := &proc{t: t, name: name, dir: filepath.Join(base, name), gossip: freePort(t), api: freePort(t), logPath: filepath.Join(base, name+".log")}
		p.args = []string{"agent", "--name", name, "--data-dir", p.dir, "--join", fmt.Sprintf("127.0.0.1:%d", c.procs[0].gossip),
			"--token", c.token, "--node-ip", "127.0.0.1", "--gossip-addr", fmt.Sprintf("127.0.0.1:%d", p.gossip),
			"--endpoint-addr", fmt.Sprintf("127.0.0.1:%d", p.api)}
		p.args = append(p.args, agentFlags...)
		// Cleanups run last first: the agent stops, then its containers
		// go, then its network.
		t.Cleanup(func() {
			if out, err := exec.Command("docker", "network", "rm", "orch-"+name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such network") && !strings.Contains(string(out), "not found") {
				t.Errorf("remove network orch-%s: %v %s", name, err, out)
			}
		})
		// Memory-backed emptyDirs are tmpfs mounts in the agent's data
		// dir: unmounted once the containers are gone, before the
		// directory is removed.
		t.Cleanup(func() { unmountUnder(t, p.dir) })
		testutil.CleanupDocker(t, "orch.node", name)
		t.Cleanup(func() { cleanupAgentNetwork(t, name, c.clusterCIDR) })
		p.start()
		nc.agents = append(nc.agents, p)
	}
	t.Cleanup(func() {
		for _, p := range nc.agents {
			p.kill()
			if t.Failed() {
				p.dumpLog()
			}
		}
	})
	testutil.Eventually(t, 60*time.Second, func() string {
		for _, p := range nc.agents {
			if msg := nc.nodeReady(p.name); msg != "" {
				return msg
			}
		}
		return ""
	})
	return nc
}

func (nc *nodeCluster) nodeReady(name string) string {
	n, err := nc.cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return name + ": " + err.Error()
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	return "node " + name + " is not Ready"
}

// waitPod waits until check(pod) says nothing is missing.
func (nc *nodeCluster) waitPod(t *testing.T, ns, name string, timeout time.Duration, check func(*corev1.Pod) string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	testutil.Eventually(t, timeout, func() string {
		p, err := nc.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		pod = p
		return check(p)
	})
	return pod
}

func phaseIs(want corev1.PodPhase) func(*corev1.Pod) string {
	return func(p *corev1.Pod) string {
		if p.Status.Phase != want {
			return fmt.Sprintf("pod %s is %s, want %s (%s)", p.Name, p.Status.Phase, want, containerStates(p))
		}
		return ""
	}
}

func containerStates(p *corev1.Pod) string {
	var out []string
	for _, c := range p.Status.ContainerStatuses {
		s := c.Name + ":"
		switch {
		case c.State.Waiting != nil:
			s += "waiting " + c.State.Waiting.Reason + " " + c.State.Waiting.Message
		case c.State.Running != nil:
			s += "running"
		case c.State.Terminated != nil:
			s += fmt.Sprintf("terminated %d", c.State.Terminated.ExitCode)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func (nc *nodeCluster) createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	out, err := nc.cs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return out
}

// dockerPS lists the IDs of running or stopped containers with a label.
func dockerPS(t testing.TB, label string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label="+label).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// dockerPSNode lists the containers of one node's agent.
func dockerPSNode(t testing.TB, node string) []string {
	t.Helper()
	return dockerPS(t, "orch.node="+node)
}

// runDocker runs a docker command.
func runDocker(args ...string) error {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// unmountUnder detaches the filesystems mounted below dir.
func unmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			if err := unix.Unmount(f[4], unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", f[4], err)
			}
		}
	}
}
