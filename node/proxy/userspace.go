//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"orch.dev/orch/internal/logging"
)

// DefaultUserspaceInterface is the dummy interface that holds the Services'
// addresses while the userspace proxy serves them.
const DefaultUserspaceInterface = "orch-svc0"

// maxDialAttempts bounds the endpoints a TCP connection tries before it is
// refused.
const maxDialAttempts = 3

var errUserspaceClosed = errors.New("proxy: the userspace proxy is closed")

// UserspaceDeps configures a UserspaceProxy.
type UserspaceDeps struct {
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	// NodeName is this node; endpoints on it are local for the Local
	// traffic policies.
	NodeName string
	// ClusterCIDR is the pod network: with externalTrafficPolicy Local,
	// clients in it (and the node itself) still reach every endpoint.
	ClusterCIDR netip.Prefix
	// Interface is the dummy interface that holds the cluster, external
	// and LoadBalancer IPs; default DefaultUserspaceInterface.
	Interface string
	// MinSyncInterval coalesces changes: a sync waits this long after a
	// change for more; default 100ms.
	MinSyncInterval time.Duration
	// DialTimeout bounds a connection attempt to one endpoint; default 1s.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP session that saw no datagram either way
	// for this long; default 30s.
	UDPIdleTimeout time.Duration
	// Netns is the path of the network namespace to serve in (e.g.
	// /run/netns/NAME); empty is the agent's own.
	Netns string
}

// UserspaceProxy serves Services with sockets of its own where the kernel
// cannot be programmed: it listens on every Service address and relays
// each connection (or UDP session) to a ready endpoint.
type UserspaceProxy struct {
	*serviceWatch
	deps UserspaceDeps
	log  *slog.Logger
	// stop ends with Close and bounds the dials to endpoints.
	stop   context.Context
	cancel context.CancelFunc
	// wg counts every goroutine that serves: accept and read loops,
	// relays, UDP sessions.
	wg sync.WaitGroup

	nlMu sync.Mutex
	nl   *netlink.Handle
	// ns is the namespace to serve in; netns.None() for the agent's own.
	ns netns.NsHandle

	mu        sync.Mutex
	closed    bool
	ports     map[string]*userspacePort
	listeners map[listenKey]*userspaceListener
	// warned holds the conditions already logged (SCTP ports, addresses
	// claimed twice), so each is logged once while it lasts.
	warned map[string]bool

	connMu      sync.Mutex
	conns       map[*net.TCPConn]struct{}
	connsClosed bool
}

// userspacePort is one service port as served. Its listeners keep it
// across syncs; an endpoint change swaps its state.
type userspacePort struct {
	state atomic.Pointer[portState]

	affMu sync.Mutex
	aff   map[netip.Addr]affinityEntry
}

type portState struct {
	sp    servicePort
	local []endpoint
	// affinity is the ClientIP session affinity timeout, 0 for none.
	affinity time.Duration
}

type affinityEntry struct {
	ep   endpoint
	last time.Time
}

// listenKey is a socket the proxy listens on; NodePorts listen on
// 0.0.0.0.
type listenKey struct {
	proto string
	addr  netip.AddrPort
}

func (k listenKey) String() string { return k.proto + "/" + k.addr.String() }

// route says what a listener serves: external is true for NodePorts,
// external IPs and LoadBalancer IPs, where externalTrafficPolicy applies.
type route struct {
	port     *userspacePort
	external bool
}

type userspaceListener struct {
	key   listenKey
	route atomic.Pointer[route]
	tcp   *net.TCPListener
	udp   *net.UDPConn

	mu       sync.Mutex
	sessions map[sessionKey]*udpSession
}

// sessionKey names a UDP session: the client and the local address it
// wrote to (which matters for NodePorts, served on every address).
type sessionKey struct {
	client netip.AddrPort
	local  netip.Addr
}

type udpSession struct {
	l    *userspaceListener
	key  sessionKey
	ep   endpoint
	conn *net.UDPConn
	// last is when a datagram last went either way, in Unix nanoseconds.
	last atomic.Int64
}

