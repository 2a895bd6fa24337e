//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"orch.dev/orch/internal/testutil"
)

// cleanupAgentNetwork removes what an agent's service proxy and pod
// network left in the host's kernel: its nftables tables and the
// forwarding rule for its cluster's pods.
func cleanupAgentNetwork(t testing.TB, node, clusterCIDR string) {
	for _, table := range []string{"orch-svc-" + node, "orch-pods-" + node} {
		if out, err := exec.Command("nft", "delete", "table", "ip", table).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			t.Logf("nft delete table %s: %v %s", table, err, out)
		}
	}
	// Every agent of the cluster has the same rule: the first cleanup
	// removes it.
	_ = exec.Command("iptables", "-w", "-D", "DOCKER-USER", "-d", clusterCIDR, "-m", "comment", "--comment", "orch pod network", "-j", "ACCEPT").Run()
}

// netExec runs a command in a pod's only container.
func (nc *nodeCluster) netExec(t *testing.T, pod string, timeout time.Duration, cmd ...string) (string, int) {
	t.Helper()
	return ctlOut(t, nc.kc, "", timeout, append([]string{"exec", pod, "--"}, cmd...)...)
}

// runningPodIP waits for a pod to run and returns its IP.
func (nc *nodeCluster) runningPodIP(t *testing.T, name string) string {
	t.Helper()
	p := nc.waitPod(t, "default", name, 60*time.Second, func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Sprintf("pod %s is %s without an IP yet (%s)", p.Name, p.Status.Phase, containerStates(p))
		}
		return ""
	})
	return p.Status.PodIP
}

// createService creates svc with a cluster IP of its own picking (random,
// in 10.43.0.0/16, so clusters on one host do not share addresses), and,
// unless an endpoints controller writes them, the Endpoints of the given
// pods on port 8080.
func (nc *nodeCluster) createService(t *testing.T, svc *corev1.Service, pods ...*corev1.Pod) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	svc.Namespace = "default"
	svc.Spec.ClusterIP = fmt.Sprintf("10.43.%d.%d", 100+rand.IntN(150), 2+rand.IntN(250))
	out, err := nc.cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", svc.Name, err)
	}
	if out.Spec.Selector != nil {
		// Give an endpoints controller a moment to write them.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			eps, err := nc.cs.CoreV1().Endpoints("default").Get(ctx, svc.Name, metav1.GetOptions{})
			if err == nil && len(eps.Subsets) > 0 && len(eps.Subsets[0].Addresses) == len(pods) {
				return out
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: "default"}}
	var ss corev1.EndpointSubset
	for _, p := range svc.Spec.Ports {
		ss.Ports = append(ss.Ports, corev1.EndpointPort{Name: p.Name, Port: p.TargetPort.IntVal, Protocol: p.Protocol})
	}
	for _, p := range pods {
		p, err := nc.cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node := p.Spec.NodeName
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: p.Status.PodIP, NodeName: &node})
	}
	eps.Subsets = []corev1.EndpointSubset{ss}
	if _, err := nc.cs.CoreV1().Endpoints("default").Create(ctx, eps, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create endpoints %s: %v", svc.Name, err)
	}
	return out
}

// answers counts the backends named in out ("... from NAME" lines).
func answers(out string) map[string]int {
	seen := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(l, " from "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				seen[f[0]]++
			}
		}
	}
	return seen
}

