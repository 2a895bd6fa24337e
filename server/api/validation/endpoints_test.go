//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func validEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: objectMeta("web"),
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.1.5"}},
			Ports:     []corev1.EndpointPort{{Port: 8080}},
		}},
	}
}

func endpointsWith(edit func(*corev1.Endpoints)) *corev1.Endpoints {
	ep := validEndpoints()
	edit(ep)
	return ep
}

func TestValidateEndpoints(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validEndpoints()},
		{name: "name must be a DNS subdomain", obj: endpointsWith(func(ep *corev1.Endpoints) { ep.Name = "Web" }),
			want: []string{"metadata.name"}},
		{name: "bad addresses", obj: endpointsWith(func(ep *corev1.Endpoints) {
			ep.Subsets[0].Addresses = []corev1.EndpointAddress{
				{IP: "10.42.1.5", Hostname: "web-0", NodeName: ptr("node-1")},
				{IP: "not-an-ip"},
				{IP: "127.0.0.1"},
				{IP: "169.254.169.254"},
				{IP: ""},
				{IP: "10.42.1.6", Hostname: "Web_0"},
			}
			ep.Subsets[0].NotReadyAddresses = []corev1.EndpointAddress{{IP: "0.0.0.0"}}
		}), want: []string{
			"subsets[0].addresses[1].ip",
			"subsets[0].addresses[2].ip",
			"subsets[0].addresses[3].ip",
			"subsets[0].addresses[4].ip",
			"subsets[0].addresses[5].hostname",
			"subsets[0].notReadyAddresses[0].ip",
		}},
		{name: "bad ports", obj: endpointsWith(func(ep *corev1.Endpoints) {
			ep.Subsets[0].Ports = []corev1.EndpointPort{
				{Name: "http", Port: 80},
				{Port: 443},
				{Name: "http", Port: 70000, Protocol: "QUIC"},
			}
		}), want: []string{
			"subsets[0].ports[1].name",
			"subsets[0].ports[2].name",
			"subsets[0].ports[2].port",
			"subsets[0].ports[2].protocol",
		}},
		{name: "update: new address", obj: endpointsWith(func(ep *corev1.Endpoints) {
			ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: "10.42.2.7"})
		}), old: validEndpoints()},
	})
}
