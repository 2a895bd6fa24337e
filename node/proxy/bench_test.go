package proxy

import (
	"context"
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchPorts makes n services of m endpoints each, spread over 4 nodes.
func benchPorts(n, m int) map[string]servicePort {
	ports := map[string]servicePort{}
	for i := range n {
		svc := service("bench", fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.43.%d.%d", i/250, i%250+1))
		if i%10 == 0 {
			svc.Spec.Type = corev1.ServiceTypeNodePort
			svc.Spec.Ports[0].NodePort = int32(30000 + i)
		}
		var addrs []addr
		for j := range m {
			addrs = append(addrs, addr{fmt.Sprintf("10.42.%d.%d", j%4, (i*m+j)%250+2), fmt.Sprintf("n%d", j%4+1)})
		}
		eps := endpoints("bench", svc.Name, nil, addrs...)
		eps.ObjectMeta = metav1.ObjectMeta{Namespace: "bench", Name: svc.Name}
		for _, sp := range servicePorts(svc, eps, testNode) {
			ports[sp.key] = sp
		}
	}
	return ports
}

// BenchmarkFullSync writes 1,000 Services of 10 endpoints each into an
// empty table of a fresh network namespace.
func BenchmarkFullSync(b *testing.B) {
	n := newTestNetns(b)
	ports := benchPorts(1000, 10)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		p := &ServiceProxy{cfg: testConfig, deps: Deps{Applier: n.nft, Conntrack: nopConntrack{}}, full: true, log: discard()}
		if err := p.apply(ctx, ports); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOneEndpointChange changes one endpoint of one Service among
// 1,000 Services of 10 endpoints each.
func BenchmarkOneEndpointChange(b *testing.B) {
	n := newTestNetns(b)
	ports := benchPorts(1000, 10)
	ctx := context.Background()
	p := &ServiceProxy{cfg: testConfig, deps: Deps{Applier: n.nft, Conntrack: nopConntrack{}}, full: true, log: discard()}
	if err := p.apply(ctx, ports); err != nil {
		b.Fatal(err)
	}
	key := "bench/svc-500/tcp/http"
	orig := ports[key]
	b.ResetTimer()
	for i := range b.N {
		sp := orig
		sp.endpoints = append([]endpoint(nil), orig.endpoints...)
		sp.endpoints[3].port = uint16(9000 + i%2)
		ports = maps.Clone(ports)
		ports[key] = sp
		if err := p.apply(ctx, ports); err != nil {
			b.Fatal(err)
		}
	}
}
