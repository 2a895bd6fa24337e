package dns

import (
	"context"
	"encoding/binary"
	"log/slog"

	"github.com/miekg/dns"
)

// maxChase bounds how many CNAMEs the handler follows for one answer.
const maxChase = 8

// handler answers DNS queries for one zone from an Index, and forwards the
// rest. Most queries are answered on the wire by answerFast; answer is the
// general path for everything, and the reference the fast path must agree
// with.
type handler struct {
	table *table
	index *Index
	fwd   *forwarder // nil: nothing is forwarded (REFUSED)
	log   *slog.Logger
	ctx   context.Context // bounds forwarded queries made for ServeDNS
}

func newHandler(ctx context.Context, idx *Index, zone string, ttl uint32, fwd *forwarder, log *slog.Logger) *handler {
	t := newTable(zone, ttl, fwd != nil)
	idx.attach(t)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{table: t, index: idx, fwd: fwd, log: log, ctx: ctx}
}

// close detaches the handler's table from the index.
func (h *handler) close() { h.index.detach(h.table) }

// ServeDNS answers a query that arrived through a miekg/dns server (TCP).
func (h *handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := h.answer(h.ctx, r)
	if m == nil {
		return
	}
	if w.LocalAddr() != nil && w.LocalAddr().Network() == "udp" {
		m.Truncate(udpSize(r))
	}
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("dns: write answer", "err", err)
	}
}

// answerPacket answers one UDP query given as bytes, or returns nil when
// it gets no answer (responses, runts).
func (h *handler) answerPacket(ctx context.Context, q, out []byte) []byte {
	if b, ok := h.answerFast(q, out); ok {
		return b
	}
	return h.answerSlow(ctx, q, true)
}

// answerSlow unpacks a query, answers it and packs the response,
// truncated to the client's UDP size when udp is set.
func (h *handler) answerSlow(ctx context.Context, q []byte, udp bool) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 {
		return nil // too short to answer, or a response: never answer those
	}
	r := new(dns.Msg)
	var m *dns.Msg
	if err := r.Unpack(q); err != nil {
		m = &dns.Msg{MsgHdr: dns.MsgHdr{
			Id:                 binary.BigEndian.Uint16(q),
			Response:           true,
			Opcode:             int(q[2]>>3) & 0xf,
			RecursionDesired:   q[2]&1 != 0,
			RecursionAvailable: h.table.ra,
			Rcode:              dns.RcodeFormatError,
		}}
		r = nil
	} else {
		m = h.answer(ctx, r)
		if m == nil {
			return nil
		}
	}
	if udp && r != nil {
		m.Truncate(udpSize(r))
	}
	b, err := m.Pack()
	if err != nil {
		h.log.Debug("dns: pack answer", "err", err)
		fail := &dns.Msg{MsgHdr: m.MsgHdr}
		fail.Rcode = dns.RcodeServerFailure
		fail.Question = m.Question
		if b, err = fail.Pack(); err != nil {
			return nil
		}
	}
	return b
}

// udpSize is the largest UDP answer the client takes.
func udpSize(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil && opt.UDPSize() > 512 {
		return int(opt.UDPSize())
	}
	return 512
}

