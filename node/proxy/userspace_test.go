//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// userspaceEnv is a UserspaceProxy serving a network namespace of its own
// (node), fed by a real API server. A second namespace (client) is wired to
// the node twice: as a pod (10.42.0.100, gateway 10.42.0.1 on pod0) and as
// a host outside the cluster (203.0.113.100, node 203.0.113.1 on ext0).
// The node holds 192.0.2.2 and 192.0.2.3 and the backends' addresses
// 10.42.1.5-7.
type userspaceEnv struct {
	node, client *testNetns
	api          *apitest.Env
	p            *UserspaceProxy
	logs         *logRecorder

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func startUserspace(t *testing.T, udpIdle time.Duration) *userspaceEnv {
	t.Helper()
	node, client := newTestNetns(t), newTestNetns(t)
	node.ip(t, "link", "add", "pod0", "type", "veth", "peer", "name", "eth0", "netns", client.name)
	node.ip(t, "link", "add", "ext0", "type", "veth", "peer", "name", "eth1", "netns", client.name)
	node.ip(t, "link", "add", "uplink", "type", "bridge")
	for _, a := range [][2]string{{"10.42.0.1/24", "pod0"}, {"203.0.113.1/24", "ext0"}, {"192.0.2.2/24", "uplink"},
		{"192.0.2.3/24", "uplink"}, {"10.42.1.5/32", "uplink"}, {"10.42.1.6/32", "uplink"}, {"10.42.1.7/32", "uplink"}} {
		node.ip(t, "addr", "add", a[0], "dev", a[1])
	}
	for _, dev := range []string{"pod0", "ext0", "uplink"} {
		node.ip(t, "link", "set", dev, "up")
	}
	client.ip(t, "addr", "add", "10.42.0.100/24", "dev", "eth0")
	client.ip(t, "addr", "add", "203.0.113.100/24", "dev", "eth1")
	client.ip(t, "link", "set", "eth0", "up")
	client.ip(t, "link", "set", "eth1", "up")
	client.ip(t, "route", "add", "default", "via", "10.42.0.1")

	e := &userspaceEnv{node: node, client: client, api: apitest.Start(t), done: make(chan error, 1)}
	e.logs = &logRecorder{next: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), mu: &sync.Mutex{}, msgs: &[]string{}}
	f := informers.NewSharedInformerFactory(e.api.Client, 0)
	p, err := NewUserspace(UserspaceDeps{Informers: f, Logger: slog.New(e.logs), NodeName: testNode,
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), MinSyncInterval: 10 * time.Millisecond,
		DialTimeout: 500 * time.Millisecond, UDPIdleTimeout: udpIdle, Netns: "/run/netns/" + node.name})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	f.Start(ctx.Done())
	go func() { e.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		e.stop(t)
		if err := p.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return e
}

// stop cancels Run and waits for it: Run returns only once every
// goroutine of the proxy has ended.
func (e *userspaceEnv) stop(t *testing.T) {
	t.Helper()
	e.stopOnce.Do(func() {
		e.cancel()
		select {
		case err := <-e.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run has not returned 10s after its context ended: some connection or session outlives the proxy")
		}
	})
}

// putService creates svc, or updates the Service of that name to svc's
// spec.
func (e *userspaceEnv) putService(t *testing.T, svc *corev1.Service) {
	t.Helper()
	ctx := context.Background()
	svcs := e.api.Client.CoreV1().Services(svc.Namespace)
	_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *corev1.Service
		if cur, err = svcs.Get(ctx, svc.Name, metav1.GetOptions{}); err == nil {
			cur.Spec = svc.Spec
			_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("put Service %s: %v", svc.Name, err)
	}
}

