package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rt "orch.dev/orch/node/runtime"
)

func TestEnvAndSpec(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "n1", SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(2000))}},
	}
	c := &corev1.Container{
		Name: "app", Image: "orch/hello:dev",
		Command: []string{"/hello"}, Args: []string{"fetch", "http://$(HOST):8080/$$"},
		Env: []corev1.EnvVar{
			{Name: "HOST", Value: "localhost"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "URL", Value: "http://$(POD_IP):80"},
			{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")}},
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(1001)), ReadOnlyRootFilesystem: ptr.To(true),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}},
	}
	spec, err := containerSpec(pod, c, rt.RoleApp, 2, "sandbox-id", "n1", envContext{podIP: "10.42.1.7", hostIP: "192.168.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOST=localhost", "POD_NAME=web-1", "POD_NAMESPACE=shop", "POD_IP=10.42.1.7", "NODE_NAME=n1", "APP=web", "URL=http://10.42.1.7:80", "MEM_MI=64", "CPU=1"}
	if len(spec.Env) != len(want) {
		t.Fatalf("got env %v, want %v", spec.Env, want)
	}
	for i := range want {
		if spec.Env[i] != want[i] {
			t.Fatalf("env %d: got %q, want %q", i, spec.Env[i], want[i])
		}
	}
	cases := []struct {
		name string
		got  any
		want any
	}{
		{"args expanded", spec.Args[1], "http://localhost:8080/$"},
		{"memory limit", spec.MemoryBytes, int64(64 << 20)},
		{"cpu limit", spec.NanoCPUs, int64(500_000_000)},
		{"container user wins, pod group kept", spec.User, "1001:2000"},
		{"read-only root", spec.ReadOnlyRootFS, true},
		{"privileged off by default", spec.Privileged, false},
		{"cap add", spec.CapAdd[0], "NET_ADMIN"},
		{"cap drop", spec.CapDrop[0], "ALL"},
		{"attempt label", spec.Labels[rt.LabelAttempt], "2"},
		{"pod uid label", spec.Labels[rt.LabelPodUID], "u-1"},
		{"sandbox", spec.SandboxID, "sandbox-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}
