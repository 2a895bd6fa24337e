package main

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

// imagesOf lists the images of kind/web's pod template, init containers
// first.
func imagesOf(t *testing.T, env *apitest.Env, kind string) string {
	t.Helper()
	ctx := context.Background()
	apps := env.Client.AppsV1()
	var (
		spec corev1.PodSpec
		err  error
	)
	switch kind {
	case "deployment":
		var o *appsv1.Deployment
		if o, err = apps.Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			spec = o.Spec.Template.Spec
		}
	case "daemonset":
		var o *appsv1.DaemonSet
		if o, err = apps.DaemonSets("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			spec = o.Spec.Template.Spec
		}
	case "statefulset":
		var o *appsv1.StatefulSet
		if o, err = apps.StatefulSets("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			spec = o.Spec.Template.Spec
		}
	case "replicaset":
		var o *appsv1.ReplicaSet
		if o, err = apps.ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			spec = o.Spec.Template.Spec
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		out = append(out, c.Name+"="+c.Image)
	}
	return strings.Join(out, ",")
}

func TestSetImage(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		want       map[string]string // kind: images after
	}{
		{name: "one container", args: []string{"set", "image", "deployment/web", "app=orch/hello:v2"},
			wantStdout: "deployment.apps/web image updated",
			want:       map[string]string{"deployment": "setup=orch/busybox:v1,app=orch/hello:v2,sidecar=orch/busybox:v1"}},
		{name: "an init container and a container, KIND NAME", args: []string{"set", "image", "deploy", "web", "setup=orch/busybox:v2", "sidecar=orch/busybox:v2"},
			wantStdout: "deployment.apps/web image updated",
			want:       map[string]string{"deployment": "setup=orch/busybox:v2,app=orch/hello:v1,sidecar=orch/busybox:v2"}},
		{name: "every container", args: []string{"set", "image", "deployment/web", "*=orch/hello:v3"},
			wantStdout: "deployment.apps/web image updated",
			want:       map[string]string{"deployment": "setup=orch/hello:v3,app=orch/hello:v3,sidecar=orch/hello:v3"}},
		{name: "the same image", args: []string{"set", "image", "deployment/web", "app=orch/hello:v1"},
			wantStdout: "deployment.apps/web image unchanged",
			want:       map[string]string{"deployment": "setup=orch/busybox:v1,app=orch/hello:v1,sidecar=orch/busybox:v1"}},
		{name: "other kinds", args: []string{"set", "image", "ds/web", "sts/web", "rs/web", "app=orch/hello:v2"},
			wantStdout: "daemonset.apps/web image updated\nstatefulset.apps/web image updated\nreplicaset.apps/web image updated",
			want:       map[string]string{"daemonset": "app=orch/hello:v2", "statefulset": "app=orch/hello:v2", "replicaset": "app=orch/hello:v2"}},
		{name: "an unknown container", args: []string{"set", "image", "deployment/web", "app=orch/hello:v2", "web=orch/hello:v2"},
			wantCode: 1, wantStderr: `error: deployment.apps/web: no container named "web" (containers: setup, app, sidecar)`,
			want: map[string]string{"deployment": "setup=orch/busybox:v1,app=orch/hello:v1,sidecar=orch/busybox:v1"}},
		{name: "a malformed image", args: []string{"set", "image", "deployment/web", "app=Orch/Hello"},
			wantCode: 1, wantStderr: `error: "app=Orch/Hello": invalid reference format: repository name (Hello) must be lowercase`},
		{name: "no image", args: []string{"set", "image", "deployment/web"},
			wantCode: 1, wantStderr: "error: say which image: CONTAINER=IMAGE (see 'orchctl set image --help')"},
		{name: "a kind without a pod template", args: []string{"set", "image", "cm/web", "app=orch/hello:v2"},
			wantCode: 1, wantStderr: "error: configmap/web: set image works on deployments, daemon sets, stateful sets, replica sets and replication controllers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startWithWorkloads(t)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || strings.TrimSpace(r.stdout) != tc.wantStdout || strings.TrimSpace(r.stderr) != tc.wantStderr {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			for kind, want := range tc.want {
				if got := imagesOf(t, env, kind); got != want {
					t.Errorf("%s/web: got images %s, want %s", kind, got, want)
				}
			}
		})
	}
}
