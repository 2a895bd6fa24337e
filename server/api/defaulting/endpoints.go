//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package defaulting

import (
	corev1 "k8s.io/api/core/v1"
)

func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
		}
	}
}
