package integration

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// TestServiceDiscovery runs a Deployment behind a Service with an
// allocated cluster IP and Endpoints kept by the controller, and checks
// from a busybox pod that names resolve through the node's DNS server and
// that the virtual IP reaches the pods.
func TestServiceDiscovery(t *testing.T) {
	nc := startNodes(t, 2)
	ctx := context.Background()
	d := deployment("hello", 2)
	d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	if _, err := nc.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := nc.cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "hello"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := svc.Spec.ClusterIP
	if vip == "" || vip == corev1.ClusterIPNone {
		t.Fatalf("service got cluster IP %q", vip)
	}
	client := helloPod("dns-client", corev1.Container{Name: "sh", Image: testutil.BusyboxImage, Command: []string{"sleep", "3600"}})
	client.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	nc.createPod(t, client)
	nc.runningPodIP(t, "dns-client")
	nc.waitRunning(t, "hello", 2, 90*time.Second)
	sh := func(script string) (string, int) {
		return nc.netExec(t, "dns-client", 60*time.Second, "sh", "-c", script)
	}

	t.Run("resolv.conf names the node's DNS server and the search path", func(t *testing.T) {
		pod, err := nc.cs.CoreV1().Pods("default").Get(ctx, "dns-client", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node, err := nc.cs.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		subnet, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil {
			t.Fatalf("node %s podCIDR %q: %v", node.Name, node.Spec.PodCIDR, err)
		}
		gateway := subnet.Masked().Addr().Next().String()
		out, code := sh("cat /etc/resolv.conf")
		for _, want := range []string{"nameserver " + gateway + "\n",
			"search default.svc.cluster.local svc.cluster.local cluster.local\n", "options ndots:5\n"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("/etc/resolv.conf (exit %d) lacks %q:\n%s", code, want, out)
			}
		}
		if strings.Contains(out, "127.0.0.11") {
			t.Errorf("/etc/resolv.conf goes through the engine's resolver:\n%s", out)
		}
	})

	t.Run("the service name resolves to the cluster IP", func(t *testing.T) {
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := sh("nslookup hello.default.svc.cluster.local")
			if code != 0 || !strings.Contains(out, vip) {
				return fmt.Sprintf("nslookup: exit %d, want %s in:\n%s", code, vip, out)
			}
			return ""
		})
	})

	t.Run("the server answers the zone too", func(t *testing.T) {
		server := fmt.Sprintf("127.0.0.1:%d", nc.procs[0].dns)
		testutil.Eventually(t, 30*time.Second, func() string {
			q := new(mdns.Msg)
			q.SetQuestion("hello.default.svc.cluster.local.", mdns.TypeA)
			for _, network := range []string{"udp", "tcp"} {
				in, _, err := (&mdns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, server)
				if err != nil {
					return fmt.Sprintf("%s query to %s: %v", network, server, err)
				}
				if len(in.Answer) != 1 {
					return fmt.Sprintf("%s answer %v, want one A record", network, in.Answer)
				}
				if a, ok := in.Answer[0].(*mdns.A); !ok || a.A.String() != vip {
					return fmt.Sprintf("%s answer %v, want %s", network, in.Answer[0], vip)
				}
			}
			return ""
		})
	})

	t.Run("the short name reaches both pods through the search path", func(t *testing.T) {
		testutil.Eventually(t, 60*time.Second, func() string {
			out, _ := sh("for i in $(seq 50); do timeout 3 wget -qO- http://hello/ | head -1; done")
			if seen := answers(out); len(seen) < 2 {
				return fmt.Sprintf("50 requests to http://hello/: answers from %v, want two backends", seen)
			}
			return ""
		})
	})

	t.Run("scaling changes the endpoints and the data path", func(t *testing.T) {
		start := time.Now()
		if out, code := ctlOut(t, nc.kc, "", 30*time.Second, "scale", "deployment/hello", "--replicas", "3"); code != 0 {
			t.Fatalf("scale: %s", out)
		}
		pods := nc.waitRunning(t, "hello", 3, 90*time.Second)
		running := time.Since(start)
		testutil.Eventually(t, 30*time.Second, func() string {
			eps, err := nc.cs.CoreV1().Endpoints("default").Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			n := 0
			for _, s := range eps.Subsets {
				n += len(s.Addresses)
			}
			if n != 3 {
				return fmt.Sprintf("endpoints list %d ready addresses, want 3", n)
			}
			return ""
		})
		testutil.Eventually(t, 60*time.Second, func() string {
			out, _ := sh("for i in $(seq 40); do timeout 3 wget -qO- http://hello/ | head -1; done")
			seen := answers(out)
			for _, p := range pods {
				if seen[p.Name] == 0 {
					return fmt.Sprintf("no answer from %s among %v", p.Name, seen)
				}
			}
			return ""
		})
		t.Logf("3 pods Running %v after the scale; all three answering through the VIP %v after it", running, time.Since(start))
	})

	t.Run("a headless service resolves to the pod IPs and SRV carries the port", func(t *testing.T) {
		if _, err := nc.cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello-direct"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "hello"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pods := nc.waitRunning(t, "hello", 3, 30*time.Second)
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := sh("nslookup hello-direct.default.svc.cluster.local")
			if code != 0 {
				return fmt.Sprintf("nslookup: exit %d:\n%s", code, out)
			}
			for _, p := range pods {
				if !strings.Contains(out, p.Status.PodIP) {
					return fmt.Sprintf("no %s (%s) in:\n%s", p.Status.PodIP, p.Name, out)
				}
			}
			return ""
		})
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := sh("nslookup -type=SRV _http._tcp.hello.default.svc.cluster.local")
			if code != 0 || !strings.Contains(out, " 80 ") || !strings.Contains(out, "hello.default.svc.cluster.local") {
				return fmt.Sprintf("SRV lookup: exit %d, want port 80 and the service name in:\n%s", code, out)
			}
			return ""
		})
	})

	t.Run("a missing service does not resolve", func(t *testing.T) {
		out, code := sh("nslookup does-not-exist.default.svc.cluster.local")
		if code == 0 || !strings.Contains(strings.ToLower(out), "nxdomain") && !strings.Contains(out, "can't find") {
			t.Errorf("a missing service resolved: exit %d:\n%s", code, out)
		}
	})

	t.Run("a deleted service stops resolving and routing", func(t *testing.T) {
		if err := nc.cs.CoreV1().Services("default").Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, func() string {
			if out, code := sh("nslookup hello.default.svc.cluster.local"); code == 0 && strings.Contains(out, vip) {
				return "the deleted service still resolves:\n" + out
			}
			if out, code := sh("timeout 3 wget -qO- http://" + vip + "/"); code == 0 {
				return "the deleted service's IP still answers: " + out
			}
			return ""
		})
	})
}
