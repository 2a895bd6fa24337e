package podnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/internal/nft"
	"orch.dev/orch/server/api/apitest"
)

// testNetns makes a network namespace of its own, so the test routes and
// rules do not touch the host's.
func testNetns(t *testing.T) (string, *netlink.Handle, netns.NsHandle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing routes needs root")
	}
	name := fmt.Sprintf("orchtest-%d-%d", os.Getpid(), rand.IntN(1e6))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "lan", "type", "veth", "peer", "name", "lan-peer"},
		{"link", "set", "lan", "up"}, {"link", "set", "lan-peer", "up"},
		{"addr", "add", "192.0.2.2/24", "dev", "lan"},
		// Another agent's pod bridge on this host, with a pod's port.
		{"link", "add", "br-pods", "type", "bridge"},
		{"link", "set", "br-pods", "up"},
		{"addr", "add", "10.42.5.1/24", "dev", "br-pods"},
		{"link", "add", "pod0", "type", "veth", "peer", "name", "pod0-peer"},
		{"link", "set", "pod0", "master", "br-pods"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return name, h, ns
}

func createNode(t *testing.T, cs kubernetes.Interface, name, podCIDR, ip string) {
	t.Helper()
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR != podCIDR {
		// The API may leave spec.podCIDR to the node IPAM controller.
		n, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
		if _, err := cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPodNetworkRoutesAndRules(t *testing.T) {
	ns, h, nsh := testNetns(t)
	inNS := []string{"ip", "netns", "exec", ns}
	if out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-w", "-N", "DOCKER-USER").CombinedOutput(); err != nil {
		t.Skipf("iptables in a network namespace: %v %s", err, out)
	}
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	createNode(t, env.Client, "n1", "10.42.0.0/24", "192.0.2.2")
	createNode(t, env.Client, "n2", "10.42.1.0/24", "192.0.2.3")
	createNode(t, env.Client, "n3", "10.42.5.0/24", "192.0.2.4") // directly connected
	createNode(t, env.Client, "n4", "10.42.6.0/24", "192.0.2.2") // this host's address

	f := informers.NewSharedInformerFactory(env.Client, 0)
	n, err := New(Deps{Client: env.Client, Informers: f, NodeName: "n1", ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		Netlink: h, Netns: &nsh, NFT: &nft.Runner{Prefix: inNS}, Iptables: append(inNS, "iptables", "-w"), Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	routes := func() string {
		out, err := exec.Command("ip", "-n", ns, "route", "show", "proto", fmt.Sprint(RouteProtocol)).CombinedOutput()
		if err != nil {
			t.Fatalf("ip route: %v %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if got, want := routes(), "10.42.1.0/24 via 192.0.2.3 dev lan"; got != want {
			return fmt.Sprintf("routes: got %q, want %q", got, want)
		}
		return ""
	})
	testutil.Eventually(t, 10*time.Second, func() string {
		out, err := n.deps.NFT.List(ctx, "table", "ip", "orch-podnet")
		if err != nil || !strings.Contains(out, "ip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 snat to ip saddr") {
			return fmt.Sprintf("nat table: got %v %s, want the pod-to-pod exemption", err, out)
		}
		ipt, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-w", "-S", "DOCKER-USER").CombinedOutput()
		if err != nil || strings.Count(string(ipt), "-d 10.42.0.0/16") != 1 {
			return fmt.Sprintf("DOCKER-USER: got %v %s, want one accept rule for the cluster CIDR", err, ipt)
		}
		return ""
	})

	// Pod bridge ports are in hairpin mode, new ones as soon as they join.
	ipNS := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ipNS("link", "add", "pod1", "type", "veth", "peer", "name", "pod1-peer")
	ipNS("link", "set", "pod1", "master", "br-pods")
	testutil.Eventually(t, 10*time.Second, func() string {
		for _, port := range []string{"pod0", "pod1"} {
			if out := ipNS("-d", "link", "show", port); !strings.Contains(out, "hairpin on") {
				return port + " is not in hairpin mode: " + out
			}
		}
		if out := ipNS("-d", "link", "show", "lan"); strings.Contains(out, "hairpin on") {
			return "a link outside pod bridges is in hairpin mode"
		}
		return ""
	})

	// A node that moves gets its route moved; a node that goes loses it.
	node, err := env.Client.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses[0].Address = "192.0.2.9"
	if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if got, want := routes(), "10.42.1.0/24 via 192.0.2.9 dev lan"; got != want {
			return fmt.Sprintf("routes: got %q, want %q", got, want)
		}
		return ""
	})
	if err := env.Client.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if got := routes(); got != "" {
			return fmt.Sprintf("routes: got %q, want none", got)
		}
		return ""
	})
	// Syncing again adds no second forwarding rule.
	if err := n.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ipt, _ := exec.Command("ip", "netns", "exec", ns, "iptables", "-w", "-S", "DOCKER-USER").CombinedOutput()
	if strings.Count(string(ipt), "-d 10.42.0.0/16") != 1 {
		t.Errorf("DOCKER-USER after a resync: got %s, want one accept rule", ipt)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
}
