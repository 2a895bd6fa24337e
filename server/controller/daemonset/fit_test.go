package daemonset

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestInsufficient(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i+1 < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	alloc := rl("cpu", "2", "memory", "1Gi", "pods", "3")
	for _, tc := range []struct {
		name       string
		want, used corev1.ResourceList
		pods       int64
		short      string
	}{
		{name: "fits", want: rl("cpu", "500m"), used: rl("cpu", "1500m"), pods: 2},
		{name: "cpu", want: rl("cpu", "500m"), used: rl("cpu", "1600m"), short: "cpu, requested: 500m, used: 1600m, capacity: 2"},
		{name: "memory", want: rl("memory", "512Mi"), used: rl("memory", "768Mi"), short: "memory, requested: 512Mi, used: 768Mi, capacity: 1Gi"},
		{name: "pods", want: rl(), pods: 3, short: "pods, requested: 1, used: 3, capacity: 3"},
		{name: "an extended resource the node lacks", want: rl("example.com/gpu", "1"), short: "example.com/gpu, requested: 1, capacity: 0"},
		{name: "zero requests fit anywhere", want: rl("cpu", "0"), used: rl("cpu", "2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := insufficient(tc.want, tc.used, tc.pods, alloc); got != tc.short {
				t.Fatalf("got %q, want %q", got, tc.short)
			}
		})
	}
}

func TestPodRequestsPeak(t *testing.T) {
	c := func(cpu string) corev1.Container {
		return corev1.Container{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}
	}
	sidecar := c("100m")
	sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want string
	}{
		{name: "containers add up", spec: corev1.PodSpec{Containers: []corev1.Container{c("200m"), c("300m")}}, want: "500m"},
		{name: "a big init container is the peak", spec: corev1.PodSpec{InitContainers: []corev1.Container{c("1")}, Containers: []corev1.Container{c("200m")}}, want: "1"},
		{name: "sidecars run beside the app", spec: corev1.PodSpec{InitContainers: []corev1.Container{sidecar}, Containers: []corev1.Container{c("200m")}}, want: "300m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podRequests(&tc.spec)[corev1.ResourceCPU]
			if want := resource.MustParse(tc.want); got.Cmp(want) != 0 {
				t.Fatalf("got %s, want %s", got.String(), tc.want)
			}
		})
	}
}
