package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateOddInput(t *testing.T) {
	tests := []struct {
		name string
		run  func() field.ErrorList
		want []string
	}{
		{name: "create nil", run: func() field.ErrorList { return ValidateCreate(nil) }, want: []string{"<nil>"}},
		{name: "create nil pod", run: func() field.ErrorList { return ValidateCreate((*corev1.Pod)(nil)) }, want: []string{"<nil>"}},
		{name: "update from nil", run: func() field.ErrorList { return ValidateUpdate(validPod(), (*corev1.Pod)(nil)) }, want: []string{"<nil>"}},
		{name: "update to nil", run: func() field.ErrorList { return ValidateUpdate(nil, validPod()) }, want: []string{"<nil>"}},
		{name: "update across kinds", run: func() field.ErrorList { return ValidateUpdate(validPod(), validService()) }, want: []string{"<nil>"}},
		{name: "create unknown kind", run: func() field.ErrorList { return ValidateCreate(&rbacv1.Role{}) }},
		{name: "update unknown kind", run: func() field.ErrorList { return ValidateUpdate(&rbacv1.Role{}, &rbacv1.Role{}) }},
		{name: "create empty pod", run: func() field.ErrorList { return ValidateCreate(&corev1.Pod{}) },
			want: []string{"metadata.name", "metadata.namespace", "spec.containers", "spec.dnsPolicy", "spec.restartPolicy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := errorPaths(tc.run())
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got errors at %q, want at %q", got, want)
			}
		})
	}
}

// TestNameRules checks the name rule of each kind on a name that is a DNS
// subdomain but not a label (a dot), and one that is a DNS-1123 label but
// not a DNS-1035 label (a leading digit).
func TestNameRules(t *testing.T) {
	tests := []struct {
		name       string
		obj        func(name string) runtime.Object
		dotted     bool // "a.b" accepted
		leadDigits bool // "1a" accepted
	}{
		{"Namespace", func(n string) runtime.Object { return namespaceWith(func(o *corev1.Namespace) { o.Name = n }) }, false, true},
		{"Service", func(n string) runtime.Object { return serviceWith(func(o *corev1.Service) { o.Name = n }) }, false, false},
		//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
		{"Endpoints", func(n string) runtime.Object { return endpointsWith(func(o *corev1.Endpoints) { o.Name = n }) }, true, true},
		{"Pod", func(n string) runtime.Object { return podWith(func(o *corev1.Pod) { o.Name = n }) }, true, true},
		{"Node", func(n string) runtime.Object { return nodeWith(func(o *corev1.Node) { o.Name = n }) }, true, true},
		{"ConfigMap", func(n string) runtime.Object { return configMapWith(func(o *corev1.ConfigMap) { o.Name = n }) }, true, true},
		{"Secret", func(n string) runtime.Object { return secretWith(func(o *corev1.Secret) { o.Name = n }) }, true, true},
		{"Deployment", func(n string) runtime.Object { return deploymentWith(func(o *appsv1.Deployment) { o.Name = n }) }, true, true},
		{"StatefulSet", func(n string) runtime.Object { return statefulSetWith(func(o *appsv1.StatefulSet) { o.Name = n }) }, true, true},
		{"CronJob", func(n string) runtime.Object { return cronJobWith(func(o *batchv1.CronJob) { o.Name = n }) }, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				ok   bool
			}{{"a.b", tc.dotted}, {"1a", tc.leadDigits}, {"Upper", false}, {"ok-name", true}} {
				errs := ValidateCreate(defaulted(tc.obj(c.name)))
				if got := len(errs) == 0; got != c.ok {
					t.Errorf("name %q: got accepted=%v (%v), want %v", c.name, got, errs, c.ok)
				}
			}
		})
	}
}
