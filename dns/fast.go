package dns

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// optRR is the OPT record the server adds to answers of EDNS queries:
// root owner, type OPT, our UDP payload size, version 0, no flags, no options.
var optRR = [11]byte{0, 0, 41, byte(ednsSize >> 8), byte(ednsSize & 0xff), 0, 0, 0, 0, 0, 0}

// ednsSize is the UDP payload size the server advertises (the DNS Flag Day
// 2020 value, safe from fragmentation).
const ednsSize = 1232

// answerFast answers the common query straight from the wire: one question
// of class IN, at most an option-less OPT record, for a name the table
// holds or one in the zone it does not (NXDOMAIN). It appends the response
// to out and reports false for anything else, which the full handler then
// answers. For any query both paths give the same answer.
func (h *handler) answerFast(q, out []byte) ([]byte, bool) {
	if len(q) < 17 {
		return nil, false
	}
	// QR clear, opcode QUERY; one question, no answers or authority, at
	// most one additional record.
	if q[2]&0xf8 != 0 || q[4] != 0 || q[5] != 1 || q[6]|q[7]|q[8]|q[9] != 0 || q[10] != 0 || q[11] > 1 {
		return nil, false
	}
	var lower [255]byte
	off, n := 12, 0
	for {
		if off >= len(q) {
			return nil, false
		}
		l := int(q[off])
		if l&0xc0 != 0 || n+l+1 > 255 || off+l+1 > len(q) {
			return nil, false
		}
		lower[n] = byte(l)
		for i := 1; i <= l; i++ {
			c := q[off+i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[n+i] = c
		}
		n += l + 1
		off += l + 1
		if l == 0 {
			break
		}
	}
	qnameEnd := off
	if off+4 > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	qclass := binary.BigEndian.Uint16(q[off+2:])
	off += 4
	if qclass != dns.ClassINET || qtype == 0 || qtype == dns.TypeOPT || (qtype >= 128 && qtype != dns.TypeANY) {
		return nil, false
	}
	maxSize, edns := 512, false
	if q[11] == 1 {
		// The OPT record: root owner, type 41, version 0, no options.
		if off+11 != len(q) || q[off] != 0 || q[off+1] != 0 || q[off+2] != 41 || q[off+6] != 0 || q[off+9] != 0 || q[off+10] != 0 {
			return nil, false
		}
		edns = true
		if size := int(binary.BigEndian.Uint16(q[off+3:])); size > maxSize {
			maxSize = size
		}
	} else if off != len(q) {
		return nil, false
	}
	if !h.index.Synced() {
		return nil, false // the handler answers SERVFAIL for the zone meanwhile
	}
	wire := lower[:n]
	t := h.table
	e := t.lookup(wire)
	start := len(out)
	switch {
	case e == nil:
		if !t.inZone(wire) || t.nxSOA == nil {
			return nil, false // forwarded, or not loaded yet
		}
		out = append(out, q[:12]...)
		out = append(out, q[12:qnameEnd+4]...)
		out = append(out, t.nxSOA...)
		hdr := out[start:]
		hdr[3] = dns.RcodeNameError
		binary.BigEndian.PutUint16(hdr[8:], 1) // NSCOUNT
		binary.BigEndian.PutUint16(hdr[10:], 0)
	case e.packed[qtype] != nil:
		out = append(out, e.packed[qtype]...)
	case e.cname != nil || e.nodata == nil || len(e.answers[qtype]) > 0:
		return nil, false // a CNAME to chase, or too big to pack
	default:
		out = append(out, e.nodata...)
		binary.BigEndian.PutUint16(out[start+qnameEnd:], qtype)
	}
	resp := out[start:]
	copy(resp[0:2], q[0:2])
	resp[2] = 0x80 | 0x04 | q[2]&0x01 // QR, AA, RD from the query
	resp[3] = resp[3]&0x0f | q[3]&0x10
	if t.ra {
		resp[3] |= 0x80
	}
	copy(resp[12:qnameEnd], q[12:qnameEnd]) // the question as asked (0x20 case)
	if edns {
		out = append(out, optRR[:]...)
		resp = out[start:]
		binary.BigEndian.PutUint16(resp[10:], binary.BigEndian.Uint16(resp[10:])+1)
	}
	if len(resp) > maxSize {
		return out[:start], false // the handler truncates
	}
	return out, true
}
