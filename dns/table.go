package dns

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// table holds the records of one zone as answers ready to send: for every
// name (keyed by its lowercase wire form) the records by type and the
// packed responses for each type. Writers (the Index) rebuild only the
// names an object touches; readers take a read lock for one map lookup.
type table struct {
	zone     string // lowercase, fully qualified
	zoneWire []byte
	ttl      uint32
	ra       bool // recursion available: names outside the zone are forwarded

	soaZone, soaV4, soaV6 *dns.SOA
	nxSOA                 []byte // the zone's SOA record packed, for NXDOMAIN answers

	mu      sync.RWMutex
	entries map[string]*entry

	wmu    sync.Mutex // guards the writer state below
	nodes  map[string]*wnode
	owners map[string][]item
}

// wnode is the writer's view of one name: what each owner contributes and
// how many names below it exist (an empty non-terminal exists while that
// count is positive).
type wnode struct {
	name     string
	inZone   bool
	byOwner  map[string][]item
	children int
}

// entry is the reader's immutable view of one name.
type entry struct {
	name    string
	answers map[uint16][]dns.RR
	extras  map[uint16][]dns.RR
	cname   *dns.CNAME
	soa     *dns.SOA // authority record for NODATA
	// packed holds complete responses (ID 0, RD clear, question in
	// lowercase) by query type; nodata is the NODATA response with
	// query type 0. The fast path patches ID, flags, the question's case
	// and type.
	packed map[uint16][]byte
	nodata []byte
}

func newTable(zone string, ttl uint32, ra bool) *table {
	zone = strings.ToLower(dns.Fqdn(zone))
	t := &table{
		zone:     zone,
		zoneWire: wireName(zone),
		ttl:      ttl,
		ra:       ra,
		entries:  map[string]*entry{},
		nodes:    map[string]*wnode{},
		owners:   map[string][]item{},
	}
	serial := uint32(time.Now().Unix())
	soa := func(name string) *dns.SOA {
		return &dns.SOA{
			Hdr: t.hdr(name, dns.TypeSOA), Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone,
			Serial: serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl,
		}
	}
	t.soaZone, t.soaV4, t.soaV6 = soa(zone), soa("in-addr.arpa."), soa("ip6.arpa.")
	buf := make([]byte, 512)
	n, err := dns.PackRR(t.soaZone, buf, 0, nil, false)
	if err == nil {
		t.nxSOA = buf[:n]
	}
	t.setOwner("static", t.staticItems())
	return t
}

// wireName returns the lowercase wire form of a presentation name, or nil.
func wireName(name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	buf = buf[:n]
	lowerASCII(buf)
	return buf
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// lookup returns the entry for a lowercase wire name.
func (t *table) lookup(wire []byte) *entry {
	t.mu.RLock()
	e := t.entries[string(wire)]
	t.mu.RUnlock()
	return e
}

// inZone reports whether a lowercase wire name is the zone or below it.
func (t *table) inZone(wire []byte) bool {
	for off := 0; off < len(wire); {
		if len(wire)-off == len(t.zoneWire) {
			return string(wire[off:]) == string(t.zoneWire)
		}
		if len(wire)-off < len(t.zoneWire) {
			return false
		}
		l := int(wire[off])
		if l == 0 {
			return false
		}
		off += l + 1
	}
	return false
}

// setOwner replaces everything owner contributes with items.
func (t *table) setOwner(owner string, items []item) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	old := t.owners[owner]
	if len(items) == 0 {
		delete(t.owners, owner)
	} else {
		t.owners[owner] = items
	}
	oldBy, newBy := groupByName(old), groupByName(items)
	dirty := map[string]bool{}
	for name, g := range newBy {
		n := t.nodes[name]
		if n == nil {
			n = t.newNode(name, dirty)
		} else if sameItems(n.byOwner[owner], g) {
			continue
		}
		n.byOwner[owner] = g
		dirty[name] = true
	}
	for name := range oldBy {
		if _, ok := newBy[name]; ok {
			continue
		}
		if n := t.nodes[name]; n != nil {
			delete(n.byOwner, owner)
			dirty[name] = true
			t.maybeRemove(n, dirty)
		}
	}
	if len(dirty) == 0 {
		return
	}
	built := make(map[string]*entry, len(dirty))
	for name := range dirty {
		if n := t.nodes[name]; n != nil {
			built[name] = t.buildEntry(n)
		} else {
			built[name] = nil
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, e := range built {
		k := string(wireName(name))
		if e == nil {
			delete(t.entries, k)
		} else {
			t.entries[k] = e
		}
	}
}

func (t *table) newNode(name string, dirty map[string]bool) *wnode {
	n := &wnode{name: name, inZone: dns.IsSubDomain(t.zone, name), byOwner: map[string][]item{}}
	t.nodes[name] = n
	dirty[name] = true
	if n.inZone && name != t.zone {
		off, end := dns.NextLabel(name, 0)
		if !end {
			parent := name[off:]
			p := t.nodes[parent]
			if p == nil {
				p = t.newNode(parent, dirty)
			}
			p.children++
		}
	}
	return n
}

func (t *table) maybeRemove(n *wnode, dirty map[string]bool) {
	if len(n.byOwner) > 0 || n.children > 0 {
		return
	}
	delete(t.nodes, n.name)
	dirty[n.name] = true
	if n.inZone && n.name != t.zone {
		off, end := dns.NextLabel(n.name, 0)
		if !end {
			if p := t.nodes[n.name[off:]]; p != nil {
				p.children--
				t.maybeRemove(p, dirty)
			}
		}
	}
}

func groupByName(items []item) map[string][]item {
	m := map[string][]item{}
	for _, it := range items {
		m[it.name] = append(m[it.name], it)
	}
	return m
}

func sameItems(a, b []item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].extraFor != b[i].extraFor || (a[i].rr == nil) != (b[i].rr == nil) {
			return false
		}
		if a[i].rr != nil && (!dns.IsDuplicate(a[i].rr, b[i].rr) || a[i].rr.Header().Ttl != b[i].rr.Header().Ttl) {
			return false
		}
	}
	return true
}