func TestNetworkPodsAndServices(t *testing.T) {
	testutil.BuildHelloImage(t) // the UDP mode is recent
	nc := startNodes(t, 2)
	ctx := context.Background()
	nodeA, nodeB := nc.agents[0].name, nc.agents[1].name

	pin := func(p *corev1.Pod, node string) *corev1.Pod {
		p.Spec.NodeName = node
		p.Labels = map[string]string{"app": "hello"}
		return p
	}
	helloA := nc.createPod(t, pin(helloPod("hello-a"), nodeA))
	helloB := nc.createPod(t, pin(helloPod("hello-b"), nodeB))
	client := helloPod("client", corev1.Container{Name: "sh", Image: testutil.BusyboxImage, Command: []string{"sleep", "3600"}})
	client.Spec.NodeName = nodeA
	nc.createPod(t, client)
	ipB := nc.runningPodIP(t, "hello-b")
	nc.runningPodIP(t, "hello-a")
	nc.runningPodIP(t, "client")

	t.Run("pod to pod traffic keeps the source address", func(t *testing.T) {
		ipA := nc.runningPodIP(t, "hello-a")
		testutil.Eventually(t, 30*time.Second, func() string {
			out, _ := nc.netExec(t, "hello-b", 20*time.Second, "/hello", "udp", ipA+":8080")
			if want := "udp from hello-a peer " + ipB + ":"; !strings.Contains(out, want) {
				return fmt.Sprintf("UDP from hello-b (%s) to hello-a (%s): got %q, want %q", ipB, ipA, out, want)
			}
			return ""
		})
	})

	t.Run("a pod reaches a pod of another node by pod IP", func(t *testing.T) {
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := nc.netExec(t, "client", 20*time.Second, "timeout", "5", "wget", "-qO-", "http://"+ipB+":8080/")
			if code != 0 || !strings.Contains(out, "from hello-b") {
				return fmt.Sprintf("wget %s:8080 from node %s: exit %d: %s", ipB, nodeA, code, out)
			}
			return ""
		})
	})

	web := nc.createService(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "hello"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
	}}, helloA, helloB)
	vip := web.Spec.ClusterIP

	t.Run("a cluster IP spreads over the endpoints", func(t *testing.T) {
		script := fmt.Sprintf("for i in $(seq 50); do timeout 3 wget -qO- http://%s/ | head -1; done", vip)
		testutil.Eventually(t, 60*time.Second, func() string {
			out, _ := nc.netExec(t, "client", 60*time.Second, "sh", "-c", script)
			seen := answers(out)
			if seen["hello-a"] == 0 || seen["hello-b"] == 0 {
				return fmt.Sprintf("50 requests to %s:80: got answers %v, want both hello-a and hello-b", vip, seen)
			}
			return ""
		})
	})

	t.Run("a pod reaches itself through its service", func(t *testing.T) {
		testutil.Eventually(t, 30*time.Second, func() string {
			// Half of the connections go to hello-a itself (hairpin).
			out, code := nc.netExec(t, "hello-a", 20*time.Second, "/hello", "fetch", "http://"+vip+"/")
			if code != 0 || !strings.Contains(out, "from hello-a") {
				return fmt.Sprintf("fetch %s from hello-a: exit %d: %s, want an answer from hello-a", vip, code, out)
			}
			return ""
		})
	})

	t.Run("a UDP service answers", func(t *testing.T) {
		udp := nc.createService(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "hello"},
			Ports:    []corev1.ServicePort{{Name: "echo", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(8080)}},
		}}, helloA, helloB)
		testutil.Eventually(t, 60*time.Second, func() string {
			// hello-b is a client and an endpoint: its own answers come
			// back through the hairpin.
			out, _ := nc.netExec(t, "hello-b", 60*time.Second, "/hello", "udp", udp.Spec.ClusterIP+":53", "30")
			seen := answers(out)
			if seen["hello-a"] == 0 || seen["hello-b"] == 0 {
				return fmt.Sprintf("30 datagrams to %s:53: got answers %v, want both hello-a and hello-b (%s)", udp.Spec.ClusterIP, seen, out)
			}
			return ""
		})
	})

	t.Run("a NodePort answers on the host", func(t *testing.T) {
		np := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-np"}, Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "hello"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080),
				NodePort: int32(30000 + rand.IntN(2700))}},
		}}
		np = nc.createService(t, np, helloA, helloB)
		url := fmt.Sprintf("http://127.0.0.1:%d/", np.Spec.Ports[0].NodePort)
		// A new connection per request, so each is balanced anew.
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		seen := map[string]int{}
		testutil.Eventually(t, 60*time.Second, func() string {
			resp, err := hc.Get(url)
			if err != nil {
				return fmt.Sprintf("GET %s: %v", url, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for k, v := range answers(string(body)) {
				seen[k] += v
			}
			if seen["hello-a"] == 0 || seen["hello-b"] == 0 {
				return fmt.Sprintf("GET %s: got answers %v so far, want both hello-a and hello-b", url, seen)
			}
			return ""
		})
	})

	t.Run("a deleted service stops routing", func(t *testing.T) {
		if err := nc.cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := nc.netExec(t, "client", 20*time.Second, "timeout", "3", "wget", "-qO-", "http://"+vip+"/")
			if code == 0 {
				return fmt.Sprintf("%s still answers after the service was deleted: %s", vip, out)
			}
			return ""
		})
	})
}
