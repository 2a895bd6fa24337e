//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/node/internal/nft"
)

// testNetns is a network namespace of its own, so tests program a kernel
// data path without touching the host's.
type testNetns struct {
	name string
	nft  *nft.Runner
}

func newTestNetns(t testing.TB) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("programming nftables needs root")
	}
	if _, err := (&nft.Runner{}).List(context.Background(), "tables"); errors.Is(err, nft.ErrNotFound) {
		t.Skip(err)
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
	n := &testNetns{name: name, nft: &nft.Runner{Prefix: []string{"ip", "netns", "exec", name}}}
	n.ip(t, "link", "set", "lo", "up")
	return n
}

func (n *testNetns) ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// in runs f on a thread inside the namespace: sockets made there belong
// to it.
func (n *testNetns) in(t testing.TB, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the test's network namespace: " + err.Error())
		}
	}()
	f()
}

// normalized is the table's listing as sorted lines, so rulesets built in a
// different order compare equal.
func (n *testNetns) normalized(t testing.TB, table string) []string {
	t.Helper()
	out, err := n.nft.List(context.Background(), "table", "ip", table)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), ",")
		if l != "" && !strings.HasPrefix(l, "elements = {") {
			lines = append(lines, l)
		} else if rest, ok := strings.CutPrefix(l, "elements = { "); ok {
			lines = append(lines, strings.TrimSuffix(rest, " }"))
		}
	}
	slices.Sort(lines)
	return lines
}

func TestRulesetAppliesInNetns(t *testing.T) {
	web := service("default", "web", "10.43.0.10")
	two := endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"})
	three := endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}, addr{"10.42.2.3", "n3"})
	np := nodePortService("default", "np", "10.43.0.20", 30080, corev1.ServiceExternalTrafficPolicyLocal)
	npEps := endpoints("default", "np", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"})
	sticky := service("default", "sticky", "10.43.0.12")
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	stickyEps := endpoints("default", "sticky", nil, addr{"10.42.0.5", testNode})
	steps := [][]any{
		{web, two},
		{web, three, np, npEps},
		{web, nil, np, npEps, sticky, stickyEps},
		{np, nil, sticky, three},
		{web, two, sticky, stickyEps},
		{},
	}
	inc, fresh := newTestNetns(t), newTestNetns(t)
	ctx := context.Background()
	var prev map[string]*unit
	for i, objs := range steps {
		cur := units(&testConfig, objs...)
		script := renderFull(&testConfig, cur)
		if prev != nil {
			script = renderDiff(&testConfig, prev, cur)
		}
		if script != "" {
			if err := inc.nft.Apply(ctx, script); err != nil {
				t.Fatalf("step %d: %v\n%s", i, err, script)
			}
		}
		if err := fresh.nft.Apply(ctx, renderFull(&testConfig, cur)); err != nil {
			t.Fatalf("step %d: full: %v", i, err)
		}
		got, want := inc.normalized(t, "orch"), fresh.normalized(t, "orch")
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: the incrementally updated table differs from a fresh one:\ngot:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		prev = cur
	}
}

// backend answers every connection with its name.
func backend(t *testing.T, n *testNetns, address, name string) {
	t.Helper()
	var ln net.Listener
	n.in(t, func() {
		var err error
		if ln, err = net.Listen("tcp", address); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
}

// ask connects to address from inside the namespace and returns what the
// backend said.
func ask(t *testing.T, n *testNetns, address string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.in(t, func() { c, err = net.DialTimeout("tcp", address, 2*time.Second) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestServiceTrafficInNetns(t *testing.T) {
	n := newTestNetns(t)
	n.ip(t, "link", "add", "pods", "type", "veth", "peer", "name", "pods-peer")
	n.ip(t, "link", "set", "pods-peer", "up")
	n.ip(t, "link", "set", "pods", "up")
	n.ip(t, "addr", "add", "10.42.0.5/24", "dev", "pods")
	n.ip(t, "addr", "add", "10.42.0.6/24", "dev", "pods")
	n.ip(t, "addr", "add", "192.0.2.2/24", "dev", "pods")
	n.ip(t, "route", "add", "10.43.0.0/16", "dev", "pods")
	backend(t, n, "10.42.0.5:8080", "a")
	backend(t, n, "10.42.0.6:8080", "b")

	web := nodePortService("default", "web", "10.43.0.10", 30080, corev1.ServiceExternalTrafficPolicyCluster)
	webEps := endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.0.6", testNode})
	sticky := service("default", "sticky", "10.43.0.12")
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	sticky.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	stickyEps := endpoints("default", "sticky", nil, addr{"10.42.0.5", testNode}, addr{"10.42.0.6", testNode})
	empty := service("default", "empty", "10.43.0.11")

	p := &ServiceProxy{cfg: testConfig, deps: Deps{Applier: n.nft, Conntrack: nopConntrack{}}, full: true, log: discard()}
	sync := func(objs ...any) {
		t.Helper()
		ports := map[string]servicePort{}
		for i := 0; i < len(objs); i += 2 {
			var eps *corev1.Endpoints
			if objs[i+1] != nil {
				eps = objs[i+1].(*corev1.Endpoints)
			}
			for _, sp := range servicePorts(objs[i].(*corev1.Service), eps, testNode) {
				ports[sp.key] = sp
			}
		}
		if err := p.apply(context.Background(), ports); err != nil {
			t.Fatal(err)
		}
	}
	sync(web, webEps, sticky, stickyEps, empty, nil)

	answers := func(address string, tries int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range tries {
			got, err := ask(t, n, address)
			if err != nil {
				t.Fatalf("connect to %s: %v", address, err)
			}
			seen[got]++
		}
		return seen
	}
	for _, address := range []string{"10.43.0.10:80", "127.0.0.1:30080", "192.0.2.2:30080"} {
		if seen := answers(address, 40); seen["a"] == 0 || seen["b"] == 0 {
			t.Errorf("%s: got answers %v, want both backends", address, seen)
		}
	}
	if seen := answers("10.43.0.12:80", 20); len(seen) != 1 {
		t.Errorf("session affinity: got answers %v, want one backend", seen)
	}
	if _, err := ask(t, n, "10.43.0.11:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a service without endpoints: got %v, want connection refused", err)
	}

	// One endpoint goes: only the other answers.
	sync(web, endpoints("default", "web", nil, addr{"10.42.0.6", testNode}), sticky, stickyEps, empty, nil)
	if seen := answers("10.43.0.10:80", 20); seen["a"] != 0 {
		t.Errorf("after removing endpoint a: got answers %v, want only b", seen)
	}
	// The service goes: its address no longer leads anywhere.
	sync(sticky, stickyEps)
	if got, err := ask(t, n, "10.43.0.10:80"); err == nil {
		t.Errorf("a deleted service still answers: %q", got)
	}
}

type nopConntrack struct{}

func (nopConntrack) ClearUDPEndpoint(netip.AddrPort) error    { return nil }
func (nopConntrack) ClearUDPService(netip.Addr, uint16) error { return nil }
