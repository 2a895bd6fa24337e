package agent

import (
	"context"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"

	"orch.dev/orch/dns"
	rt "orch.dev/orch/node/runtime"
)

// startDNS starts the node's DNS server on the pod network's gateway, port
// 53, where every pod on this node reaches it. It answers the cluster zone
// from an index fed by watches of Services, Endpoints and pods, and
// forwards other names to the host's resolvers. If it cannot listen, pods
// resolve through the host's configuration and a warning says why.
func (a *Agent) startDNS(ctx context.Context) {
	gw, err := gatewayOf(a.podCIDR)
	if err != nil {
		a.log.Warn("no cluster DNS: pods resolve through the host", "err", err)
		return
	}
	factory := informers.NewSharedInformerFactory(a.client, 0)
	idx, err := dns.NewIndexFromInformers(factory)
	if err != nil {
		a.log.Warn("no cluster DNS: pods resolve through the host", "err", err)
		return
	}
	srv := &dns.Server{Config: dns.Config{Zone: a.clusterDomain(), Addr: net.JoinHostPort(gw, "53"),
		Logger: a.log.With("loop", "dns")}, Index: idx}
	if err := srv.Listen(); err != nil {
		a.log.Warn("no cluster DNS: pods resolve through the host", "addr", srv.Config.Addr, "err", err)
		return
	}
	factory.Start(ctx.Done())
	go func() {
		defer factory.Shutdown()
		if err := srv.Serve(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("cluster DNS stopped", "err", err)
		}
	}()
	a.clusterDNS = gw
	a.log.Info("cluster DNS serving", "addr", srv.Config.Addr, "zone", a.clusterDomain())
}

func (a *Agent) clusterDomain() string {
	if a.cfg.ClusterDomain != "" {
		return strings.TrimSuffix(a.cfg.ClusterDomain, ".")
	}
	return dns.DefaultZone
}

// podDNS sets a sandbox's resolver configuration from the pod's dnsPolicy
// and dnsConfig, as the kubelet does: ClusterFirst pods (the default) on
// the pod network use the node's DNS server with the search path of their
// namespace and ndots:5; Default and host-network pods use the host's
// configuration; None uses dnsConfig alone. dnsConfig adds to the others.
func (a *Agent) podDNS(pod *corev1.Pod, spec *rt.SandboxSpec) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	cluster := a.clusterDNS != "" && (policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork ||
		policy == corev1.DNSClusterFirstWithHostNet)
	if cluster {
		zone := a.clusterDomain()
		spec.DNS = []string{a.clusterDNS}
		spec.DNSSearch = []string{pod.Namespace + ".svc." + zone, "svc." + zone, zone}
		spec.DNSOptions = []string{"ndots:5"}
	}
	dc := pod.Spec.DNSConfig
	if dc == nil {
		return
	}
	spec.DNS = append(spec.DNS, dc.Nameservers...)
	spec.DNSSearch = append(spec.DNSSearch, dc.Searches...)
	for _, o := range dc.Options {
		opt := o.Name
		if o.Value != nil {
			opt += ":" + *o.Value
		}
		// A pod's own option replaces the generated one of the same name.
		for i, cur := range spec.DNSOptions {
			if strings.SplitN(cur, ":", 2)[0] == o.Name {
				spec.DNSOptions = append(spec.DNSOptions[:i], spec.DNSOptions[i+1:]...)
				break
			}
		}
		spec.DNSOptions = append(spec.DNSOptions, opt)
	}
}
