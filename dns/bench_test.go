//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the API orch serves and the DNS index reads.

package dns

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// benchIndex holds n ClusterIP services svc-<i> in namespace default.
func benchIndex(n int) *Index {
	x := NewIndex()
	for i := range n {
		x.UpsertService(service("default", fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.43.%d.%d", i/250, i%250+1),
			port("http", corev1.ProtocolTCP, 80)))
	}
	return x
}

// BenchmarkServeA is the in-process cost of answering an A query for a
// service from its packet: what a UDP worker does between read and write.
func BenchmarkServeA(b *testing.B) {
	h := testHandler(b, benchIndex(1000), nil)
	var qs [][]byte
	for i := range 1000 {
		qs = append(qs, packQuery(b, fmt.Sprintf("svc-%d.default.svc.cluster.local.", i), dns.TypeA, 0))
	}
	out := make([]byte, 0, 65535)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := h.answerFast(qs[i%len(qs)], out[:0]); !ok {
			b.Fatal("fast path refused a service query")
		}
		i++
	}
}

// BenchmarkServeAGeneral is the same query through the general path
// (unpack, answer, pack), for comparison.
func BenchmarkServeAGeneral(b *testing.B) {
	h := testHandler(b, benchIndex(1000), nil)
	q := packQuery(b, "svc-500.default.svc.cluster.local.", dns.TypeA, 0)
	b.ReportAllocs()
	for b.Loop() {
		if h.answerSlow(b.Context(), q, true) == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkServeNXDOMAIN answers a search-path expansion.
func BenchmarkServeNXDOMAIN(b *testing.B) {
	h := testHandler(b, benchIndex(1000), nil)
	q := packQuery(b, "svc-500.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeA, 0)
	out := make([]byte, 0, 65535)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := h.answerFast(q, out[:0]); !ok {
			b.Fatal("fast path refused")
		}
	}
}

// BenchmarkUpsertEndpoints is the cost of one endpoints change of a
// headless service with 20 endpoints, in a table of 1,000 services.
func BenchmarkUpsertEndpoints(b *testing.B) {
	x := benchIndex(1000)
	testHandler(b, x, nil)
	x.UpsertService(service("default", "headless", corev1.ClusterIPNone, port("http", corev1.ProtocolTCP, 80)))
	eps := make([]*corev1.Endpoints, 2)
	for v := range eps {
		var ips []string
		for i := range 20 {
			ips = append(ips, fmt.Sprintf("10.42.%d.%d", v, i+1))
		}
		eps[v] = endpoints("default", "headless", ips, nil, epPort("http", corev1.ProtocolTCP, 80))
	}
	i := 0
	for b.Loop() {
		x.UpsertEndpoints(eps[i%2])
		i++
	}
}