func (e *userspaceEnv) putEndpoints(t *testing.T, eps *corev1.Endpoints) {
	t.Helper()
	ctx := context.Background()
	all := e.api.Client.CoreV1().Endpoints(eps.Namespace)
	_, err := all.Create(ctx, eps, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *corev1.Endpoints
		if cur, err = all.Get(ctx, eps.Name, metav1.GetOptions{}); err == nil {
			cur.Subsets = eps.Subsets
			_, err = all.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("put Endpoints %s: %v", eps.Name, err)
	}
}

// listener is the proxy's listener on proto/address, nil when there is
// none.
func (e *userspaceEnv) listener(proto, address string) *userspaceListener {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	return e.p.listeners[listenKey{proto, netip.MustParseAddrPort(address)}]
}

// sessions are the endpoints of the UDP sessions on address.
func (e *userspaceEnv) sessions(address string) []string {
	l := e.listener("udp", address)
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.sessions {
		out = append(out, s.ep.String())
	}
	slices.Sort(out)
	return out
}

// vips are the addresses on the proxy's interface; nil when it is gone.
func (e *userspaceEnv) vips(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-n", e.node.name, "-4", "-o", "addr", "show", "dev", DefaultUserspaceInterface).CombinedOutput()
	if err != nil {
		return nil
	}
	var vips []string
	for _, f := range strings.Split(string(out), " ") {
		if strings.HasSuffix(f, "/32") {
			vips = append(vips, f)
		}
	}
	return vips
}

// echoBackend answers each TCP connection, once the client has finished
// sending, with its name and what it got: "name:data".
func echoBackend(t *testing.T, n *testNetns, address, name string) net.Listener {
	t.Helper()
	var ln net.Listener
	n.in(t, func() {
		var err error
		if ln, err = net.Listen("tcp4", address); err != nil {
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
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b, err := io.ReadAll(c)
				if err == nil {
					_, _ = io.WriteString(c, name+":"+string(b))
				}
			}()
		}
	}()
	return ln
}

// exchange connects from the namespace (from the address from, or any)
// to address, sends "ping", half-closes and returns the answer.
func exchange(t *testing.T, n *testNetns, from, address string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.in(t, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		if from != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		}
		c, err = d.Dial("tcp4", address)
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// answers makes n exchanges and counts the backends that answered.
func answers(t *testing.T, ns *testNetns, from, address string, n int) (map[string]int, error) {
	t.Helper()
	seen := map[string]int{}
	for range n {
		got, err := exchange(t, ns, from, address)
		if err != nil {
			return seen, err
		}
		name, ok := strings.CutSuffix(got, ":ping")
		if !ok {
			return seen, errors.New("unexpected answer " + got)
		}
		seen[name]++
	}
	return seen, nil
}

func names(seen map[string]int) []string {
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// refused tells whether err is a refused or reset connection.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestUserspaceProxyTCP(t *testing.T) {
	e := startUserspace(t, 0)
	echoBackend(t, e.node, "10.42.1.5:8080", "a")
	echoBackend(t, e.node, "10.42.1.6:8080", "b")

	web := nodePortService("default", "web", "10.43.0.10", 30080, corev1.ServiceExternalTrafficPolicyCluster)
	web.Spec.ExternalIPs = []string{"192.0.2.10"}
	local := nodePortService("default", "local", "10.43.0.14", 30081, corev1.ServiceExternalTrafficPolicyLocal)
	sticky := service("default", "sticky", "10.43.0.12")
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	sticky.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	internal := service("default", "internal", "10.43.0.13")
	internal.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	mixed := service("default", "mixed", "10.43.0.16",
		corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "assoc", Port: 9, Protocol: corev1.ProtocolSCTP})
	for _, svc := range []*corev1.Service{web, local, sticky, internal, mixed,
		service("default", "empty", "10.43.0.11"), service("default", "flaky", "10.43.0.15")} {
		e.putService(t, svc)
	}
	for _, eps := range []*corev1.Endpoints{
		endpoints("default", "web", nil, addr{"10.42.1.5", testNode}, addr{"10.42.1.6", testNode}),
		endpoints("default", "local", nil, addr{"10.42.1.5", testNode}, addr{"10.42.1.6", "n2"}),
		endpoints("default", "sticky", nil, addr{"10.42.1.5", testNode}, addr{"10.42.1.6", testNode}),
		endpoints("default", "internal", nil, addr{"10.42.1.6", "n2"}),
		endpoints("default", "mixed", nil, addr{"10.42.1.5", testNode}),
		// Nothing listens on 10.42.1.7: connections must fail over to a.
		endpoints("default", "flaky", nil, addr{"10.42.1.5", testNode}, addr{"10.42.1.7", testNode}),
	} {
		e.putEndpoints(t, eps)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		for _, a := range []string{"10.43.0.10:80", "10.43.0.14:80", "10.43.0.15:80", "10.43.0.16:80"} {
			if _, err := exchange(t, e.node, "", a); err != nil {
				return a + " is not served yet: " + err.Error()
			}
		}
		return ""
	})

	t.Run("spreading", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			client   bool // from the client namespace, else from the node
			from, to string
			want     []string
		}{
			{name: "cluster IP from the node", to: "10.43.0.10:80", want: []string{"a", "b"}},
			{name: "cluster IP from a pod", client: true, from: "10.42.0.100", to: "10.43.0.10:80", want: []string{"a", "b"}},
			{name: "external IP", to: "192.0.2.10:80", want: []string{"a", "b"}},
			{name: "NodePort on the node's address", to: "192.0.2.2:30080", want: []string{"a", "b"}},
			{name: "NodePort on 127.0.0.1", to: "127.0.0.1:30080", want: []string{"a", "b"}},
			{name: "NodePort from outside the cluster", client: true, from: "203.0.113.100", to: "203.0.113.1:30080", want: []string{"a", "b"}},
			{name: "external policy Local from outside", client: true, from: "203.0.113.100", to: "203.0.113.1:30081", want: []string{"a"}},
			{name: "external policy Local from a pod", client: true, from: "10.42.0.100", to: "10.42.0.1:30081", want: []string{"a", "b"}},
			{name: "external policy Local from the node", to: "192.0.2.2:30081", want: []string{"a", "b"}},
			{name: "session affinity", to: "10.43.0.12:80", want: nil}, // one backend, either
			{name: "a dead endpoint is skipped", to: "10.43.0.15:80", want: []string{"a"}},
			{name: "a TCP port next to an SCTP one", to: "10.43.0.16:80", want: []string{"a"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ns := e.node
				if tc.client {
					ns = e.client
				}
				seen, err := answers(t, ns, tc.from, tc.to, 50)
				if err != nil {
					t.Fatalf("after answers from %v: %v", seen, err)
				}
				switch got := names(seen); {
				case tc.want == nil && len(got) != 1:
					t.Errorf("got answers from %v, want all from one backend", seen)
				case tc.want != nil && !slices.Equal(got, tc.want):
					t.Errorf("got answers from %v, want from %v", seen, tc.want)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ name, to string }{
			{"no endpoints", "10.43.0.11:80"},
			{"internal policy Local without a local endpoint", "10.43.0.13:80"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				start := time.Now()
				got, err := exchange(t, e.node, "", tc.to)
				if !refused(err) {
					t.Fatalf("got %q, %v; want connection refused or reset", got, err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("refusing took %v, want under 1s", d)
				}
			})
		}
	})

	t.Run("SCTP is left out", func(t *testing.T) {
		if l := e.listener("sctp", "10.43.0.16:9"); l != nil {
			t.Errorf("got a listener for an SCTP port, want none")
		}
		if got := e.logs.count("the userspace service proxy does not serve this port"); got != 1 {
			t.Errorf("got %d warnings about the SCTP port, want 1", got)
		}
	})

	t.Run("an endpoint change keeps the listener", func(t *testing.T) {
		before := e.listener("tcp", "10.43.0.10:80")
		e.putEndpoints(t, endpoints("default", "web", nil, addr{"10.42.1.6", testNode}))
		testutil.Eventually(t, 10*time.Second, func() string {
			seen, err := answers(t, e.node, "", "10.43.0.10:80", 10)
			if err != nil || seen["a"] > 0 {
				return "the removed endpoint a still answers or the service fails: " + strings.Join(names(seen), ",")
			}
			return ""
		})
		if after := e.listener("tcp", "10.43.0.10:80"); after != before {
			t.Errorf("the listener was replaced on an endpoint change, want the same one")
		}
	})

	t.Run("deleting the Service removes its address and listeners", func(t *testing.T) {
		if err := e.api.Client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			if vips := e.vips(t); slices.Contains(vips, "10.43.0.10/32") || slices.Contains(vips, "192.0.2.10/32") {
				return "the deleted Service's addresses are still on the interface: " + strings.Join(vips, " ")
			}
			for _, a := range []string{"10.43.0.10:80", "192.0.2.10:80", "0.0.0.0:30080"} {
				if e.listener("tcp", a) != nil {
					return "the listener on " + a + " is still open"
				}
			}
			return ""
		})
		if vips := e.vips(t); !slices.Contains(vips, "10.43.0.12/32") {
			t.Errorf("got addresses %v, want the other Services' still there (10.43.0.12/32)", vips)
		}
		if got, err := exchange(t, e.node, "", "192.0.2.2:30080"); !refused(err) {
			t.Errorf("the deleted Service's NodePort: got %q, %v; want refused", got, err)
		}
	})

	if got := e.logs.count("the service proxy runs in userspace: Service traffic is slower and endpoints see the node's address, not the client's"); got != 1 {
		t.Errorf("got %d warnings that the userspace proxy is in use, want 1", got)
	}
}

