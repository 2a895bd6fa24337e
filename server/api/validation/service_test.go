package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateService(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validService()},
		{name: "headless without ports", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Ports = nil
		})},
		{name: "external name", obj: serviceWith(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}
		})},
		{name: "node port with a fixed port", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].NodePort = 30080
		})},
		{name: "name must be a DNS-1035 label", obj: serviceWith(func(s *corev1.Service) { s.Name = "1web" }),
			want: []string{"metadata.name"}},
		{name: "unknown type", obj: serviceWith(func(s *corev1.Service) { s.Spec.Type = "Internal" }),
			want: []string{"spec.type"}},
		{name: "no ports", obj: serviceWith(func(s *corev1.Service) { s.Spec.Ports = nil }),
			want: []string{"spec.ports"}},
		{name: "bad ports", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "http", Port: 0},
				{Port: 443},
				{Name: "http", Port: 8080, Protocol: "HTTP"},
				{Name: "Metrics", Port: 9090, TargetPort: intstr.FromString("no_such")},
				{Name: "dup", Port: 443},
				{Name: "big", Port: 80, TargetPort: intstr.FromInt32(70000)},
			}
		}), want: []string{
			"spec.ports[0].port",
			"spec.ports[1].name",
			"spec.ports[2].name",
			"spec.ports[2].protocol",
			"spec.ports[3].name",
			"spec.ports[3].targetPort",
			"spec.ports[4]",
			"spec.ports[5].targetPort",
		}},
		{name: "node port on a cluster IP service", obj: serviceWith(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: []string{"spec.ports[0].nodePort"}},
		{name: "node port out of range and reused", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "a", Port: 80, NodePort: 8080},
				{Name: "b", Port: 81, NodePort: 30001},
				{Name: "c", Port: 82, NodePort: 30001},
			}
		}), want: []string{"spec.ports[0].nodePort", "spec.ports[2].nodePort"}},
		{name: "bad cluster IPs", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.43.0.300"
			s.Spec.ClusterIPs = []string{"10.43.0.5"}
		}), want: []string{"spec.clusterIP", "spec.clusterIPs[0]"}},
		{name: "headless node port", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}), want: []string{"spec.clusterIP"}},
		{name: "external name missing or invalid", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIP = "10.43.0.9"
		}), want: []string{"spec.externalName", "spec.clusterIP"}},
		{name: "external name not a DNS name", obj: serviceWith(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "http://db"}
		}), want: []string{"spec.externalName"}},
		{name: "bad selector and affinity", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Selector = map[string]string{"app": "a b"}
			s.Spec.SessionAffinity = "Cookie"
		}), want: []string{"spec.selector", "spec.sessionAffinity"}},
		{name: "client IP timeout too long", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](100000)}}
		}), want: []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds"}},
		{name: "local external traffic on a cluster IP service", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), want: []string{"spec.externalTrafficPolicy"}},
		{name: "bad families", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr[corev1.IPFamilyPolicy]("DualStackPlease")
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv4Protocol}
		}), want: []string{"spec.ipFamilyPolicy", "spec.ipFamilies[1]"}},
		{name: "update: ports changed", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.43.0.5"
			s.Spec.Ports[0].Port = 8080
		}), old: serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.5" })},
		{name: "update: cluster IP allocated", obj: serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.5" }), old: validService()},
		{name: "update: cluster IP changed", obj: serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.6" }),
			old:  serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.5" }),
			want: []string{"spec.clusterIP"}},
		{name: "update: to headless", obj: serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			old:  serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.5" }),
			want: []string{"spec.clusterIP"}},
		{name: "update: to external name", obj: serviceWith(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
		}), old: serviceWith(func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.5" })},
	})
}
