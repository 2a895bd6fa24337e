package podnet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/node/internal/nft"
)

// Deps configures a PodNetwork.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	NodeName  string
	// ClusterCIDR is the pod network of the whole cluster.
	ClusterCIDR netip.Prefix
	// Table is the nftables table (family ip) of the pod network; default
	// "orch-podnet".
	Table string
	// Resync is how often routes and rules are checked without a Node
	// change; default 30s.
	Resync time.Duration
	// Netlink, NFT and Iptables reach the kernel; tests point them at a
	// network namespace. Defaults: the host's.
	Netlink *netlink.Handle
	// Netns is the namespace Netlink works in, for link updates; nil for
	// the agent's own.
	Netns    *netns.NsHandle
	NFT      *nft.Runner
	Iptables []string // the iptables command, default {"iptables", "-w"}
}

// PodNetwork routes the pod subnets of the other nodes and lets pod
// traffic cross the host without NAT.
type PodNetwork struct {
	deps   Deps
	log    *slog.Logger
	routes routeTable
	nodes  corelisters.NodeLister
	synced cache.InformerSynced
	kick   chan struct{}
	warned map[string]bool
}

// New registers a Node informer on the shared factory; the caller starts
// the factory.
func New(deps Deps) (*PodNetwork, error) {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Table == "" {
		deps.Table = "orch-podnet"
	}
	deps.Table = nft.Identifier(deps.Table)
	if deps.Resync == 0 {
		deps.Resync = 30 * time.Second
	}
	if deps.NFT == nil {
		deps.NFT = &nft.Runner{}
	}
	if len(deps.Iptables) == 0 {
		deps.Iptables = []string{"iptables", "-w"}
	}
	if !deps.ClusterCIDR.IsValid() || !deps.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("podnet: the cluster CIDR %q is not an IPv4 prefix", deps.ClusterCIDR)
	}
	deps.ClusterCIDR = deps.ClusterCIDR.Masked()
	h := deps.Netlink
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("podnet: netlink: %w", err)
		}
	}
	n := &PodNetwork{deps: deps, log: deps.Logger, routes: routeTable{h}, kick: make(chan struct{}, 1), warned: map[string]bool{}}
	inf := deps.Informers.Core().V1().Nodes()
	n.nodes, n.synced = inf.Lister(), inf.Informer().HasSynced
	poke := func(any) {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// Run keeps routes and rules in step with the Nodes until ctx ends.
func (n *PodNetwork) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), n.synced) {
		return ctx.Err()
	}
	n.log.Info("pod network started", "cluster-cidr", n.deps.ClusterCIDR, "table", "ip "+n.deps.Table)
	// Run returns only after the hairpin watch has stopped: the caller may
	// close the netlink handle it uses.
	hairpin := make(chan struct{})
	go func() {
		defer close(hairpin)
		n.watchHairpin(ctx, n.deps.Netns)
	}()
	defer func() { <-hairpin }()
	t := time.NewTicker(n.deps.Resync)
	defer t.Stop()
	for {
		if err := n.Sync(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("pod network sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.kick:
			// Coalesce a burst of Node changes.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Sync writes routes, the NAT exemption and the forwarding rule; it goes on
// after a failure and returns the first.
func (n *PodNetwork) Sync(ctx context.Context) error {
	var errs []error
	if err := n.syncRoutes(); err != nil {
		errs = append(errs, err)
	}
	if err := n.deps.NFT.Apply(ctx, n.natScript()); err != nil {
		errs = append(errs, err)
	}
	if err := n.syncHairpin(); err != nil {
		errs = append(errs, err)
	}
	if err := n.ensureForwarding(ctx); err != nil {
		// Without Docker (or iptables) there is nothing to open up.
		if !n.warned[err.Error()] {
			n.warned[err.Error()] = true
			n.log.Warn("cannot open forwarding between pod networks", "err", err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// natScript replaces the pod network's table. Traffic from pod to pod
// keeps its source address: an identity SNAT in postrouting, before the
// engine's masquerade (srcnat), makes the connection's NAT decision so the
// engine's later masquerade does not apply. Traffic leaving the cluster
// CIDR is still masqueraded by the engine's rule for its bridge.
func (n *PodNetwork) natScript() string {
	t, c := "ip "+n.deps.Table, n.deps.ClusterCIDR.String()
	return fmt.Sprintf(`add table %[1]s
delete table %[1]s
add table %[1]s
add chain %[1]s postrouting { type nat hook postrouting priority srcnat - 5 ; policy accept ; }
add rule %[1]s postrouting ip saddr %[2]s ip daddr %[2]s snat ip to ip saddr
`, t, c)
}

// ensureForwarding lets traffic to pods through Docker's FORWARD rules,
// which drop traffic between bridge networks and from other hosts into
// them: a rule at the top of DOCKER-USER, the chain Docker leaves to its
// users.
func (n *PodNetwork) ensureForwarding(ctx context.Context) error {
	rule := []string{"DOCKER-USER", "-d", n.deps.ClusterCIDR.String(), "-m", "comment", "--comment", "orch pod network", "-j", "ACCEPT"}
	if err := n.iptables(ctx, append([]string{"-C"}, rule...)...); err == nil {
		return nil
	}
	return n.iptables(ctx, append([]string{"-I"}, rule...)...)
}

func (n *PodNetwork) iptables(ctx context.Context, args ...string) error {
	argv := append(append([]string{}, n.deps.Iptables...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("podnet: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// wantRoutes maps the pod subnet of every other node that this host does
// not already reach directly to that node's address.
func (n *PodNetwork) wantRoutes(nodes []*corev1.Node, existing []route, local map[netip.Addr]bool) map[netip.Prefix]netip.Addr {
	connected := map[netip.Prefix]bool{}
	for _, r := range existing {
		if !r.ours && !r.gw.IsValid() {
			connected[r.dst] = true
		}
	}
	want := map[netip.Prefix]netip.Addr{}
	for _, node := range nodes {
		if node.Name == n.deps.NodeName {
			continue
		}
		cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || !cidr.Addr().Is4() {
			continue
		}
		cidr = cidr.Masked()
		if connected[cidr] {
			continue // another agent's bridge on this host
		}
		ip := internalIP(node)
		if !ip.IsValid() || local[ip] {
			continue
		}
		want[cidr] = ip
	}
	return want
}

func internalIP(node *corev1.Node) netip.Addr {
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip
		}
	}
	return netip.Addr{}
}

// syncRoutes adds the routes to other nodes' pod subnets (host-gw) and
// removes those of nodes that are gone.
func (n *PodNetwork) syncRoutes() error {
	nodes, err := n.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	existing, err := n.routes.list()
	if err != nil {
		return err
	}
	local, err := n.routes.localAddrs()
	if err != nil {
		return err
	}
	want := n.wantRoutes(nodes, existing, local)
	var errs []error
	have := map[netip.Prefix]netip.Addr{}
	for _, r := range existing {
		if !r.ours {
			continue
		}
		if _, ok := want[r.dst]; !ok {
			if err := n.routes.delete(r.dst); err != nil {
				errs = append(errs, err)
			} else {
				n.log.Info("removed the route to a node's pods", "subnet", r.dst)
			}
		} else {
			have[r.dst] = r.gw
		}
	}
	dsts := make([]netip.Prefix, 0, len(want))
	for d := range want {
		dsts = append(dsts, d)
	}
	slices.SortFunc(dsts, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	for _, d := range dsts {
		if have[d] == want[d] {
			continue
		}
		if err := n.routes.replace(d, want[d]); err != nil {
			errs = append(errs, err)
			continue
		}
		n.log.Info("routed a node's pods", "subnet", d, "via", want[d])
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