// udpBackend answers each datagram with its name and the datagram:
// "name:data".
func udpBackend(t *testing.T, n *testNetns, address, name string) {
	t.Helper()
	var pc net.PacketConn
	n.in(t, func() {
		var err error
		if pc, err = net.ListenPacket("udp4", address); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name+":"+string(buf[:k])), from)
		}
	}()
}

// udpDial makes a connected UDP socket in the namespace: it takes replies
// only from address.
func udpDial(t *testing.T, n *testNetns, from, address string) (*net.UDPConn, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.in(t, func() {
		d := net.Dialer{}
		if from != "" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from)}
		}
		c, err = d.Dial("udp4", address)
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn), nil
}

// udpAskOnce asks from a new socket.
func udpAskOnce(t *testing.T, n *testNetns, from, address, msg string) (string, error) {
	t.Helper()
	c, err := udpDial(t, n, from, address)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return udpAsk(c, msg)
}

// udpAsk sends msg and returns the backend that answered.
func udpAsk(c *net.UDPConn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	name, ok := strings.CutSuffix(string(buf[:n]), ":"+msg)
	if !ok {
		return "", errors.New("unexpected answer " + string(buf[:n]))
	}
	return name, nil
}

func TestUserspaceProxyUDP(t *testing.T) {
	e := startUserspace(t, time.Minute)
	udpBackend(t, e.node, "10.42.1.5:5353", "a")
	udpBackend(t, e.node, "10.42.1.6:5353", "b")
	dns := []corev1.ServicePort{{Name: "dns", Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP}}
	svc := service("default", "dns", "10.43.0.53", dns...)
	svc.Spec.Type = corev1.ServiceTypeNodePort
	e.putService(t, svc)
	udp := []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}}
	e.putEndpoints(t, endpoints("default", "dns", udp, addr{"10.42.1.5", testNode}, addr{"10.42.1.6", testNode}))
	testutil.Eventually(t, 10*time.Second, func() string {
		if _, err := udpAskOnce(t, e.node, "", "10.43.0.53:53", "hello"); err != nil {
			return "10.43.0.53:53 is not served yet: " + err.Error()
		}
		return ""
	})

	t.Run("a client keeps its session", func(t *testing.T) {
		c, err := udpDial(t, e.node, "", "10.43.0.53:53")
		if err != nil {
			t.Fatal(err)
		}
		first, err := udpAsk(c, "q0")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"q1", "q2", "q3", "q4"} {
			if got, err := udpAsk(c, q); err != nil || got != first {
				t.Fatalf("%s: got %q, %v; want the session's backend %q", q, got, err, first)
			}
		}
		client := netip.MustParseAddrPort(c.LocalAddr().String())
		l := e.listener("udp", "10.43.0.53:53")
		l.mu.Lock()
		_, ok := l.sessions[sessionKey{client: client, local: netip.MustParseAddr("10.43.0.53")}]
		l.mu.Unlock()
		if !ok {
			t.Errorf("no session for %s", client)
		}
	})

	t.Run("sessions spread", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			client   bool
			from, to string
		}{
			{name: "cluster IP from the node", to: "10.43.0.53:53"},
			{name: "cluster IP from a pod", client: true, from: "10.42.0.100", to: "10.43.0.53:53"},
			{name: "NodePort from outside the cluster", client: true, from: "203.0.113.100", to: "203.0.113.1:30053"},
			// The reply must come from 192.0.2.3, which the client wrote
			// to, not from the address the route back would pick.
			{name: "NodePort on a second address", from: "192.0.2.2", to: "192.0.2.3:30053"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ns := e.node
				if tc.client {
					ns = e.client
				}
				seen := map[string]int{}
				for range 30 {
					got, err := udpAskOnce(t, ns, tc.from, tc.to, "hi")
					if err != nil {
						t.Fatalf("after answers from %v: %v", seen, err)
					}
					seen[got]++
				}
				if got := names(seen); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("got answers from %v, want from both backends", seen)
				}
			})
		}
	})

	t.Run("a removed endpoint ends its sessions", func(t *testing.T) {
		// Find a client whose session is with b.
		var c *net.UDPConn
		for range 50 {
			var err error
			if c, err = udpDial(t, e.node, "", "10.43.0.53:53"); err != nil {
				t.Fatal(err)
			}
			if got, err := udpAsk(c, "who"); err != nil {
				t.Fatal(err)
			} else if got == "b" {
				break
			}
		}
		if !slices.Contains(e.sessions("10.43.0.53:53"), "10.42.1.6:5353") {
			t.Fatalf("got sessions %v, want one with b (10.42.1.6:5353)", e.sessions("10.43.0.53:53"))
		}
		e.putEndpoints(t, endpoints("default", "dns", udp, addr{"10.42.1.5", testNode}))
		testutil.Eventually(t, 10*time.Second, func() string {
			if n := strings.Count(strings.Join(e.sessions("10.43.0.53:53"), " "), "10.42.1.6:5353"); n > 0 {
				return fmt.Sprintf("%d sessions with the removed endpoint 10.42.1.6:5353 remain", n)
			}
			return ""
		})
		if got, err := udpAsk(c, "again"); err != nil || got != "a" {
			t.Errorf("the client of the removed endpoint: got %q, %v; want a", got, err)
		}
	})
}

