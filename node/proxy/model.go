//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// servicePort is one port of one Service as the data path sees it: the
// addresses that reach it and the endpoints behind it.
type servicePort struct {
	// key names the port: namespace/name/protocol/port-name (or the port
	// number when the port has no name).
	key       string
	proto     string // tcp, udp or sctp
	clusterIP netip.Addr
	port      uint16
	nodePort  uint16
	// external are the externalIPs and LoadBalancer ingress IPs, served on
	// port.
	external []netip.Addr
	extLocal bool // externalTrafficPolicy: Local
	intLocal bool // internalTrafficPolicy: Local
	// affinity is the ClientIP session affinity timeout in seconds, 0 for
	// none.
	affinity  int32
	endpoints []endpoint
}

type endpoint struct {
	ip    netip.Addr
	port  uint16
	local bool // on this node
}

func (e endpoint) String() string {
	return e.ip.String() + ":" + strconv.Itoa(int(e.port))
}

func (sp *servicePort) localEndpoints() []endpoint {
	var out []endpoint
	for _, e := range sp.endpoints {
		if e.local {
			out = append(out, e)
		}
	}
	return out
}

// servicePorts turns a Service and its Endpoints (nil when there are none)
// into the ports the data path serves. Services without a virtual IP
// (headless, ExternalName) have none; IPv6 addresses are left out (the
// data path is IPv4).
func servicePorts(svc *corev1.Service, eps *corev1.Endpoints, node string) []servicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	clusterIP := parseV4(svc.Spec.ClusterIP)
	var external []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a := parseV4(s); a.IsValid() {
			external = append(external, a)
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a := parseV4(in.IP); a.IsValid() {
				external = append(external, a)
			}
		}
	}
	slices.SortFunc(external, netip.Addr.Compare)
	external = slices.Compact(external)
	hasNodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if !clusterIP.IsValid() && len(external) == 0 && !hasNodePorts {
		return nil
	}
	var affinity int32
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = 10800
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	var out []servicePort
	for _, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(cmp.Or(p.Protocol, corev1.ProtocolTCP)))
		if proto != "tcp" && proto != "udp" && proto != "sctp" || p.Port <= 0 || p.Port > 65535 {
			continue
		}
		name := p.Name
		if name == "" {
			name = strconv.Itoa(int(p.Port))
		}
		sp := servicePort{
			key:       svc.Namespace + "/" + svc.Name + "/" + proto + "/" + name,
			proto:     proto,
			clusterIP: clusterIP,
			port:      uint16(p.Port),
			external:  external,
			extLocal:  svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && (hasNodePorts || len(external) > 0),
			intLocal:  svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			affinity:  affinity,
			endpoints: endpointsFor(eps, p, node),
		}
		if hasNodePorts && p.NodePort > 0 && p.NodePort <= 65535 {
			sp.nodePort = uint16(p.NodePort)
		}
		out = append(out, sp)
	}
	return out
}

// endpointsFor picks the ready addresses of the Endpoints' subsets that
// carry the service port (same name and protocol), sorted and without
// duplicates.
func endpointsFor(eps *corev1.Endpoints, p corev1.ServicePort, node string) []endpoint {
	if eps == nil {
		return nil
	}
	proto := cmp.Or(p.Protocol, corev1.ProtocolTCP)
	var out []endpoint
	for _, ss := range eps.Subsets {
		for _, ep := range ss.Ports {
			if ep.Name != p.Name || cmp.Or(ep.Protocol, corev1.ProtocolTCP) != proto || ep.Port <= 0 || ep.Port > 65535 {
				continue
			}
			for _, a := range ss.Addresses {
				ip := parseV4(a.IP)
				if !ip.IsValid() {
					continue
				}
				out = append(out, endpoint{ip: ip, port: uint16(ep.Port), local: a.NodeName != nil && *a.NodeName == node})
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int {
		return cmp.Or(a.ip.Compare(b.ip), cmp.Compare(a.port, b.port))
	})
	return slices.CompactFunc(out, func(a, b endpoint) bool { return a.ip == b.ip && a.port == b.port })
}

func parseV4(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (sp *servicePort) equal(o *servicePort) bool {
	return sp.key == o.key && sp.proto == o.proto && sp.clusterIP == o.clusterIP && sp.port == o.port &&
		sp.nodePort == o.nodePort && slices.Equal(sp.external, o.external) && sp.extLocal == o.extLocal &&
		sp.intLocal == o.intLocal && sp.affinity == o.affinity && slices.Equal(sp.endpoints, o.endpoints)
}