// NewUserspace registers the proxy's informers on the shared factory; the
// caller starts the factory. Nothing is changed on the node before Run or
// Sync.
func NewUserspace(deps UserspaceDeps) (*UserspaceProxy, error) {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	deps.Interface = cmp.Or(deps.Interface, DefaultUserspaceInterface)
	deps.MinSyncInterval = cmp.Or(deps.MinSyncInterval, 100*time.Millisecond)
	deps.DialTimeout = cmp.Or(deps.DialTimeout, time.Second)
	deps.UDPIdleTimeout = cmp.Or(deps.UDPIdleTimeout, 30*time.Second)
	if !deps.ClusterCIDR.IsValid() || !deps.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("proxy: the cluster CIDR %q is not an IPv4 prefix", deps.ClusterCIDR)
	}
	deps.ClusterCIDR = deps.ClusterCIDR.Masked()
	if len(deps.Interface) > unix.IFNAMSIZ-1 {
		return nil, fmt.Errorf("proxy: the interface name %q is longer than %d bytes", deps.Interface, unix.IFNAMSIZ-1)
	}
	if deps.Informers == nil {
		return nil, errors.New("proxy: the userspace proxy needs an informer factory")
	}
	ns := netns.None()
	if deps.Netns != "" {
		var err error
		if ns, err = netns.GetFromPath(deps.Netns); err != nil {
			return nil, fmt.Errorf("proxy: network namespace %s: %w", deps.Netns, err)
		}
	}
	stop, cancel := context.WithCancel(context.Background())
	watch, err := newServiceWatch(deps.Informers)
	if err != nil {
		cancel()
		if ns.IsOpen() {
			_ = ns.Close() // the registration error is the one to report
		}
		return nil, err
	}
	return &UserspaceProxy{
		serviceWatch: watch, deps: deps, log: deps.Logger, stop: stop, cancel: cancel, ns: ns,
		ports: map[string]*userspacePort{}, listeners: map[listenKey]*userspaceListener{}, warned: map[string]bool{},
		conns: map[*net.TCPConn]struct{}{},
	}, nil
}

// Run serves the Services until ctx ends. Unlike the kernel data path,
// serving stops when Run returns: listeners, connections and UDP sessions
// are closed (Close). The addresses stay on the interface, so Service
// addresses are refused rather than routed off the node until the next
// Run takes over; Cleanup removes them.
func (p *UserspaceProxy) Run(ctx context.Context) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errUserspaceClosed
	}
	defer func() {
		if err := p.Close(); err != nil {
			p.log.Warn("userspace service proxy: close", "err", err)
		}
	}()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return ctx.Err()
	}
	p.log.Warn("the service proxy runs in userspace: Service traffic is slower and endpoints see the node's address, not the client's",
		"interface", p.deps.Interface)
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	return p.loop(ctx, p.log, p.deps.MinSyncInterval, sweep.C, func() bool {
		p.sweepAffinity(time.Now())
		return false
	}, p.Sync, "userspace service proxy sync incomplete; retrying")
}

// Sync serves the Services as the listers see them now. It applies what
// it can: an address that cannot be added or a port that cannot be bound
// is left out, named in the error, and tried again by the next Sync.
func (p *UserspaceProxy) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errUserspaceClosed
	}
	svcs, err := p.services.List(labels.Everything())
	if err != nil {
		return err
	}
	var sps []servicePort
	for _, svc := range svcs {
		eps, err := p.endpoints.Endpoints(svc.Namespace).Get(svc.Name)
		if err != nil {
			eps = nil
		}
		sps = append(sps, servicePorts(svc, eps, p.deps.NodeName)...)
	}
	return p.apply(sps)
}

