package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// fakeConfigs is a configLookup over fixed objects.
type fakeConfigs struct {
	cms  map[string]*corev1.ConfigMap
	secs map[string]*corev1.Secret
}

func (f fakeConfigs) configMap(ns, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
}

func (f fakeConfigs) secret(ns, name string) (*corev1.Secret, error) {
	if s, ok := f.secs[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

func testConfigs() fakeConfigs {
	return fakeConfigs{
		cms: map[string]*corev1.ConfigMap{
			"shop/app": {ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "shop"},
				Data: map[string]string{"mode": "fast", "level": "3", "1bad": "x", "has-dash": "y"}},
		},
		secs: map[string]*corev1.Secret{
			"shop/db": {ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
				Data: map[string][]byte{"password": []byte("s3cret-value"), "user": []byte("admin")}},
		},
	}
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
}

func secKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
}

func TestEnvFor(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "core"}},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "builder"},
	}
	cases := []struct {
		name        string
		env         []corev1.EnvVar
		envFrom     []corev1.EnvFromSource
		resources   corev1.ResourceRequirements
		want        []string
		wantErr     string // the whole message, as the pod shows it
		wantSkipped string
	}{
		{name: "configMap and secret keys",
			env:  []corev1.EnvVar{{Name: "MODE", ValueFrom: cmKey("app", "mode", false)}, {Name: "PASS", ValueFrom: secKey("db", "password", false)}},
			want: []string{"MODE=fast", "PASS=s3cret-value"}},
		{name: "missing configMap", env: []corev1.EnvVar{{Name: "MODE", ValueFrom: cmKey("app-config", "mode", false)}},
			wantErr: `configmap "app-config" not found`},
		{name: "missing secret", env: []corev1.EnvVar{{Name: "P", ValueFrom: secKey("nope", "password", false)}},
			wantErr: `secret "nope" not found`},
		{name: "missing configMap key", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("app", "nokey", false)}},
			wantErr: `couldn't find key nokey in ConfigMap shop/app`},
		{name: "missing secret key names the key only", env: []corev1.EnvVar{{Name: "X", ValueFrom: secKey("db", "token", false)}},
			wantErr: `couldn't find key token in Secret shop/db`},
		{name: "optional missing objects and keys are left out",
			env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("none", "k", true)}, {Name: "B", ValueFrom: cmKey("app", "nokey", true)},
				{Name: "C", ValueFrom: secKey("none", "k", true)}, {Name: "D", ValueFrom: secKey("db", "nokey", true)}, {Name: "E", Value: "e"}},
			envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Optional: ptr.To(true)}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Optional: ptr.To(true)}}},
			want: []string{"E=e"}},
		{name: "envFrom with prefix skips invalid names",
			envFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}},
			want:        []string{"CFG_1bad=x", "CFG_has-dash=y", "CFG_level=3", "CFG_mode=fast", "password=s3cret-value", "user=admin"},
			wantSkipped: ""},
		{name: "envFrom without prefix skips invalid names",
			envFrom:     []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
			want:        []string{"has-dash=y", "level=3", "mode=fast"},
			wantSkipped: "configMap shop/app [1bad]"},
		{name: "missing envFrom configMap", envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
			wantErr: `configmap "app-config" not found`},
		{name: "missing envFrom secret", envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}}},
			wantErr: `secret "x" not found`},
		{name: "env overrides envFrom in place and expands from it",
			envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}, Prefix: "X_"}},
			env:     []corev1.EnvVar{{Name: "X_mode", Value: "slow"}, {Name: "URL", Value: "http://h/$(X_level)/$(NOPE)"}},
			want:    []string{"X_1bad=x", "X_has-dash=y", "X_level=3", "X_mode=slow", "URL=http://h/3/$(NOPE)"}},
		{name: "downward API fields",
			env: []corev1.EnvVar{
				{Name: "NAME", ValueFrom: fieldRef("metadata.name")}, {Name: "NS", ValueFrom: fieldRef("metadata.namespace")},
				{Name: "UID", ValueFrom: fieldRef("metadata.uid")}, {Name: "APP", ValueFrom: fieldRef("metadata.labels['app']")},
				{Name: "TEAM", ValueFrom: fieldRef("metadata.annotations['team']")}, {Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
				{Name: "SA", ValueFrom: fieldRef("spec.serviceAccountName")}, {Name: "IP", ValueFrom: fieldRef("status.podIP")},
				{Name: "IPS", ValueFrom: fieldRef("status.podIPs")}, {Name: "HOST", ValueFrom: fieldRef("status.hostIP")},
			},
			want: []string{"NAME=web-1", "NS=shop", "UID=u-1", "APP=web", "TEAM=core", "NODE=n1", "SA=builder", "IP=10.42.0.9", "IPS=10.42.0.9", "HOST=192.168.0.2"}},
		{name: "unknown fieldRef", env: []corev1.EnvVar{{Name: "X", ValueFrom: fieldRef("spec.nope")}}, wantErr: `container configuration: env X: unsupported fieldRef "spec.nope"`},
		{name: "resource fields with divisors and the node's allocatable for unset limits",
			resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
			},
			env: []corev1.EnvVar{
				{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				{Name: "CPU_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
				{Name: "REQ_CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu"}}},
				{Name: "REQ_MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.memory", Divisor: resource.MustParse("1Mi")}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
			},
			want: []string{"CPU=2", "CPU_M=1500", "REQ_CPU=1", "REQ_MEM_MI=100", fmt.Sprintf("MEM=%d", 8<<30)}},
		{name: "unknown resource", env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.gpu"}}}},
			wantErr: `container configuration: env X: unsupported resourceFieldRef "limits.gpu"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", Env: tc.env, EnvFrom: tc.envFrom, Resources: tc.resources}
			var skipped []string
			ec := envContext{podIP: "10.42.0.9", hostIP: "192.168.0.2", configs: testConfigs(),
				allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")},
				skipped: func(kind, ns, name string, keys []string) {
					skipped = append(skipped, fmt.Sprintf("%s %s/%s %v", kind, ns, name, keys))
				}}
			env, err := envFor(pod, c, ec)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, errContainerConfig) {
					t.Fatalf("got %v, want the container configuration error %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q shows a secret value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(env, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got env %q, want %q", env, tc.want)
			}
			if got := strings.Join(skipped, "; "); got != tc.wantSkipped {
				t.Fatalf("got skipped %q, want %q", got, tc.wantSkipped)
			}
		})
	}
}

func TestPodRefers(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("init-secret")}}}}},
		Containers: []corev1.Container{{Name: "app",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("env-from")}}},
			Env:     []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("env-key", "k", false)}, {Name: "B", ValueFrom: secKey("secret-key", "k", false)}}}},
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("proj-cm")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("proj-secret")}},
			}}}},
		},
	}}
	cases := []struct {
		kind, name string
		want       bool
	}{
		{"secret", "init-secret", true}, {"configmap", "env-from", true}, {"configmap", "env-key", true},
		{"secret", "secret-key", true}, {"configmap", "vol-cm", true}, {"secret", "vol-secret", true},
		{"configmap", "proj-cm", true}, {"secret", "proj-secret", true},
		{"configmap", "vol-secret", false}, {"secret", "vol-cm", false}, {"configmap", "other", false},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			if got := podRefers(pod, tc.kind, tc.name); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
