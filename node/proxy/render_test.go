//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("rendering of %s differs from %s:\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

func nodePortService(ns, name, clusterIP string, nodePort int32, policy corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	svc := service(ns, name, clusterIP, corev1.ServicePort{Name: "http", Port: 80, NodePort: nodePort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)})
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.ExternalTrafficPolicy = policy
	return svc
}

func TestRenderFull(t *testing.T) {
	udp := []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}}
	affinity := service("default", "sticky", "10.43.0.12")
	affinity.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	affinity.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	lb := nodePortService("default", "lb", "10.43.0.13", 30080, corev1.ServiceExternalTrafficPolicyCluster)
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}, {IP: "2001:db8::1"}}
	internal := service("default", "internal", "10.43.0.14")
	internal.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	noLocalhost := testConfig
	noLocalhost.localhostNodePorts = false

	cases := []struct {
		name string
		cfg  *renderConfig
		objs []any
	}{
		{name: "empty", cfg: &testConfig},
		{name: "cluster-ip", cfg: &testConfig, objs: []any{
			service("default", "web", "10.43.0.10"),
			endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}),
		}},
		{name: "single-endpoint-udp", cfg: &testConfig, objs: []any{
			service("kube-system", "dns", "10.43.0.53", corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}),
			endpoints("kube-system", "dns", udp, addr{"10.42.0.9", ""}),
		}},
		{name: "no-endpoints", cfg: &testConfig, objs: []any{
			nodePortService("default", "empty", "10.43.0.11", 30081, corev1.ServiceExternalTrafficPolicyCluster), nil,
		}},
		{name: "session-affinity", cfg: &testConfig, objs: []any{
			affinity, endpoints("default", "sticky", nil, addr{"10.42.0.5", testNode}, addr{"10.42.0.6", testNode}),
		}},
		{name: "nodeport-cluster-policy", cfg: &testConfig, objs: []any{
			nodePortService("default", "np", "10.43.0.20", 30080, corev1.ServiceExternalTrafficPolicyCluster),
			endpoints("default", "np", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}),
		}},
		{name: "nodeport-local-policy", cfg: &testConfig, objs: []any{
			nodePortService("default", "np", "10.43.0.20", 30080, corev1.ServiceExternalTrafficPolicyLocal),
			endpoints("default", "np", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}),
		}},
		{name: "nodeport-local-policy-no-local-endpoint", cfg: &noLocalhost, objs: []any{
			nodePortService("default", "np", "10.43.0.20", 30080, corev1.ServiceExternalTrafficPolicyLocal),
			endpoints("default", "np", nil, addr{"10.42.1.7", "n2"}),
		}},
		{name: "load-balancer", cfg: &testConfig, objs: []any{
			lb, endpoints("default", "lb", nil, addr{"10.42.1.7", "n2"}),
		}},
		{name: "internal-traffic-local", cfg: &testConfig, objs: []any{
			internal, endpoints("default", "internal", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}),
		}},
		{name: "headless-and-external-name", cfg: &testConfig, objs: []any{
			service("default", "headless", "None"), endpoints("default", "headless", nil, addr{"10.42.0.5", ""}),
			&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}, nil,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, renderFull(tc.cfg, units(tc.cfg, tc.objs...)))
		})
	}
}

func TestRenderDiff(t *testing.T) {
	web := service("default", "web", "10.43.0.10")
	two := endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"})
	three := endpoints("default", "web", nil, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}, addr{"10.42.2.3", "n3"})
	other := service("default", "other", "10.43.0.11")
	otherEps := endpoints("default", "other", nil, addr{"10.42.0.8", testNode})
	cases := []struct {
		name     string
		old, new []any
	}{
		{name: "nothing-changed", old: []any{web, two, other, otherEps}, new: []any{web, two, other, otherEps}},
		{name: "endpoint-added", old: []any{web, two, other, otherEps}, new: []any{web, three, other, otherEps}},
		{name: "endpoint-removed", old: []any{web, three}, new: []any{web, two}},
		{name: "last-endpoint-removed", old: []any{web, two}, new: []any{web, nil}},
		{name: "service-deleted", old: []any{web, two, other, otherEps}, new: []any{other, otherEps}},
		{name: "service-added", old: []any{other, otherEps}, new: []any{web, two, other, otherEps}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := renderDiff(&testConfig, units(&testConfig, tc.old...), units(&testConfig, tc.new...))
			if strings.Contains(got, "other") && tc.name != "service-deleted" && tc.name != "service-added" {
				t.Errorf("the diff touches a service that did not change:\n%s", got)
			}
			golden(t, "diff-"+tc.name, got)
		})
	}
}

func TestServicePortsBadInput(t *testing.T) {
	bad := service("default", "bad", "not-an-ip",
		corev1.ServicePort{Name: "neg", Port: -1},
		corev1.ServicePort{Name: "big", Port: 70000},
		corev1.ServicePort{Name: "ok", Port: 80, Protocol: "SCTP"})
	eps := endpoints("default", "bad", []corev1.EndpointPort{{Name: "ok", Port: 0, Protocol: "SCTP"}}, addr{"garbage", ""}, addr{"::1", ""})
	ports := servicePorts(bad, eps, testNode)
	if len(ports) != 0 {
		t.Errorf("got %d ports for a service without a valid address, want 0", len(ports))
	}
	bad.Spec.ClusterIP = "10.43.0.99"
	ports = servicePorts(bad, eps, testNode)
	if len(ports) != 1 || len(ports[0].endpoints) != 0 {
		t.Fatalf("got %+v, want one sctp port without endpoints", ports)
	}
	u := renderUnit(&testConfig, &ports[0])
	if len(u.elems) != 1 {
		t.Errorf("got elements %v, want the no-endpoint one", u.elems)
	}
}
