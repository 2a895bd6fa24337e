package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/server/api/apitest"
)

// startWithWorkloads starts a server (no controllers) holding one object
// "web" of each workload kind, each with one replica where it has replicas,
// and containers "app" (and, for the deployment, "sidecar" and the init
// container "setup").
func startWithWorkloads(t *testing.T) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	ctx := context.Background()
	l := map[string]string{"app": "web"}
	sel := &metav1.LabelSelector{MatchLabels: l}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:v1"}}}}
	d := newWebDeployment(1, "orch/hello:v1")
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "orch/busybox:v1"})
	d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "orch/busybox:v1"}}
	apps := env.Client.AppsV1()
	errs := []error{
		first(apps.Deployments("default").Create(ctx, d, metav1.CreateOptions{})),
		first(apps.ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})),
		first(apps.StatefulSets("default").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: sel, Template: tmpl, ServiceName: "web"}}, metav1.CreateOptions{})),
		first(apps.DaemonSets("default").Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})),
		first(env.Client.CoreV1().ReplicationControllers("default").Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](1), Selector: l, Template: &tmpl}}, metav1.CreateOptions{})),
		first(env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})),
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func first(_ any, err error) error { return err }

// replicasOf reads the spec.replicas of the workload kind/web.
func replicasOf(t *testing.T, env *apitest.Env, kind string) string {
	t.Helper()
	ctx := context.Background()
	apps := env.Client.AppsV1()
	var (
		n   *int32
		err error
	)
	switch kind {
	case "deployment":
		var o *appsv1.Deployment
		if o, err = apps.Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			n = o.Spec.Replicas
		}
	case "replicaset":
		var o *appsv1.ReplicaSet
		if o, err = apps.ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			n = o.Spec.Replicas
		}
	case "statefulset":
		var o *appsv1.StatefulSet
		if o, err = apps.StatefulSets("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			n = o.Spec.Replicas
		}
	case "replicationcontroller":
		var o *corev1.ReplicationController
		if o, err = env.Client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			n = o.Spec.Replicas
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(replicas(n))
}

func TestScale(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		want       map[string]string // kind: replicas after
	}{
		{name: "deployment/NAME", args: []string{"scale", "deployment/web", "--replicas", "3"},
			wantStdout: "deployment.apps/web scaled", want: map[string]string{"deployment": "3", "replicaset": "1"}},
		{name: "KIND NAME, to zero", args: []string{"scale", "deploy", "web", "--replicas=0"},
			wantStdout: "deployment.apps/web scaled", want: map[string]string{"deployment": "0"}},
		{name: "every scalable kind", args: []string{"scale", "rs/web", "sts/web", "rc/web", "--replicas", "4"},
			wantStdout: "replicaset.apps/web scaled\nstatefulset.apps/web scaled\nreplicationcontroller/web scaled",
			want:       map[string]string{"replicaset": "4", "statefulset": "4", "replicationcontroller": "4", "deployment": "1"}},
		{name: "current replicas as expected", args: []string{"scale", "deployment/web", "--replicas", "2", "--current-replicas", "1"},
			wantStdout: "deployment.apps/web scaled", want: map[string]string{"deployment": "2"}},
		{name: "current replicas not as expected", args: []string{"scale", "deployment/web", "--replicas", "2", "--current-replicas", "5"},
			wantCode: 1, wantStderr: "error: deployment.apps/web: expected 5 replicas, found 1; not scaled", want: map[string]string{"deployment": "1"}},
		{name: "a missing object", args: []string{"scale", "deployment/nope", "--replicas", "2"},
			wantCode: 1, wantStderr: `error: deployment.apps/nope: deployments.apps "nope" not found`},
		{name: "no --replicas", args: []string{"scale", "deployment/web"},
			wantCode: 1, wantStderr: "error: say how many replicas: --replicas N"},
		{name: "negative replicas", args: []string{"scale", "deployment/web", "--replicas", "-2"},
			wantCode: 1, wantStderr: "error: --replicas -2: want 0 or more"},
		{name: "a kind without replicas", args: []string{"scale", "ds/web", "--replicas", "2"},
			wantCode: 1, wantStderr: "error: daemonset.apps/web: only deployments, replica sets, replication controllers and stateful sets can be scaled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startWithWorkloads(t)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || strings.TrimSpace(r.stdout) != tc.wantStdout || strings.TrimSpace(r.stderr) != tc.wantStderr {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			for kind, want := range tc.want {
				if got := replicasOf(t, env, kind); got != want {
					t.Errorf("%s/web: got %s replicas, want %s", kind, got, want)
				}
			}
		})
	}
}
