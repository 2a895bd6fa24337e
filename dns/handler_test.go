package dns

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

const soaLine = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {serial} 7200 1800 86400 5"

type answerCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	ns     []string
	extra  []string
}

func checkAnswer(t *testing.T, h *handler, tc answerCase, edns int) {
	t.Helper()
	serial := fmt.Sprint(h.table.soaZone.Serial)
	fill := func(lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = strings.ReplaceAll(l, "{serial}", serial)
		}
		return out
	}
	m := exchange(t, h, packQuery(t, tc.qname, tc.qtype, edns))
	if m == nil {
		t.Fatalf("no answer")
	}
	if m.Rcode != tc.rcode {
		t.Errorf("rcode: got %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
	}
	if m.Id != 0x1234 || !m.Response {
		t.Errorf("header: got id %#x response %v, want id 0x1234 response true", m.Id, m.Response)
	}
	if len(m.Question) != 1 || m.Question[0].Name != tc.qname {
		t.Errorf("question: got %v, want %s as asked", m.Question, tc.qname)
	}
	if got, want := strs(m.Answer), rrs(t, fill(tc.answer)); !slices.Equal(got, want) {
		t.Errorf("answer: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := strs(m.Ns), rrs(t, fill(tc.ns)); !slices.Equal(got, want) {
		t.Errorf("authority: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := strs(m.Extra), rrs(t, fill(tc.extra)); !slices.Equal(got, want) {
		t.Errorf("additional: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if hasOPT := m.IsEdns0() != nil; hasOPT != (edns > 0) {
		t.Errorf("OPT record in answer: got %v, want %v", hasOPT, edns > 0)
	}
}

func TestAnswers(t *testing.T) {
	h := testHandler(t, clusterIndex(), nil)
	nodata := []string{soaLine}
	for _, tc := range []answerCase{
		{name: "service A", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"hello.default.svc.cluster.local. 5 IN A 10.43.0.10"}},
		{name: "case is kept", qname: "HeLLo.Default.SVC.cluster.LOCAL.", qtype: dns.TypeA,
			answer: []string{"HeLLo.Default.SVC.cluster.LOCAL. 5 IN A 10.43.0.10"}},
		{name: "other namespace", qname: "api.kube-system.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"api.kube-system.svc.cluster.local. 5 IN A 10.43.0.1"}},
		{name: "service AAAA on an IPv4 service is NODATA", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeAAAA, ns: nodata},
		{name: "IPv6 service", qname: "v6.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"v6.default.svc.cluster.local. 5 IN AAAA fd00:43::10"}},
		{name: "ANY", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"hello.default.svc.cluster.local. 5 IN A 10.43.0.10"}},
		{name: "SRV tcp", qname: "_http._tcp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.hello.default.svc.cluster.local. 5 IN SRV 0 100 80 hello.default.svc.cluster.local."},
			extra:  []string{"hello.default.svc.cluster.local. 5 IN A 10.43.0.10"}},
		{name: "SRV udp", qname: "_dns._udp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.hello.default.svc.cluster.local. 5 IN SRV 0 100 53 hello.default.svc.cluster.local."},
			extra:  []string{"hello.default.svc.cluster.local. 5 IN A 10.43.0.10"}},
		{name: "SRV with the wrong protocol", qname: "_http._udp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "empty non-terminal _tcp", qname: "_tcp.hello.default.svc.cluster.local.", qtype: dns.TypeA, ns: nodata},
		{name: "empty non-terminal namespace", qname: "default.svc.cluster.local.", qtype: dns.TypeA, ns: nodata},
		{name: "empty non-terminal svc", qname: "svc.cluster.local.", qtype: dns.TypeA, ns: nodata},
		{name: "unknown namespace", qname: "nope.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: nodata},
		{name: "unknown service", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: nodata},
		{name: "search-path expansion", qname: "hello.default.svc.cluster.local.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "outside name with the zone appended", qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "headless A", qname: "db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{
				"db.default.svc.cluster.local. 5 IN A 10.42.0.5",
				"db.default.svc.cluster.local. 5 IN A 10.42.1.6",
				"db.default.svc.cluster.local. 5 IN A 10.42.0.7",
			}},
		{name: "headless endpoint hostname", qname: "db-1.db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-1.db.default.svc.cluster.local. 5 IN A 10.42.1.6"}},
		{name: "headless endpoint without hostname", qname: "10-42-0-7.db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-0-7.db.default.svc.cluster.local. 5 IN A 10.42.0.7"}},
		{name: "not-ready endpoint has no name", qname: "db-2.db.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "headless SRV", qname: "_pg._tcp.db.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.default.svc.cluster.local.",
				"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-1.db.default.svc.cluster.local.",
				"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 10-42-0-7.db.default.svc.cluster.local.",
			},
			extra: []string{
				"db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.5",
				"db-1.db.default.svc.cluster.local. 5 IN A 10.42.1.6",
				"10-42-0-7.db.default.svc.cluster.local. 5 IN A 10.42.0.7",
			}},
		{name: "headless without endpoints is NODATA", qname: "empty.default.svc.cluster.local.", qtype: dns.TypeA, ns: nodata},
		{name: "PTR of a ClusterIP", qname: "10.0.43.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.0.43.10.in-addr.arpa. 5 IN PTR hello.default.svc.cluster.local."}},
		{name: "PTR of a headless endpoint", qname: "5.0.42.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.42.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 ClusterIP", qname: "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa. 5 IN PTR v6.default.svc.cluster.local."}},
		{name: "A on a PTR name is NODATA", qname: "10.0.43.10.in-addr.arpa.", qtype: dns.TypeA,
			ns: []string{"in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {serial} 7200 1800 86400 5"}},
		{name: "pod A", qname: "10-42-0-20.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-0-20.default.pod.cluster.local. 5 IN A 10.42.0.20"}},
		{name: "pod AAAA", qname: "fd00-42--20.default.pod.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00-42--20.default.pod.cluster.local. 5 IN AAAA fd00:42::20"}},
		{name: "pod in another namespace", qname: "10-42-0-20.other.pod.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "unknown pod IP", qname: "10-42-0-99.default.pod.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nodata},
		{name: "ExternalName", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}},
		{name: "ExternalName asked for CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}},
		{name: "ExternalName into the zone is followed", qname: "ext-in.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{
				"ext-in.default.svc.cluster.local. 5 IN CNAME hello.default.svc.cluster.local.",
				"hello.default.svc.cluster.local. 5 IN A 10.43.0.10",
			}},
		{name: "schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 5 IN TXT "1.1.0"`}},
		{name: "zone SOA", qname: "cluster.local.", qtype: dns.TypeSOA, answer: nodata},
		{name: "zone NS is NODATA", qname: "cluster.local.", qtype: dns.TypeNS, ns: nodata},
		{name: "outside the zone without upstreams", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "unknown PTR without upstreams", qname: "4.3.2.1.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "zone transfer", qname: "cluster.local.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAnswer(t, h, tc, 0)
		})
		t.Run(tc.name+" with EDNS", func(t *testing.T) {
			checkAnswer(t, h, tc, 1232)
		})
	}
}

