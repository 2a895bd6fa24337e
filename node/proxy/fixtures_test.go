//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const testNode = "n1"

var testConfig = renderConfig{table: "orch", clusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), localhostNodePorts: true}

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
}

// addr is an endpoint address; node "" leaves nodeName unset.
type addr struct{ ip, node string }

func endpoints(ns, name string, ports []corev1.EndpointPort, addrs ...addr) *corev1.Endpoints {
	if ports == nil {
		ports = []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}
	}
	ss := corev1.EndpointSubset{Ports: ports}
	for _, a := range addrs {
		ea := corev1.EndpointAddress{IP: a.ip}
		if a.node != "" {
			ea.NodeName = ptr.To(a.node)
		}
		ss.Addresses = append(ss.Addresses, ea)
	}
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subsets: []corev1.EndpointSubset{ss}}
}

// units renders pairs of Services and their Endpoints.
func units(cfg *renderConfig, objs ...any) map[string]*unit {
	out := map[string]*unit{}
	for i := 0; i < len(objs); i += 2 {
		svc := objs[i].(*corev1.Service)
		var eps *corev1.Endpoints
		if i+1 < len(objs) && objs[i+1] != nil {
			eps = objs[i+1].(*corev1.Endpoints)
		}
		for _, sp := range servicePorts(svc, eps, testNode) {
			out[sp.key] = renderUnit(cfg, &sp)
		}
	}
	return out
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
