package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
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
// It reports whether the pod gets a resolv.conf written by the agent
// (cluster DNS, or None) rather than the engine's, which for a pod on an
// engine network points at the engine's own forwarding resolver.
func (a *Agent) podDNS(pod *corev1.Pod, spec *rt.SandboxSpec) bool {
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
	own := cluster || policy == corev1.DNSNone
	dc := pod.Spec.DNSConfig
	if dc == nil {
		return own
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
	return own
}

// resolvConfName is the pod's resolv.conf in its directory on the node,
// bound at /etc/resolv.conf in each of its containers.
const resolvConfName = "resolv.conf"

// resolvConf renders a resolv.conf: at most three nameservers (the C
// library reads no more), the search path and the options.
func resolvConf(spec *rt.SandboxSpec) []byte {
	var b strings.Builder
	b.WriteString("# written by orch for this pod (dnsPolicy and dnsConfig)\n")
	for i, ns := range spec.DNS {
		if i == 3 {
			break
		}
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(spec.DNSSearch) > 0 {
		b.WriteString("search " + strings.Join(spec.DNSSearch, " ") + "\n")
	}
	if len(spec.DNSOptions) > 0 {
		b.WriteString("options " + strings.Join(spec.DNSOptions, " ") + "\n")
	}
	return []byte(b.String())
}

// writeResolvConf writes the pod's resolv.conf (atomically: a container
// starting meanwhile sees the old file or the new one) and returns its
// path.
func (a *Agent) writeResolvConf(uid types.UID, spec *rt.SandboxSpec) (string, error) {
	dir := a.volumes.podDir(uid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, resolvConfName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, resolvConf(spec), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// resolvConfMount is the mount of the pod's own resolv.conf, if the agent
// wrote one when it made the pod's sandbox.
func (a *Agent) resolvConfMount(uid types.UID) (rt.Mount, bool) {
	path := filepath.Join(a.volumes.podDir(uid), resolvConfName)
	if _, err := os.Stat(path); err != nil {
		return rt.Mount{}, false
	}
	return rt.Mount{Source: path, Target: "/etc/resolv.conf"}, true
}