func TestUserspaceProxyUDPSessionsIdleOut(t *testing.T) {
	e := startUserspace(t, 300*time.Millisecond)
	udpBackend(t, e.node, "10.42.1.5:5353", "a")
	e.putService(t, service("default", "dns", "10.43.0.53", corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}))
	e.putEndpoints(t, endpoints("default", "dns", []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}},
		addr{"10.42.1.5", testNode}))
	testutil.Eventually(t, 10*time.Second, func() string {
		if _, err := udpAskOnce(t, e.node, "", "10.43.0.53:53", "hello"); err != nil {
			return "10.43.0.53:53 is not served yet: " + err.Error()
		}
		return ""
	})
	c, err := udpDial(t, e.node, "", "10.43.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := udpAsk(c, "hello"); err != nil || got != "a" {
		t.Fatalf("got %q, %v; want a", got, err)
	}
	if s := e.sessions("10.43.0.53:53"); len(s) == 0 {
		t.Fatalf("got no session, want the client's")
	}
	testutil.Eventually(t, 5*time.Second, func() string {
		if s := e.sessions("10.43.0.53:53"); len(s) != 0 {
			return "the idle session is still open: " + strings.Join(s, " ")
		}
		return ""
	})
	if got, err := udpAsk(c, "back"); err != nil || got != "a" {
		t.Errorf("after the session idled out: got %q, %v; want a new session with a", got, err)
	}
}

