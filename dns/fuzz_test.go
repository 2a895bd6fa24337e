package dns

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary packets to the query handler. It must never
// panic; every answer must unpack and carry the query's ID; and whenever
// the fast path takes a packet its answer must equal the general path's.
func FuzzHandler(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  int
	}{
		{"hello.default.svc.cluster.local.", dns.TypeA, 0},
		{"HELLO.default.svc.cluster.local.", dns.TypeAAAA, 1232},
		{"_http._tcp.hello.default.svc.cluster.local.", dns.TypeSRV, 0},
		{"db.default.svc.cluster.local.", dns.TypeA, 4096},
		{"db-0.db.default.svc.cluster.local.", dns.TypeANY, 0},
		{"default.svc.cluster.local.", dns.TypeA, 0},
		{"hello.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeA, 0},
		{"10.0.43.10.in-addr.arpa.", dns.TypePTR, 0},
		{"10-42-0-20.default.pod.cluster.local.", dns.TypeA, 0},
		{"ext.default.svc.cluster.local.", dns.TypeA, 0},
		{"ext-in.default.svc.cluster.local.", dns.TypeA, 1232},
		{"cluster.local.", dns.TypeSOA, 0},
		{"example.com.", dns.TypeA, 0},
	} {
		f.Add(packQuery(f, q.name, q.qtype, q.edns))
	}
	f.Add(raw(7, 0, 2, 0, 0, 0, append(append([]byte{}, helloQuestion...), helloQuestion...)...))
	f.Add(raw(7, 5<<11, 1, 0, 0, 0, helloQuestion...))
	f.Add(raw(7, 0, 1, 0, 0, 1, append(append([]byte{}, helloQuestion...), 0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 0)...))

	h := testHandler(f, clusterIndex(), nil)
	f.Fuzz(func(t *testing.T, q []byte) {
		slow := h.answerSlow(context.Background(), q, true)
		fast, ok := h.answerFast(q, nil)
		if ok {
			if err := sameAnswer(fast, slow); err != nil {
				t.Fatalf("fast and general paths differ for %x: %v", q, err)
			}
		}
		if slow == nil {
			return
		}
		var m dns.Msg
		if err := m.Unpack(slow); err != nil {
			t.Fatalf("answer to %x does not unpack: %v", q, err)
		}
		if m.Id != binary.BigEndian.Uint16(q) || !m.Response {
			t.Fatalf("answer to %x: got id %d response %v, want id %d response true", q, m.Id, m.Response, binary.BigEndian.Uint16(q))
		}
		if len(slow) > 512 && m.IsEdns0() == nil {
			t.Fatalf("answer to %x: %d bytes without EDNS", q, len(slow))
		}
	})
}
