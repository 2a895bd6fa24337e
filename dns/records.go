package dns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// schemaVersion is the version of the Kubernetes DNS schema served at
// dns-version.<zone>.
const schemaVersion = "1.1.0"

// item is one record a Service or Pod contributes to the table. A nil rr
// only says that the name exists (a headless Service without ready
// endpoints answers NODATA, not NXDOMAIN). extraFor != 0 makes rr an
// additional-section record for answers of that type at name (the address
// records of SRV targets).
type item struct {
	name     string // lowercase, fully qualified
	rr       dns.RR
	extraFor uint16
}

func (t *table) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: t.ttl}
}

func (t *table) addr(name string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		a := ip.As4()
		return &dns.A{Hdr: t.hdr(name, dns.TypeA), A: a[:]}
	}
	a := ip.As16()
	return &dns.AAAA{Hdr: t.hdr(name, dns.TypeAAAA), AAAA: a[:]}
}

func (t *table) ptr(ip netip.Addr, target string) item {
	name, _ := dns.ReverseAddr(ip.String())
	return item{name: name, rr: &dns.PTR{Hdr: t.hdr(name, dns.TypePTR), Ptr: target}}
}

func (t *table) srv(name string, port uint16, target string) dns.RR {
	return &dns.SRV{Hdr: t.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: port, Target: target}
}

// dashed is the label for an IP address in pod names and in names of
// headless endpoints without a hostname: 10.42.0.5 → 10-42-0-5,
// fd00::5 → fd00--5.
func dashed(ip netip.Addr) string {
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	return strings.ReplaceAll(ip.String(), ":", "-")
}

// validLabels reports whether every part joins into a name the DNS can carry.
func validName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok && !strings.ContainsAny(name, "\\ ")
}

// serviceItems computes the records of one Service (and its Endpoints),
// following the Kubernetes DNS-Based Service Discovery specification.
func (t *table) serviceItems(svc *serviceInfo, ep *endpointsInfo) []item {
	if svc == nil {
		return nil
	}
	base := strings.ToLower(svc.name + "." + svc.namespace + ".svc." + t.zone)
	if !validName(base) || dns.CountLabel(base) != dns.CountLabel(t.zone)+3 {
		return nil
	}
	items := []item{{name: base}} // the Service's name exists even without records
	if svc.externalName != "" {
		target := dns.Fqdn(svc.externalName)
		if validName(target) {
			items = append(items, item{name: base, rr: &dns.CNAME{Hdr: t.hdr(base, dns.TypeCNAME), Target: target}})
		}
		return items
	}
	srvName := func(p portInfo) (string, bool) {
		n := "_" + p.name + "._" + p.proto + "." + base
		return n, validName(n) && dns.CountLabel(n) == dns.CountLabel(base)+2
	}
	if !svc.headless {
		var addrs []dns.RR
		for _, ip := range svc.ips {
			rr := t.addr(base, ip)
			addrs = append(addrs, rr)
			items = append(items, item{name: base, rr: rr}, t.ptr(ip, base))
		}
		for _, p := range svc.ports {
			n, ok := srvName(p)
			if !ok {
				continue
			}
			items = append(items, item{name: n, rr: t.srv(n, p.port, base)})
			for _, a := range addrs {
				items = append(items, item{name: n, rr: a, extraFor: dns.TypeSRV})
			}
		}
		return items
	}
	if ep == nil {
		return items
	}
	for _, ss := range ep.subsets {
		for _, a := range ss.addrs {
			if !a.ready && !svc.publishNotReady {
				continue
			}
			host := a.hostname
			if host == "" {
				host = dashed(a.ip)
			}
			hname := host + "." + base
			if !validName(hname) || dns.CountLabel(hname) != dns.CountLabel(base)+1 {
				continue
			}
			hrr := t.addr(hname, a.ip)
			items = append(items,
				item{name: base, rr: t.addr(base, a.ip)},
				item{name: hname, rr: hrr},
				t.ptr(a.ip, hname))
			for _, p := range ss.ports {
				n, ok := srvName(p)
				if !ok {
					continue
				}
				items = append(items,
					item{name: n, rr: t.srv(n, p.port, hname)},
					item{name: n, rr: hrr, extraFor: dns.TypeSRV})
			}
		}
	}
	return items
}

// podItems computes the <a-b-c-d>.<ns>.pod.<zone> records of one Pod.
func (t *table) podItems(pod podInfo) []item {
	var items []item
	for _, ip := range pod.ips {
		name := strings.ToLower(dashed(ip) + "." + pod.namespace + ".pod." + t.zone)
		if !validName(name) || dns.CountLabel(name) != dns.CountLabel(t.zone)+3 {
			continue
		}
		items = append(items, item{name: name, rr: t.addr(name, ip)})
	}
	return items
}

// staticItems are the records every cluster zone has: its SOA, the schema
// version, and the svc and pod subtrees.
func (t *table) staticItems() []item {
	return []item{
		{name: t.zone, rr: t.soaZone},
		{name: "dns-version." + t.zone, rr: &dns.TXT{Hdr: t.hdr("dns-version."+t.zone, dns.TypeTXT), Txt: []string{schemaVersion}}},
		{name: "svc." + t.zone},
		{name: "pod." + t.zone},
	}
}