// apply makes the served ports match sps: addresses on the interface,
// listeners, endpoints. Unchanged listeners stay open; only their state
// is swapped. p.mu is held.
func (p *UserspaceProxy) apply(sps []servicePort) error {
	slices.SortFunc(sps, func(a, b servicePort) int { return cmp.Compare(a.key, b.key) })
	ports := map[string]*userspacePort{}
	want := map[listenKey]*route{}
	owner := map[listenKey]string{}
	vips := map[netip.Addr]bool{}
	warned := map[string]bool{}
	warnOnce := func(key, msg string, args ...any) {
		if !p.warned[key] {
			p.log.Warn(msg, args...)
		}
		warned[key] = true
	}
	for i := range sps {
		sp := &sps[i]
		for _, a := range append([]netip.Addr{sp.clusterIP}, sp.external...) {
			if a.IsValid() {
				vips[a] = true
			}
		}
		if sp.proto != "tcp" && sp.proto != "udp" {
			warnOnce("proto "+sp.key, "the userspace service proxy does not serve this port", "service", sp.key, "protocol", sp.proto)
			continue
		}
		up := p.ports[sp.key]
		if up == nil {
			up = &userspacePort{}
		}
		up.update(sp)
		ports[sp.key] = up
		claim := func(addr netip.Addr, port uint16, external bool) {
			k := listenKey{sp.proto, netip.AddrPortFrom(addr, port)}
			if o, ok := owner[k]; ok {
				warnOnce("claim "+k.String()+" "+sp.key, "a Service address is claimed twice; the first Service keeps it",
					"listen", k.String(), "service", sp.key, "kept", o)
				return
			}
			owner[k] = sp.key
			want[k] = &route{port: up, external: external}
		}
		if sp.clusterIP.IsValid() {
			claim(sp.clusterIP, sp.port, false)
		}
		for _, a := range sp.external {
			claim(a, sp.port, true)
		}
		if sp.nodePort != 0 {
			claim(netip.IPv4Unspecified(), sp.nodePort, true)
		}
	}
	p.warned = warned

	for k, l := range p.listeners {
		if want[k] == nil {
			l.close()
			delete(p.listeners, k)
		}
	}
	var errs []error
	if err := p.syncAddresses(vips); err != nil {
		errs = append(errs, err)
	}
	for _, k := range slices.SortedFunc(maps.Keys(want), func(a, b listenKey) int { return cmp.Compare(a.String(), b.String()) }) {
		r := want[k]
		if l := p.listeners[k]; l != nil {
			l.route.Store(r)
			continue
		}
		l, err := p.listen(k, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy: listen on %s for %s: %w", k, owner[k], err))
			continue
		}
		p.listeners[k] = l
	}
	for _, l := range p.listeners {
		if l.udp != nil {
			l.endStaleSessions()
		}
	}
	p.ports = ports
	return errors.Join(errs...)
}

func (up *userspacePort) update(sp *servicePort) {
	st := &portState{sp: *sp, local: sp.localEndpoints(), affinity: time.Duration(sp.affinity) * time.Second}
	old := up.state.Swap(st)
	if old == nil || old.affinity != st.affinity {
		up.affMu.Lock()
		up.aff = nil
		up.affMu.Unlock()
	}
}

// order is the endpoints of eps to try for client: the one session
// affinity binds it to first, then the others from a random start.
func (up *userspacePort) order(eps []endpoint, client netip.Addr) []endpoint {
	if len(eps) == 0 {
		return nil
	}
	out := make([]endpoint, 0, len(eps))
	start := rand.IntN(len(eps))
	for i := range eps {
		out = append(out, eps[(start+i)%len(eps)])
	}
	st := up.state.Load()
	if st.affinity == 0 {
		return out
	}
	up.affMu.Lock()
	e, ok := up.aff[client]
	up.affMu.Unlock()
	if ok && time.Since(e.last) < st.affinity {
		if i := slices.Index(out, e.ep); i > 0 {
			copy(out[1:i+1], out[:i])
			out[0] = e.ep
		}
	}
	return out
}

// remember binds client to ep for session affinity, or refreshes the
// binding.
func (up *userspacePort) remember(client netip.Addr, ep endpoint) {
	if up.state.Load().affinity == 0 {
		return
	}
	up.affMu.Lock()
	defer up.affMu.Unlock()
	if up.aff == nil {
		up.aff = map[netip.Addr]affinityEntry{}
	}
	up.aff[client] = affinityEntry{ep: ep, last: time.Now()}
}

// sweepAffinity forgets the clients idle for longer than their ports'
// affinity timeouts.
func (p *UserspaceProxy) sweepAffinity(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, up := range p.ports {
		timeout := up.state.Load().affinity
		up.affMu.Lock()
		maps.DeleteFunc(up.aff, func(_ netip.Addr, e affinityEntry) bool { return now.Sub(e.last) >= timeout })
		up.affMu.Unlock()
	}
}

// candidates are the endpoints that may serve client on r, as the
// kernel data path picks them: Local policies keep to this node's
// endpoints, except that pods and the node itself reach every endpoint
// through external addresses.
func (p *UserspaceProxy) candidates(r *route, client netip.Addr) []endpoint {
	st := r.port.state.Load()
	switch {
	case !r.external && st.sp.intLocal:
		return st.local
	case r.external && st.sp.extLocal && !p.deps.ClusterCIDR.Contains(client) && !p.isLocalAddress(client):
		return st.local
	}
	return st.sp.endpoints
}

