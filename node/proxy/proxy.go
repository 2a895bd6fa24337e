//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/node/internal/nft"
)

// Applier applies an nft script as one transaction.
type Applier interface {
	Apply(ctx context.Context, script string) error
}

// ConntrackCleaner forgets UDP conntrack entries that would keep sending
// datagrams to an endpoint that is gone.
type ConntrackCleaner interface {
	// ClearUDPEndpoint removes the UDP entries whose replies come from ep.
	ClearUDPEndpoint(ep netip.AddrPort) error
	// ClearUDPService removes the UDP entries sent to vip:port, made while
	// the service had no endpoint.
	ClearUDPService(vip netip.Addr, port uint16) error
}

// Deps configures a ServiceProxy.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	// NodeName is this node; endpoints on it are local for the Local
	// traffic policies.
	NodeName string
	// ClusterCIDR is the pod network: traffic from outside it to a cluster
	// IP is masqueraded.
	ClusterCIDR netip.Prefix
	// Table is the nftables table (family ip) the proxy owns; default
	// "orch".
	Table string
	// NoLocalhostNodePorts stops NodePorts from answering on 127.0.0.0/8
	// (they do by default, as with kube-proxy's iptables mode, which needs
	// net.ipv4.conf.all.route_localnet=1).
	NoLocalhostNodePorts bool
	// MinSyncInterval coalesces changes: a sync waits this long after a
	// change for more; default 100ms. FullSyncInterval rewrites the whole
	// table now and then, repairing what others changed; default 5m.
	MinSyncInterval  time.Duration
	FullSyncInterval time.Duration
	// Applier runs nft scripts (default: the nft binary); Conntrack cleans
	// conntrack entries (default: netlink); Sysctl sets a sysctl (default:
	// writes /proc/sys). Tests replace them.
	Applier   Applier
	Conntrack ConntrackCleaner
	Sysctl    func(name, value string) error
}

// ServiceProxy programs the kernel so that Service addresses reach the
// Services' endpoints.
type ServiceProxy struct {
	*serviceWatch
	deps Deps
	log  *slog.Logger
	cfg  renderConfig

	mu    sync.Mutex
	units map[string]*unit
	ports map[string]servicePort
	// full asks the next sync to rewrite the whole table.
	full bool
}

// New registers the proxy's informers on the shared factory; the caller
// starts the factory.
func New(deps Deps) (*ServiceProxy, error) {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Table == "" {
		deps.Table = "orch"
	}
	if deps.MinSyncInterval == 0 {
		deps.MinSyncInterval = 100 * time.Millisecond
	}
	if deps.FullSyncInterval == 0 {
		deps.FullSyncInterval = 5 * time.Minute
	}
	if deps.Applier == nil {
		deps.Applier = &nft.Runner{}
	}
	if deps.Conntrack == nil {
		deps.Conntrack = netlinkConntrack{}
	}
	if deps.Sysctl == nil {
		deps.Sysctl = writeSysctl
	}
	if !deps.ClusterCIDR.IsValid() || !deps.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("proxy: the cluster CIDR %q is not an IPv4 prefix", deps.ClusterCIDR)
	}
	watch, err := newServiceWatch(deps.Informers)
	if err != nil {
		return nil, err
	}
	return &ServiceProxy{
		serviceWatch: watch, deps: deps, log: deps.Logger,
		cfg:  renderConfig{table: nft.Identifier(deps.Table), clusterCIDR: deps.ClusterCIDR.Masked(), localhostNodePorts: !deps.NoLocalhostNodePorts},
		full: true,
	}, nil
}

// Run keeps the kernel in step with the Services until ctx ends. The rules
// stay when it returns, so Services keep working while the agent restarts.
func (p *ServiceProxy) Run(ctx context.Context) error {
	if !p.deps.NoLocalhostNodePorts {
		if err := p.deps.Sysctl("net/ipv4/conf/all/route_localnet", "1"); err != nil {
			p.log.Warn("NodePorts on 127.0.0.1 need route_localnet", "err", err)
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return ctx.Err()
	}
	p.log.Info("service proxy started", "table", "ip "+p.cfg.table)
	full := time.NewTicker(p.deps.FullSyncInterval)
	defer full.Stop()
	return p.loop(ctx, p.log, p.deps.MinSyncInterval, full.C, func() bool {
		p.mu.Lock()
		p.full = true
		p.mu.Unlock()
		return true
	}, p.Sync, "service proxy sync failed; retrying with a full sync")
}

// Sync writes the Services as the listers see them now: the whole table
// the first time (and after a failure), otherwise only what changed.
func (p *ServiceProxy) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	svcs, err := p.services.List(labels.Everything())
	if err != nil {
		return err
	}
	ports := map[string]servicePort{}
	for _, svc := range svcs {
		eps, err := p.endpoints.Endpoints(svc.Namespace).Get(svc.Name)
		if err != nil {
			eps = nil
		}
		for _, sp := range servicePorts(svc, eps, p.deps.NodeName) {
			ports[sp.key] = sp
		}
	}
	return p.apply(ctx, ports)
}

// apply renders ports and writes them to the kernel.
func (p *ServiceProxy) apply(ctx context.Context, ports map[string]servicePort) error {
	units := make(map[string]*unit, len(ports))
	for k, sp := range ports {
		if old, ok := p.ports[k]; ok && !p.full && old.equal(&sp) {
			units[k] = p.units[k]
			continue
		}
		units[k] = renderUnit(&p.cfg, &sp)
	}
	var script string
	if p.full || p.units == nil {
		script = renderFull(&p.cfg, units)
	} else {
		script = renderDiff(&p.cfg, p.units, units)
	}
	if script != "" {
		if err := p.deps.Applier.Apply(ctx, script); err != nil {
			p.full = true
			return err
		}
	}
	old := p.ports
	p.units, p.ports, p.full = units, ports, false
	p.clearConntrack(old, ports)
	return nil
}

// clearConntrack drops UDP conntrack entries that point at endpoints that
// are gone, and entries made while a UDP service had no endpoint: UDP has
// no connection to close, so without this a client that keeps sending
// would stay stuck on the old entry.
func (p *ServiceProxy) clearConntrack(old, new map[string]servicePort) {
	if old == nil {
		return
	}
	for k, o := range old {
		if o.proto != "udp" {
			continue
		}
		n := new[k]
		for _, e := range o.endpoints {
			if !containsEndpoint(n.endpoints, e) {
				if err := p.deps.Conntrack.ClearUDPEndpoint(netip.AddrPortFrom(e.ip, e.port)); err != nil {
					p.log.Warn("clear conntrack entries of a removed UDP endpoint", "endpoint", e.String(), "err", err)
				}
			}
		}
	}
	for k, n := range new {
		if n.proto != "udp" || len(n.endpoints) == 0 {
			continue
		}
		if o, ok := old[k]; ok && len(o.endpoints) > 0 {
			continue
		}
		for _, vip := range append([]netip.Addr{n.clusterIP}, n.external...) {
			if !vip.IsValid() {
				continue
			}
			if err := p.deps.Conntrack.ClearUDPService(vip, n.port); err != nil {
				p.log.Warn("clear conntrack entries of a UDP service", "service", k, "err", err)
			}
		}
	}
}

func containsEndpoint(eps []endpoint, e endpoint) bool {
	for _, x := range eps {
		if x.ip == e.ip && x.port == e.port {
			return true
		}
	}
	return false
}

func writeSysctl(name, value string) error {
	return os.WriteFile("/proc/sys/"+name, []byte(value), 0o644)
}