// answer is the general query path. It returns nil for messages that get
// no answer.
func (h *handler) answer(ctx context.Context, r *dns.Msg) *dns.Msg {
	if r == nil || r.Response {
		return nil
	}
	t := h.table
	m := &dns.Msg{MsgHdr: dns.MsgHdr{
		Id:                 r.Id,
		Response:           true,
		Opcode:             r.Opcode,
		RecursionDesired:   r.RecursionDesired,
		CheckingDisabled:   r.CheckingDisabled,
		RecursionAvailable: t.ra,
	}, Compress: true}
	var opt *dns.OPT
	nopt := 0
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			nopt++
		}
	}
	h.answerQuestion(ctx, r, m, opt, nopt)
	if opt != nil && nopt == 1 {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

func (h *handler) answerQuestion(ctx context.Context, r, m *dns.Msg, opt *dns.OPT, nopt int) {
	switch {
	case nopt > 1:
		m.Rcode = dns.RcodeFormatError
		return
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		return
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		m.Question = r.Question
		return
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return
	}
	q := r.Question[0]
	m.Question = []dns.Question{q}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeNotImplemented
		return
	}
	switch q.Qtype {
	case 0, dns.TypeOPT, dns.TypeTKEY, dns.TypeTSIG:
		m.Rcode = dns.RcodeFormatError
		return
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return
	case dns.TypeMAILA, dns.TypeMAILB:
		m.Rcode = dns.RcodeNotImplemented
		return
	}
	wire := wireName(q.Name)
	if wire == nil {
		m.Rcode = dns.RcodeFormatError
		return
	}
	t := h.table
	inZone := t.inZone(wire)
	if !h.index.Synced() && inZone {
		m.Rcode = dns.RcodeServerFailure // not loaded yet: nothing cacheable
		return
	}
	if e := t.lookup(wire); e != nil {
		h.answerLocal(ctx, m, e, q)
		return
	}
	if inZone {
		m.Authoritative = true
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{t.soaZone}
		return
	}
	h.forward(ctx, m, q)
}

// answerLocal answers from a table entry: the records of the asked type,
// a CNAME followed to its target, or NODATA.
func (h *handler) answerLocal(ctx context.Context, m *dns.Msg, e *entry, q dns.Question) {
	m.Authoritative = true
	if rrs := e.answers[q.Qtype]; len(rrs) > 0 {
		m.Answer = withOwner(rrs, e.name, q.Name)
		m.Extra = append(m.Extra, e.extras[q.Qtype]...)
		return
	}
	if e.cname == nil {
		m.Ns = []dns.RR{e.soa}
		return
	}
	m.Answer = withOwner([]dns.RR{e.cname}, e.name, q.Name)
	target := e.cname.Target
	for range maxChase {
		wire := wireName(target)
		if wire == nil {
			return
		}
		next := h.table.lookup(wire)
		if next == nil {
			if h.table.inZone(wire) {
				m.Rcode = dns.RcodeNameError
				m.Ns = []dns.RR{h.table.soaZone}
				return
			}
			h.chaseUpstream(ctx, m, target, q.Qtype)
			return
		}
		if rrs := next.answers[q.Qtype]; len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs...)
			return
		}
		if next.cname == nil {
			m.Ns = []dns.RR{next.soa}
			return
		}
		m.Answer = append(m.Answer, next.cname)
		target = next.cname.Target
	}
}

// chaseUpstream resolves the out-of-zone target of a CNAME, so that stub
// resolvers get the whole chain in one answer.
func (h *handler) chaseUpstream(ctx context.Context, m *dns.Msg, target string, qtype uint16) {
	if h.fwd == nil {
		return
	}
	up, err := h.fwd.exchange(ctx, target, qtype, m.CheckingDisabled)
	if err != nil {
		h.log.Debug("dns: resolve CNAME target", "name", target, "err", err)
		return // the CNAME alone; the client may resolve the target itself
	}
	m.Answer = append(m.Answer, up.Answer...)
	if up.Rcode == dns.RcodeNameError || len(up.Answer) == 0 {
		m.Rcode = up.Rcode
		m.Ns = up.Ns
	}
}

// forward answers a name outside the zone from the upstream resolvers.
func (h *handler) forward(ctx context.Context, m *dns.Msg, q dns.Question) {
	if h.fwd == nil {
		m.Rcode = dns.RcodeRefused
		return
	}
	up, err := h.fwd.exchange(ctx, q.Name, q.Qtype, m.CheckingDisabled)
	if err != nil {
		h.log.Debug("dns: forward", "name", q.Name, "err", err)
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Rcode = up.Rcode
	m.Answer = up.Answer
	m.Ns = up.Ns
	m.Extra = up.Extra
}

// withOwner returns rrs with the owner name as the client spelled it (DNS
// 0x20 clients check the case).
func withOwner(rrs []dns.RR, canonical, asked string) []dns.RR {
	if canonical == asked {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		if rr.Header().Name == canonical {
			rr = dns.Copy(rr)
			rr.Header().Name = asked
		}
		out[i] = rr
	}
	return out
}
