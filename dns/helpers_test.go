//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the API orch serves and the DNS index reads.

package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fixture constructors: a test states only what differs.

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

func externalService(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

func port(name string, proto corev1.Protocol, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: p}
}

func epPort(name string, proto corev1.Protocol, p int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Protocol: proto, Port: p}
}

// addr is a ready endpoint address "ip" or "hostname=ip".
func addr(s string) corev1.EndpointAddress {
	if host, ip, ok := strings.Cut(s, "="); ok {
		return corev1.EndpointAddress{IP: ip, Hostname: host}
	}
	return corev1.EndpointAddress{IP: s}
}

func endpoints(ns, name string, ready, notReady []string, ports ...corev1.EndpointPort) *corev1.Endpoints {
	ss := corev1.EndpointSubset{Ports: ports}
	for _, a := range ready {
		ss.Addresses = append(ss.Addresses, addr(a))
	}
	for _, a := range notReady {
		ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr(a))
	}
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subsets: []corev1.EndpointSubset{ss}}
}

func pod(ns, name string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Status.Phase = corev1.PodRunning
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		p.Status.PodIP = ips[0]
	}
	return p
}

// clusterIndex is the index most tests answer from.
func clusterIndex() *Index {
	x := NewIndex()
	x.UpsertService(service("default", "hello", "10.43.0.10",
		port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53), port("", corev1.ProtocolTCP, 8080)))
	x.UpsertService(service("kube-system", "api", "10.43.0.1", port("https", corev1.ProtocolTCP, 443)))
	x.UpsertService(service("default", "db", corev1.ClusterIPNone, port("pg", corev1.ProtocolTCP, 5432)))
	x.UpsertEndpoints(endpoints("default", "db",
		[]string{"db-0=10.42.0.5", "db-1=10.42.1.6", "10.42.0.7"}, []string{"db-2=10.42.0.9"},
		epPort("pg", corev1.ProtocolTCP, 5432)))
	x.UpsertService(service("default", "empty", corev1.ClusterIPNone))
	x.UpsertService(externalService("default", "ext", "example.com"))
	x.UpsertService(externalService("default", "ext-in", "hello.default.svc.cluster.local"))
	x.UpsertService(service("default", "v6", "fd00:43::10", port("http", corev1.ProtocolTCP, 80)))
	x.UpsertPod(pod("default", "web-1", "10.42.0.20", "fd00:42::20"))
	return x
}

func testHandler(t testing.TB, x *Index, fwd *forwarder) *handler {
	t.Helper()
	h := newHandler(context.Background(), x, "cluster.local", 5, fwd, nil)
	t.Cleanup(h.close)
	return h
}

func packQuery(t testing.TB, name string, qtype uint16, edns int) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	if edns > 0 {
		m.SetEdns0(uint16(edns), false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	return b
}

// exchange answers a packed UDP query in process, through the fast path
// when it takes the query (checking the general path agrees) and through
// the general path otherwise.
func exchange(t testing.TB, h *handler, q []byte) *dns.Msg {
	t.Helper()
	slow := h.answerSlow(context.Background(), q, true)
	fast, ok := h.answerFast(q, nil)
	b := slow
	if ok {
		if err := sameAnswer(fast, slow); err != nil {
			t.Fatalf("fast and general paths differ: %v", err)
		}
		b = fast
	}
	if b == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	return m
}

// sameAnswer compares two packed responses as messages, ignoring the
// letter case of names.
func sameAnswer(a, b []byte) error {
	var ma, mb dns.Msg
	if err := ma.Unpack(a); err != nil {
		return fmt.Errorf("unpack fast answer: %w", err)
	}
	if err := mb.Unpack(b); err != nil {
		return fmt.Errorf("unpack general answer: %w", err)
	}
	if sa, sb := strings.ToLower(ma.String()), strings.ToLower(mb.String()); sa != sb {
		return fmt.Errorf("got (fast)\n%s\nwant (general)\n%s", sa, sb)
	}
	return nil
}

// rrs parses zone-file lines into records, as strings in canonical form.
func rrs(t testing.TB, lines []string) []string {
	t.Helper()
	out := []string{}
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", l, err)
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func strs(records []dns.RR) []string {
	out := []string{}
	for _, rr := range records {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}
