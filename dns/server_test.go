package dns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"orch.dev/orch/internal/testutil"
)

// startServer runs a Server on 127.0.0.1, port 0, until the test ends.
func startServer(t *testing.T, cfg Config, x *Index) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s := &Server{Config: cfg, Index: x}
	if err := s.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func ask(t *testing.T, net, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %s: %v", net, name, err)
	}
	return m
}

func TestServerUDPAndTCP(t *testing.T) {
	x := clusterIndex()
	big := service("default", "big", corev1.ClusterIPNone)
	x.UpsertService(big)
	var ips []string
	for i := range 60 {
		ips = append(ips, fmt.Sprintf("10.42.9.%d", i+1))
	}
	x.UpsertEndpoints(endpoints("default", "big", ips, nil))
	s := startServer(t, Config{NoForward: true}, x)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			for _, tc := range []struct {
				qname  string
				qtype  uint16
				rcode  int
				answer []string
			}{
				{"hello.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"hello.default.svc.cluster.local. 5 IN A 10.43.0.10"}},
				{"_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{
					"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.default.svc.cluster.local.",
					"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-1.db.default.svc.cluster.local.",
					"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 10-42-0-7.db.default.svc.cluster.local.",
				}},
				{"hello.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
				{"example.com.", dns.TypeA, dns.RcodeRefused, nil},
			} {
				m := ask(t, network, s.Addr(), tc.qname, tc.qtype)
				if m.Rcode != tc.rcode || !slices.Equal(strs(m.Answer), rrs(t, tc.answer)) {
					t.Errorf("%s: got %s %v, want %s %v", tc.qname, dns.RcodeToString[m.Rcode], strs(m.Answer), dns.RcodeToString[tc.rcode], rrs(t, tc.answer))
				}
			}
			m := ask(t, network, s.Addr(), "big.default.svc.cluster.local.", dns.TypeA)
			if wantTC := network == "udp"; m.Truncated != wantTC {
				t.Errorf("60 addresses: got TC %v, want %v", m.Truncated, wantTC)
			}
			if network == "tcp" && len(m.Answer) != 60 {
				t.Errorf("60 addresses over TCP: got %d answers", len(m.Answer))
			}
		})
	}
}

// upstream is a tiny DNS server standing in for the node's resolver: it
// knows example.com and counts the queries it gets.
type upstream struct {
	addr    string
	queries atomic.Int32
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	u.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Name == "example.com." && q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR("example.com. 60 IN A 93.184.216.34")
			m.Answer = append(m.Answer, rr)
		case q.Name == "example.com.":
			soa, _ := dns.NewRR("example.com. 60 IN SOA ns.example.com. admin.example.com. 1 2 3 4 30")
			m.Ns = append(m.Ns, soa)
		case q.Name == "broken.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
			soa, _ := dns.NewRR(". 60 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 2 3 4 10")
			m.Ns = append(m.Ns, soa)
		}
		if err := w.WriteMsg(m); err != nil {
			t.Errorf("upstream write: %v", err)
		}
	})}
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			t.Errorf("upstream: %v", err)
		}
	}()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("upstream shutdown: %v", err)
		}
	})
	return u
}