func TestUserspaceProxyRetriesBusyPort(t *testing.T) {
	e := startUserspace(t, 0)
	echoBackend(t, e.node, "10.42.1.5:8080", "a")
	squatter := echoBackend(t, e.node, "0.0.0.0:30090", "squatter")
	e.putService(t, nodePortService("default", "web", "10.43.0.20", 30090, corev1.ServiceExternalTrafficPolicyCluster))
	e.putEndpoints(t, endpoints("default", "web", nil, addr{"10.42.1.5", testNode}))
	// The cluster IP is served although the NodePort is taken.
	testutil.Eventually(t, 10*time.Second, func() string {
		if got, err := exchange(t, e.node, "", "10.43.0.20:80"); err != nil || got != "a:ping" {
			return "the cluster IP is not served: " + got
		}
		return ""
	})
	if got, err := exchange(t, e.node, "", "192.0.2.2:30090"); err != nil || got != "squatter:ping" {
		t.Fatalf("the taken port: got %q, %v; want the squatter's answer", got, err)
	}
	squatter.Close()
	testutil.Eventually(t, 20*time.Second, func() string {
		if got, err := exchange(t, e.node, "", "192.0.2.2:30090"); err != nil || got != "a:ping" {
			return "the NodePort is not served after it was freed: " + got
		}
		return ""
	})
}