// raw builds a message from a header and question the miekg packer would
// refuse to write.
func raw(id uint16, flags uint16, qd, an, ns, ar uint16, rest ...byte) []byte {
	b := []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), byte(qd >> 8), byte(qd), byte(an >> 8), byte(an), byte(ns >> 8), byte(ns), byte(ar >> 8), byte(ar)}
	return append(b, rest...)
}

var helloQuestion = []byte{5, 'h', 'e', 'l', 'l', 'o', 7, 'd', 'e', 'f', 'a', 'u', 'l', 't', 3, 's', 'v', 'c', 7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0, 1}

func TestBadQueries(t *testing.T) {
	h := testHandler(t, clusterIndex(), nil)
	opt := func(version byte) []byte { return []byte{0, 0, 41, 4, 0xd0, 0, version, 0, 0, 0, 0} }
	chaos := append(append([]byte{}, helloQuestion[:len(helloQuestion)-2]...), 0, 3)
	for _, tc := range []struct {
		name  string
		q     []byte
		rcode int // -1: no answer at all
	}{
		{name: "empty", q: nil, rcode: -1},
		{name: "short header", q: []byte{1, 2, 3}, rcode: -1},
		{name: "a response", q: raw(7, 0x8000, 1, 0, 0, 0, helloQuestion...), rcode: -1},
		{name: "no question", q: raw(7, 0, 0, 0, 0, 0), rcode: dns.RcodeFormatError},
		{name: "two questions", q: raw(7, 0, 2, 0, 0, 0, append(append([]byte{}, helloQuestion...), helloQuestion...)...), rcode: dns.RcodeFormatError},
		{name: "question cut short", q: raw(7, 0, 1, 0, 0, 0, helloQuestion[:10]...), rcode: dns.RcodeFormatError},
		{name: "missing answer records are ignored", q: raw(7, 0, 1, 3, 0, 0, helloQuestion...), rcode: dns.RcodeSuccess},
		{name: "compression loop", q: raw(7, 0, 1, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1), rcode: dns.RcodeFormatError},
		{name: "label too long", q: raw(7, 0, 1, 0, 0, 0, append([]byte{64}, make([]byte, 70)...)...), rcode: dns.RcodeFormatError},
		{name: "update opcode", q: raw(7, 5<<11, 1, 0, 0, 0, helloQuestion...), rcode: dns.RcodeNotImplemented},
		{name: "status opcode", q: raw(7, 2<<11, 1, 0, 0, 0, helloQuestion...), rcode: dns.RcodeNotImplemented},
		{name: "chaos class", q: raw(7, 0, 1, 0, 0, 0, chaos...), rcode: dns.RcodeNotImplemented},
		{name: "EDNS version 1", q: raw(7, 0, 1, 0, 0, 1, append(append([]byte{}, helloQuestion...), opt(1)...)...), rcode: dns.RcodeBadVers},
		{name: "two OPT records", q: raw(7, 0, 1, 0, 0, 2, append(append(append([]byte{}, helloQuestion...), opt(0)...), opt(0)...)...), rcode: dns.RcodeFormatError},
		{name: "qtype OPT", q: raw(7, 0, 1, 0, 0, 0, append(append([]byte{}, helloQuestion[:len(helloQuestion)-4]...), 0, 41, 0, 1)...), rcode: dns.RcodeFormatError},
		{name: "trailing garbage is ignored", q: raw(7, 0, 1, 0, 0, 0, append(append([]byte{}, helloQuestion...), 1, 2, 3)...), rcode: dns.RcodeSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := exchange(t, h, tc.q)
			if tc.rcode < 0 {
				if m != nil {
					t.Fatalf("got answer %v, want none", m)
				}
				return
			}
			if m == nil {
				t.Fatalf("got no answer, want %s", dns.RcodeToString[tc.rcode])
			}
			if m.Rcode != tc.rcode || m.Id != 7 || !m.Response {
				t.Errorf("got rcode %s id %d response %v, want %s id 7 response true", dns.RcodeToString[m.Rcode], m.Id, m.Response, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	x := NewIndex()
	x.UpsertService(service("default", "big", corev1.ClusterIPNone))
	var ips []string
	for i := range 100 {
		ips = append(ips, fmt.Sprintf("10.42.%d.%d", i/200, i%200+1))
	}
	x.UpsertEndpoints(endpoints("default", "big", ips, nil))
	h := testHandler(t, x, nil)
	for _, tc := range []struct {
		name      string
		edns      int
		truncated bool
	}{
		{name: "no EDNS: 512 bytes", edns: 0, truncated: true},
		{name: "EDNS 1232", edns: 1232, truncated: true},
		{name: "EDNS 4096", edns: 4096, truncated: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := packQuery(t, "big.default.svc.cluster.local.", dns.TypeA, tc.edns)
			b := h.answerPacket(t.Context(), q, nil)
			limit := max(512, tc.edns)
			if len(b) > limit {
				t.Errorf("answer size: got %d, want at most %d", len(b), limit)
			}
			m := exchange(t, h, q)
			if m.Truncated != tc.truncated {
				t.Errorf("TC: got %v, want %v", m.Truncated, tc.truncated)
			}
			if !tc.truncated && len(m.Answer) != 100 {
				t.Errorf("answers: got %d, want 100", len(m.Answer))
			}
		})
	}
}

func TestIndexUpdates(t *testing.T) {
	x := NewIndex()
	h := testHandler(t, x, nil)
	rcode := func(name string, qtype uint16) (int, []string) {
		m := exchange(t, h, packQuery(t, name, qtype, 0))
		return m.Rcode, strs(m.Answer)
	}
	steps := []struct {
		name   string
		change func()
		qname  string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{"before any service", func() {}, "default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"service added", func() { x.UpsertService(service("default", "web", "10.43.0.5")) },
			"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.5"}},
		{"namespace exists now", func() {}, "default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"ClusterIP changed", func() { x.UpsertService(service("default", "web", "10.43.0.6")) },
			"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.6"}},
		{"old PTR gone", func() {}, "5.0.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, nil},
		{"headless with endpoints", func() {
			x.UpsertService(service("default", "web", corev1.ClusterIPNone))
			x.UpsertEndpoints(endpoints("default", "web", []string{"10.42.0.1"}, nil))
		}, "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN A 10.42.0.1"}},
		{"endpoint replaced", func() { x.UpsertEndpoints(endpoints("default", "web", []string{"10.42.0.2"}, nil)) },
			"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.default.svc.cluster.local. 5 IN A 10.42.0.2"}},
		{"old endpoint name gone", func() {}, "10-42-0-1.web.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"endpoints deleted", func() { x.DeleteEndpoints("default", "web") },
			"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"service deleted", func() { x.DeleteService("default", "web") },
			"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"namespace gone with its last service", func() {}, "default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"pod added", func() { x.UpsertPod(pod("default", "p", "10.42.0.9")) },
			"10-42-0-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10-42-0-9.default.pod.cluster.local. 5 IN A 10.42.0.9"}},
		{"pod finished", func() {
			p := pod("default", "p", "10.42.0.9")
			p.Status.Phase = corev1.PodSucceeded
			x.UpsertPod(p)
		}, "10-42-0-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, s := range steps {
		s.change()
		got, ans := rcode(s.qname, s.qtype)
		if want := rrs(t, s.answer); got != s.rcode || !slices.Equal(ans, want) {
			t.Fatalf("%s: %s: got %s %v, want %s %v", s.name, s.qname, dns.RcodeToString[got], ans, dns.RcodeToString[s.rcode], want)
		}
	}
	if n := len(h.table.entries); n != 4 { // apex, dns-version, svc, pod, and nothing else
		t.Errorf("table entries after everything was deleted: got %d, want the 4 static ones", n)
	}
}

// TestConcurrentUpdates reads while the index changes (run with -race).
func TestConcurrentUpdates(t *testing.T) {
	x := clusterIndex()
	h := testHandler(t, x, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			x.UpsertEndpoints(endpoints("default", "db", []string{fmt.Sprintf("db-0=10.42.0.%d", i%50+1)}, nil, epPort("pg", corev1.ProtocolTCP, 5432)))
			x.UpsertService(service("default", fmt.Sprintf("s-%d", i%10), fmt.Sprintf("10.43.1.%d", i%10+1)))
		}
	}()
	q := packQuery(t, "db-0.db.default.svc.cluster.local.", dns.TypeA, 0)
	for {
		select {
		case <-done:
			return
		default:
		}
		var m dns.Msg // answers change meanwhile, so no comparing of paths here
		if err := m.Unpack(h.answerPacket(t.Context(), q, nil)); err != nil {
			t.Fatalf("unpack: %v", err)
		}
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("during updates: got %s with %d answers, want NOERROR with 1", dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
}
