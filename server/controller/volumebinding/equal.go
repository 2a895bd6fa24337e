package volumebinding

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// controllerEqual compares the parts of a claim's status the controller
// writes, quantities by value.
func controllerEqual(a, b *corev1.PersistentVolumeClaimStatus) bool {
	return a.Phase == b.Phase && equality.Semantic.DeepEqual(a.AccessModes, b.AccessModes) &&
		equality.Semantic.DeepEqual(a.Capacity, b.Capacity)
}