func TestUserspaceProxyStopAndCleanup(t *testing.T) {
	e := startUserspace(t, time.Minute)
	echoBackend(t, e.node, "10.42.1.5:8080", "a")
	udpBackend(t, e.node, "10.42.1.5:5353", "a")
	e.putService(t, service("default", "web", "10.43.0.10",
		corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}))
	e.putEndpoints(t, endpoints("default", "web", []corev1.EndpointPort{
		{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}},
		addr{"10.42.1.5", testNode}))
	testutil.Eventually(t, 10*time.Second, func() string {
		if _, err := exchange(t, e.node, "", "10.43.0.10:80"); err != nil {
			return "10.43.0.10:80 is not served yet: " + err.Error()
		}
		return ""
	})
	// A TCP connection in the middle of a request and a UDP session are
	// open when the proxy stops.
	var held net.Conn
	var err error
	e.node.in(t, func() { held, err = net.DialTimeout("tcp4", "10.43.0.10:80", 2*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := io.WriteString(held, "half a request"); err != nil {
		t.Fatal(err)
	}
	if _, err := udpAskOnce(t, e.node, "", "10.43.0.10:53", "x"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() string {
		e.p.connMu.Lock()
		defer e.p.connMu.Unlock()
		if len(e.p.conns) != 2 {
			return "the held connection is not relayed yet"
		}
		return ""
	})

	e.stop(t)
	_ = held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := held.Read(make([]byte, 64)); !errors.Is(err, io.EOF) && !refused(err) {
		t.Errorf("a connection open when the proxy stopped: got %d bytes, %v; want it closed", n, err)
	}
	if vips := e.vips(t); !slices.Contains(vips, "10.43.0.10/32") {
		t.Errorf("got addresses %v after Run returned, want 10.43.0.10/32 kept until Cleanup", vips)
	}
	if got, err := exchange(t, e.node, "", "10.43.0.10:80"); !refused(err) {
		t.Errorf("after Run returned: got %q, %v; want refused", got, err)
	}
	if err := e.p.Sync(context.Background()); err == nil {
		t.Errorf("Sync after Close: got nil, want an error")
	}
	if err := e.p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", e.node.name, "link", "show", DefaultUserspaceInterface).CombinedOutput(); err == nil {
		t.Errorf("the interface is still there after Cleanup:\n%s", out)
	}
}

func TestUserspaceAffinityOrder(t *testing.T) {
	a := endpoint{ip: netip.MustParseAddr("10.42.1.5"), port: 8080}
	b := endpoint{ip: netip.MustParseAddr("10.42.1.6"), port: 8080}
	client := netip.MustParseAddr("10.42.0.100")
	for _, tc := range []struct {
		name     string
		affinity int32
		bound    *endpoint
		age      time.Duration
		eps      []endpoint
		want     []endpoint // the endpoints seen first over many picks
	}{
		{name: "no affinity spreads", eps: []endpoint{a, b}, want: []endpoint{a, b}},
		{name: "a bound client keeps its endpoint", affinity: 10, bound: &b, eps: []endpoint{a, b}, want: []endpoint{b}},
		{name: "a binding idle for the timeout expires", affinity: 10, bound: &b, age: 10 * time.Second, eps: []endpoint{a, b}, want: []endpoint{a, b}},
		{name: "a binding to a removed endpoint is ignored", affinity: 10, bound: &b, eps: []endpoint{a}, want: []endpoint{a}},
		{name: "no endpoints", affinity: 10, bound: &b, eps: nil, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &userspacePort{}
			up.update(&servicePort{key: "default/web/tcp/http", affinity: tc.affinity, endpoints: tc.eps})
			if tc.bound != nil {
				up.remember(client, *tc.bound)
				up.aff[client] = affinityEntry{ep: *tc.bound, last: time.Now().Add(-tc.age)}
			}
			seen := map[endpoint]bool{}
			for range 64 {
				order := up.order(tc.eps, client)
				if len(order) != len(tc.eps) {
					t.Fatalf("got order %v, want every endpoint of %v once", order, tc.eps)
				}
				if len(order) > 0 {
					seen[order[0]] = true
				}
			}
			var got []endpoint
			for _, e := range []endpoint{a, b} {
				if seen[e] {
					got = append(got, e)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got first picks %v, want %v", got, tc.want)
			}
		})
	}
}

// logRecorder keeps the messages logged and passes the records on.
type logRecorder struct {
	next slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (r *logRecorder) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.msgs = append(*r.msgs, rec.Message)
	r.mu.Unlock()
	return r.next.Handle(ctx, rec)
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{next: r.next.WithAttrs(as), mu: r.mu, msgs: r.msgs}
}

func (r *logRecorder) WithGroup(name string) slog.Handler {
	return &logRecorder{next: r.next.WithGroup(name), mu: r.mu, msgs: r.msgs}
}

// count is how many times msg was logged.
func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range *r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
