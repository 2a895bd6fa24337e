package agent

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rt "orch.dev/orch/node/runtime"
)

func TestPodDNS(t *testing.T) {
	search := []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	for _, tc := range []struct {
		name       string
		clusterDNS string
		policy     corev1.DNSPolicy
		hostNet    bool
		config     *corev1.PodDNSConfig
		want       rt.SandboxSpec
	}{
		{name: "default policy is ClusterFirst", clusterDNS: "10.42.0.1",
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: search, DNSOptions: []string{"ndots:5"}}},
		{name: "host network falls back to the host", clusterDNS: "10.42.0.1", policy: corev1.DNSClusterFirst, hostNet: true},
		{name: "ClusterFirstWithHostNet", clusterDNS: "10.42.0.1", policy: corev1.DNSClusterFirstWithHostNet, hostNet: true,
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: search, DNSOptions: []string{"ndots:5"}}},
		{name: "Default uses the host", clusterDNS: "10.42.0.1", policy: corev1.DNSDefault},
		{name: "no cluster DNS running", policy: corev1.DNSClusterFirst},
		{name: "None takes dnsConfig alone", clusterDNS: "10.42.0.1", policy: corev1.DNSNone,
			config: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"example.com"}, Options: []corev1.PodDNSConfigOption{{Name: "edns0"}}},
			want:   rt.SandboxSpec{DNS: []string{"1.1.1.1"}, DNSSearch: []string{"example.com"}, DNSOptions: []string{"edns0"}}},
		{name: "dnsConfig adds to ClusterFirst and overrides an option", clusterDNS: "10.42.0.1",
			config: &corev1.PodDNSConfig{Searches: []string{"corp.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}},
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: append(append([]string(nil), search...), "corp.example"),
				DNSOptions: []string{"ndots:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{clusterDNS: tc.clusterDNS}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team"},
				Spec: corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNet, DNSConfig: tc.config}}
			var got rt.SandboxSpec
			a.podDNS(pod, &got)
			if !reflect.DeepEqual(got.DNS, tc.want.DNS) || !reflect.DeepEqual(got.DNSSearch, tc.want.DNSSearch) || !reflect.DeepEqual(got.DNSOptions, tc.want.DNSOptions) {
				t.Errorf("got DNS %v search %v options %v, want %v %v %v", got.DNS, got.DNSSearch, got.DNSOptions, tc.want.DNS, tc.want.DNSSearch, tc.want.DNSOptions)
			}
		})
	}
}
