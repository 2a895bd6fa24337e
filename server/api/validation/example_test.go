package validation_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/defaulting"
	"orch.dev/orch/server/api/validation"
)

// The API server defaults, validates and collects warnings, in that order.
func Example() {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers:                []corev1.Container{{Name: "web"}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone"}},
		},
	}
	defaulting.Default(pod)
	for _, err := range validation.ValidateCreate(pod) {
		fmt.Println(err)
	}
	for _, w := range validation.Unsupported(pod) {
		fmt.Println(w)
	}
	// Output:
	// spec.containers[0].image: Required value: the image to run, such as "nginx:1.27"
	// spec.topologySpreadConstraints: orch does not implement it; it is stored but has no effect
}
