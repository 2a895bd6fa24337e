package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	forwardTimeout   = 2 * time.Second // per upstream attempt
	cacheMaxEntries  = 10000
	cacheMaxTTL      = 300 // seconds, positive answers
	cacheMaxNegative = 30  // seconds, NXDOMAIN and NODATA
)

// errUpstream says an upstream answered, but not usefully (SERVFAIL, REFUSED).
var errUpstream = errors.New("dns: upstream failed")

// forwarder sends queries for names outside the zone to upstream
// resolvers, in order, and keeps their answers for as long as their TTLs
// allow (capped, so upstream changes show soon).
type forwarder struct {
	upstreams []string // host:port
	udp, tcp  *dns.Client
	now       func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]*cached
}

type cacheKey struct {
	name  string // lowercase
	qtype uint16
	cd    bool
}

type cached struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

func newForwarder(upstreams []string) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		udp:       &dns.Client{Net: "udp", Timeout: forwardTimeout, UDPSize: ednsSize},
		tcp:       &dns.Client{Net: "tcp", Timeout: forwardTimeout},
		now:       time.Now,
		cache:     map[cacheKey]*cached{},
	}
}

// exchange resolves name/qtype through the upstreams. The answer is the
// caller's to change.
func (f *forwarder) exchange(ctx context.Context, name string, qtype uint16, cd bool) (*dns.Msg, error) {
	k := cacheKey{name: strings.ToLower(name), qtype: qtype, cd: cd}
	if m := f.get(k); m != nil {
		return m, nil
	}
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	req.RecursionDesired = true
	req.CheckingDisabled = cd
	req.SetEdns0(ednsSize, false)
	var lastErr error
	for _, u := range f.upstreams {
		resp, err := f.try(ctx, req, u)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		f.put(k, resp)
		return resp.Copy(), nil
	}
	if lastErr == nil {
		lastErr = errors.New("no upstream resolvers")
	}
	return nil, fmt.Errorf("dns: forward %s: %w", name, lastErr)
}

func (f *forwarder) try(ctx context.Context, req *dns.Msg, upstream string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	resp, _, err := f.udp.ExchangeContext(ctx, req, upstream)
	if err == nil && resp.Truncated {
		resp, _, err = f.tcp.ExchangeContext(ctx, req, upstream)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", upstream, err)
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, req.Question[0].Name) || resp.Question[0].Qtype != req.Question[0].Qtype {
		return nil, fmt.Errorf("%s: answer for another question", upstream)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("%s: %s: %w", upstream, dns.RcodeToString[resp.Rcode], errUpstream)
	}
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	return resp, nil
}

func (f *forwarder) get(k cacheKey) *dns.Msg {
	now := f.now()
	f.mu.Lock()
	c := f.cache[k]
	if c != nil && !now.Before(c.expires) {
		delete(f.cache, k)
		c = nil
	}
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	m := c.msg.Copy()
	age := uint32(now.Sub(c.stored) / time.Second)
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if h := rr.Header(); h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

func (f *forwarder) put(k cacheKey, m *dns.Msg) {
	ttl, ok := cacheTTL(m)
	if !ok || ttl == 0 {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= cacheMaxEntries {
		f.evictLocked(now)
	}
	f.cache[k] = &cached{msg: m.Copy(), stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
}

// evictLocked drops expired entries, or if none, an arbitrary sixteenth.
func (f *forwarder) evictLocked(now time.Time) {
	n := 0
	for k, c := range f.cache {
		if !now.Before(c.expires) {
			delete(f.cache, k)
			n++
		}
	}
	for k := range f.cache {
		if n >= cacheMaxEntries/16 {
			return
		}
		delete(f.cache, k)
		n++
	}
}

// cacheTTL is how long an answer may be kept: its smallest TTL, or for a
// negative answer the SOA's negative TTL (RFC 2308).
func cacheTTL(m *dns.Msg) (uint32, bool) {
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return 0, false
	}
	if m.Rcode == dns.RcodeNameError || len(m.Answer) == 0 {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(soa.Hdr.Ttl, soa.Minttl, cacheMaxNegative), true
			}
		}
		return 0, false
	}
	ttl := uint32(cacheMaxTTL)
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	return ttl, true
}

// upstreamsFromResolvConf reads the nameservers of a resolv.conf file,
// leaving out the server's own address.
func upstreamsFromResolvConf(path string, self net.Addr) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dns: read %s: %w", path, err)
	}
	var out []string
	for _, s := range cc.Servers {
		u := net.JoinHostPort(s, cc.Port)
		if isSelf(u, self) {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// normalizeUpstream adds the default port to an upstream given as an address.
func normalizeUpstream(s string) (string, error) {
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("dns: upstream %q: %w", s, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("dns: upstream %q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// isSelf reports whether upstream (host:port) is the server's own address,
// which would make a forwarding loop.
func isSelf(upstream string, self net.Addr) bool {
	if self == nil {
		return false
	}
	sap, err := netip.ParseAddrPort(self.String())
	if err != nil {
		return false
	}
	uap, err := netip.ParseAddrPort(upstream)
	if err != nil || uap.Port() != sap.Port() {
		return false
	}
	uip := uap.Addr().Unmap()
	if !sap.Addr().IsUnspecified() {
		return uip == sap.Addr().Unmap()
	}
	if uip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == uip {
			return true
		}
	}
	return false
}