// isLocalAddress tells whether a is one of the node's addresses.
func (p *UserspaceProxy) isLocalAddress(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	h, err := p.netlink()
	if err != nil {
		p.log.Debug("userspace service proxy: netlink", "err", err)
		return false
	}
	routes, err := h.RouteGet(net.IP(a.AsSlice()))
	return err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL
}

// listen opens the socket for k and starts serving it.
func (p *UserspaceProxy) listen(k listenKey, r *route) (*userspaceListener, error) {
	l := &userspaceListener{key: k}
	l.route.Store(r)
	switch k.proto {
	case "tcp":
		var ln net.Listener
		err := p.inNetns(func() (err error) {
			ln, err = net.Listen("tcp4", k.addr.String())
			return err
		})
		if err != nil {
			return nil, err
		}
		l.tcp = ln.(*net.TCPListener)
		p.wg.Go(func() { p.serveTCP(l) })
	case "udp":
		var lc net.ListenConfig
		if k.addr.Addr().IsUnspecified() {
			// Replies must leave from the address the client wrote to.
			lc.Control = receivePktinfo
		}
		var pc net.PacketConn
		err := p.inNetns(func() (err error) {
			pc, err = lc.ListenPacket(context.Background(), "udp4", k.addr.String())
			return err
		})
		if err != nil {
			return nil, err
		}
		l.udp = pc.(*net.UDPConn)
		l.sessions = map[sessionKey]*udpSession{}
		p.wg.Go(func() { p.serveUDP(l) })
	default:
		return nil, fmt.Errorf("protocol %q is not served in userspace", k.proto)
	}
	return l, nil
}

// close stops accepting; TCP connections already relayed go on, UDP
// sessions end with the read loop.
func (l *userspaceListener) close() {
	if l.tcp != nil {
		_ = l.tcp.Close() // the accept loop sees net.ErrClosed and ends
	}
	if l.udp != nil {
		_ = l.udp.Close() // the read loop sees net.ErrClosed and ends
	}
}

// Close stops serving: listeners, TCP connections and UDP sessions end,
// and Close returns once every goroutine of the proxy has. The interface
// and its addresses stay (see Cleanup). Close is safe to call more than
// once; Run calls it on return.
func (p *UserspaceProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	for _, l := range p.listeners {
		l.close()
	}
	clear(p.listeners)
	p.mu.Unlock()

	p.connMu.Lock()
	p.connsClosed = true
	for c := range p.conns {
		_ = c.Close() // its relay sees the error, ends and untracks it
	}
	p.connMu.Unlock()
	p.wg.Wait()

	p.nlMu.Lock()
	if p.nl != nil {
		p.nl.Close()
		p.nl = nil
	}
	p.nlMu.Unlock()
	if p.ns.IsOpen() {
		err := p.ns.Close()
		p.ns = netns.None()
		if err != nil {
			return fmt.Errorf("proxy: close network namespace %s: %w", p.deps.Netns, err)
		}
	}
	return nil
}

// Cleanup stops serving (Close) and deletes the interface with the
// Services' addresses, for when the node stops using the userspace proxy.
// It works on a proxy that never ran.
func (p *UserspaceProxy) Cleanup() error {
	closeErr := p.Close()
	var h *netlink.Handle
	var err error
	if p.deps.Netns == "" {
		h, err = netlink.NewHandle()
	} else {
		ns, nerr := netns.GetFromPath(p.deps.Netns)
		if nerr != nil {
			return errors.Join(closeErr, fmt.Errorf("proxy: network namespace %s: %w", p.deps.Netns, nerr))
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns)
	}
	if err != nil {
		return errors.Join(closeErr, fmt.Errorf("proxy: netlink: %w", err))
	}
	defer h.Close()
	link, err := h.LinkByName(p.deps.Interface)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		return closeErr
	}
	if err != nil {
		return errors.Join(closeErr, fmt.Errorf("proxy: interface %s: %w", p.deps.Interface, err))
	}
	if err := ownLink(h, link); err != nil {
		return errors.Join(closeErr, err)
	}
	if err := h.LinkDel(link); err != nil {
		return errors.Join(closeErr, fmt.Errorf("proxy: delete interface %s: %w", p.deps.Interface, err))
	}
	return closeErr
}