func TestForwarding(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{Upstreams: []string{up.addr}}, clusterIndex())
	for _, tc := range []struct {
		name       string
		qname      string
		qtype      uint16
		rcode      int
		answer     []string
		forwarded  int32 // queries the upstream sees for this step
		roughTTLOK bool
	}{
		{name: "forwarded", qname: "example.com.", qtype: dns.TypeA, answer: []string{"example.com. 60 IN A 93.184.216.34"}, forwarded: 1},
		{name: "cached", qname: "EXAMPLE.com.", qtype: dns.TypeA, answer: []string{"example.com. 60 IN A 93.184.216.34"}, forwarded: 0, roughTTLOK: true},
		{name: "NODATA forwarded", qname: "example.com.", qtype: dns.TypeAAAA, forwarded: 1},
		{name: "NXDOMAIN forwarded", qname: "nope.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, forwarded: 1},
		{name: "NXDOMAIN cached", qname: "nope.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, forwarded: 0},
		{name: "upstream failure", qname: "broken.example.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forwarded: 1},
		{name: "failures are not cached", qname: "broken.example.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forwarded: 1},
		{name: "search-path expansion never leaves", qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, forwarded: 0},
		{name: "zone names never leave", qname: "nope.nope.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, forwarded: 0},
		{name: "unknown PTR forwarded", qname: "4.3.2.1.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, forwarded: 1},
		{name: "ExternalName target resolved upstream", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com.", "example.com. 60 IN A 93.184.216.34"}, forwarded: 0, roughTTLOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.queries.Load()
			m := ask(t, "udp", s.Addr(), tc.qname, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode: got %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			got := m.Answer
			if tc.roughTTLOK { // a cached answer's TTL counts down
				for _, rr := range got {
					if h := rr.Header(); h.Ttl <= 60 && h.Ttl >= 55 {
						h.Ttl = 60
					}
				}
			}
			if !slices.Equal(strs(got), rrs(t, tc.answer)) {
				t.Errorf("answer: got %v, want %v", strs(got), rrs(t, tc.answer))
			}
			if n := up.queries.Load() - before; n != tc.forwarded {
				t.Errorf("queries upstream: got %d, want %d", n, tc.forwarded)
			}
			if !m.RecursionAvailable {
				t.Errorf("RA: got false, want true with upstreams")
			}
		})
	}
}

func TestForwardingUpstreamDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	dead := pc.LocalAddr().String()
	pc.Close() // nothing answers there now
	s := startServer(t, Config{Upstreams: []string{dead}}, clusterIndex())
	if m := ask(t, "udp", s.Addr(), "example.com.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("got %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if m := ask(t, "udp", s.Addr(), "hello.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("zone name: got %s with %d answers, want NOERROR with 1", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
}

func TestForwarderCacheExpiry(t *testing.T) {
	up := startUpstream(t)
	f := newForwarder([]string{up.addr})
	now := time.Unix(1_000_000, 0)
	f.now = func() time.Time { return now }
	for _, step := range []struct {
		advance   time.Duration
		forwarded int32
		ttl       uint32
	}{
		{0, 1, 60},
		{20 * time.Second, 0, 40},
		{39 * time.Second, 0, 1},
		{time.Second, 1, 60},
	} {
		now = now.Add(step.advance)
		before := up.queries.Load()
		m, err := f.exchange(t.Context(), "example.com.", dns.TypeA, false)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if n := up.queries.Load() - before; n != step.forwarded || m.Answer[0].Header().Ttl != step.ttl {
			t.Errorf("after %v: got %d upstream queries, TTL %d; want %d, %d", step.advance, n, m.Answer[0].Header().Ttl, step.forwarded, step.ttl)
		}
	}
}

func TestResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	content := "search default.svc.cluster.local\nnameserver 10.0.0.2\nnameserver 127.0.0.1\nnameserver fd00::53\noptions ndots:5\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		self net.Addr
		want []string
	}{
		{"not on port 53", &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5353}, []string{"10.0.0.2:53", "127.0.0.1:53", "[fd00::53]:53"}},
		{"skips itself", &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 53}, []string{"10.0.0.2:53", "[fd00::53]:53"}},
		{"skips a local address when on all addresses", &net.UDPAddr{IP: net.IPv4zero, Port: 53}, []string{"10.0.0.2:53", "[fd00::53]:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upstreamsFromResolvConf(path, tc.self)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := upstreamsFromResolvConf(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Errorf("missing file: got no error")
	}
}

func TestIndexFromInformers(t *testing.T) {
	client := fake.NewClientset(
		service("default", "hello", "10.43.0.10", port("http", corev1.ProtocolTCP, 80)),
		pod("default", "web-1", "10.42.0.20"),
	)
	f := informers.NewSharedInformerFactory(client, 0)
	x, err := NewIndexFromInformers(f)
	if err != nil {
		t.Fatal(err)
	}
	h := testHandler(t, x, nil)
	q := packQuery(t, "hello.default.svc.cluster.local.", dns.TypeA, 0)
	if m := exchange(t, h, q); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("before sync: got %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	ctx := t.Context()
	f.Start(ctx.Done())
	t.Cleanup(f.Shutdown)
	testutil.Eventually(t, 10*time.Second, func() string {
		if !x.Synced() {
			return "index not synced"
		}
		if m := exchange(t, h, q); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			return "hello not answered: " + dns.RcodeToString[m.Rcode]
		}
		return ""
	})
	if _, err := client.CoreV1().Endpoints("default").Create(ctx, endpoints("default", "hello", []string{"10.42.0.20"}, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services("default").Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if m := exchange(t, h, q); m.Rcode != dns.RcodeNameError {
			return "deleted service still answered: " + dns.RcodeToString[m.Rcode]
		}
		return ""
	})
	podQ := packQuery(t, "10-42-0-20.default.pod.cluster.local.", dns.TypeA, 0)
	if m := exchange(t, h, podQ); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("pod record: got %s with %d answers, want NOERROR with 1", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
}
