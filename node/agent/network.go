package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"k8s.io/client-go/informers"

	"orch.dev/orch/node/podnet"
	"orch.dev/orch/node/proxy"
)

// clusterCIDR is --cluster-cidr, or else the /16 around the node's pod
// subnet: the layout of the default 10.42.0.0/16 cut into /24s.
func (a *Agent) clusterCIDR() (netip.Prefix, error) {
	if a.cfg.ClusterCIDR != "" {
		p, err := netip.ParsePrefix(a.cfg.ClusterCIDR)
		if err != nil || !p.Addr().Is4() {
			return netip.Prefix{}, fmt.Errorf("--cluster-cidr %q is not an IPv4 prefix", a.cfg.ClusterCIDR)
		}
		return p.Masked(), nil
	}
	p, err := netip.ParsePrefix(a.podCIDR)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("the pod subnet %q is not an IPv4 prefix", a.podCIDR)
	}
	return netip.PrefixFrom(p.Addr(), min(16, p.Bits())).Masked(), nil
}

// networkTable names this agent's nftables tables; the node name keeps
// the tables of agents sharing a host apart.
func (a *Agent) networkTable(kind string) string {
	return "orch-" + kind + "-" + a.cfg.Name
}

// runNetwork runs the service proxy and the pod network until ctx ends.
// Their failures are logged and retried by the loops themselves: pods
// keep running without them.
func (a *Agent) runNetwork(ctx context.Context) {
	cidr, err := a.clusterCIDR()
	if err != nil {
		a.log.Error("no service proxy or pod routes", "err", err)
		return
	}
	log := a.log.With("cluster-cidr", cidr.String())
	factory := informers.NewSharedInformerFactory(a.client, 0)
	px, err := a.serviceProxy(ctx, factory, cidr, log)
	if err != nil {
		log.Error("service proxy", "err", err)
		return
	}
	pn, err := podnet.New(podnet.Deps{Client: a.client, Informers: factory, Logger: log.With("loop", "podnet"),
		NodeName: a.cfg.Name, ClusterCIDR: cidr, Table: a.networkTable("pods")})
	if err != nil {
		log.Error("pod network", "err", err)
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := pn.Run(ctx); err != nil {
			log.Error("pod network stopped", "err", err)
		}
	}()
	if err := px.Run(ctx); err != nil {
		log.Error("service proxy stopped", "err", err)
	}
	<-done
}

// Service proxy modes (--proxy-mode).
const (
	ProxyAuto      = "auto"
	ProxyNftables  = "nftables"
	ProxyUserspace = "userspace"
)

// ProxyModes lists the values --proxy-mode takes.
var ProxyModes = []string{ProxyAuto, ProxyNftables, ProxyUserspace}

// serviceProxy makes the proxy --proxy-mode asks for; auto probes
// nftables and falls back to the userspace proxy, with a warning, where
// the nft binary or the kernel's support is missing.
func (a *Agent) serviceProxy(ctx context.Context, factory informers.SharedInformerFactory, cidr netip.Prefix, log *slog.Logger) (interface{ Run(context.Context) error }, error) {
	mode := a.cfg.ProxyMode
	if mode == "" || mode == ProxyAuto {
		mode = ProxyNftables
		if err := proxy.NftablesUsable(ctx, nil); err != nil {
			log.Warn("nftables cannot be used on this node: falling back to the userspace service proxy", "err", err)
			mode = ProxyUserspace
		}
	}
	plog := log.With("loop", "proxy", "mode", mode)
	switch mode {
	case ProxyNftables:
		return proxy.New(proxy.Deps{Client: a.client, Informers: factory, Logger: plog,
			NodeName: a.cfg.Name, ClusterCIDR: cidr, Table: a.networkTable("svc")})
	case ProxyUserspace:
		return proxy.NewUserspace(proxy.UserspaceDeps{Informers: factory, Logger: plog, NodeName: a.cfg.Name, ClusterCIDR: cidr})
	}
	return nil, fmt.Errorf("--proxy-mode %q: want one of %v", mode, ProxyModes)
}