// buildEntry merges the contributions of all owners of a name (in owner
// order, without duplicates) and packs the responses.
func (t *table) buildEntry(n *wnode) *entry {
	e := &entry{
		name:    n.name,
		answers: map[uint16][]dns.RR{},
		extras:  map[uint16][]dns.RR{},
		packed:  map[uint16][]byte{},
		soa:     t.soaFor(n.name),
	}
	owners := make([]string, 0, len(n.byOwner))
	for o := range n.byOwner {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	seen := map[string]bool{}
	for _, o := range owners {
		for _, it := range n.byOwner[o] {
			if it.rr == nil {
				continue
			}
			k := string(rune(it.extraFor)) + it.rr.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			if it.extraFor != 0 {
				e.extras[it.extraFor] = append(e.extras[it.extraFor], it.rr)
				continue
			}
			typ := it.rr.Header().Rrtype
			e.answers[typ] = append(e.answers[typ], it.rr)
			if c, ok := it.rr.(*dns.CNAME); ok && e.cname == nil {
				e.cname = c
			}
		}
	}
	var all []dns.RR
	types := make([]int, 0, len(e.answers))
	for typ := range e.answers {
		types = append(types, int(typ))
	}
	sort.Ints(types)
	for _, typ := range types {
		rrs := e.answers[uint16(typ)]
		all = append(all, rrs...)
		if b := t.pack(n.name, uint16(typ), dns.RcodeSuccess, rrs, nil, e.extras[uint16(typ)]); b != nil {
			e.packed[uint16(typ)] = b
		}
	}
	if len(all) > 0 {
		e.answers[dns.TypeANY] = all
		if b := t.pack(n.name, dns.TypeANY, dns.RcodeSuccess, all, nil, nil); b != nil {
			e.packed[dns.TypeANY] = b
		}
	}
	e.nodata = t.pack(n.name, 0, dns.RcodeSuccess, nil, []dns.RR{e.soa}, nil)
	return e
}

// soaFor returns the SOA that negative answers for name carry.
func (t *table) soaFor(name string) *dns.SOA {
	switch {
	case dns.IsSubDomain("in-addr.arpa.", name):
		return t.soaV4
	case dns.IsSubDomain("ip6.arpa.", name):
		return t.soaV6
	}
	return t.soaZone
}

// pack builds a complete authoritative response with ID 0 and RD clear.
func (t *table) pack(name string, qtype uint16, rcode int, answer, ns, extra []dns.RR) []byte {
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Response: true, Authoritative: true, RecursionAvailable: t.ra, Rcode: rcode},
		Compress: true,
		Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}},
		Answer:   answer,
		Ns:       ns,
		Extra:    extra,
	}
	b, err := m.Pack()
	if err != nil || len(b) > 65535-11 {
		return nil // the slow path answers (and truncates) instead
	}
	return b
}
