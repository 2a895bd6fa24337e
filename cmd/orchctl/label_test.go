package main

import (
	"context"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

// mapString shows a label or annotation map as k=v pairs, sorted.
func mapString(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// startWithLabelled starts a server holding configmaps a and b (app=x) and
// c (app=y) in default, pod p in default and node n1, each with the
// annotation note=old.
func startWithLabelled(t *testing.T) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	ctx := context.Background()
	meta := func(name, app string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}, Annotations: map[string]string{"note": "old"}}
	}
	for _, cm := range []struct{ name, app string }{{"a", "x"}, {"b", "x"}, {"c", "y"}} {
		if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: meta(cm.name, cm.app)}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: meta("p", "x"),
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: meta("n1", "x")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return env
}

// metadataOf returns an object's labels and annotations as mapString.
func metadataOf(t *testing.T, env *apitest.Env, kind, name string) (labels, annotations string) {
	t.Helper()
	ctx := context.Background()
	var (
		m   metav1.Object
		err error
	)
	switch kind {
	case "cm":
		m, err = env.Client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
	case "pod":
		m, err = env.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	case "node":
		m, err = env.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return mapString(m.GetLabels()), mapString(m.GetAnnotations())
}

func TestLabelAndAnnotate(t *testing.T) {
	type after struct{ kind, name, labels, annotations string }
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		want       []after
	}{
		{name: "add a label", args: []string{"label", "configmap", "a", "tier=web"},
			wantStdout: "configmap/a labeled\n", want: []after{{"cm", "a", "app=x,tier=web", "note=old"}}},
		{name: "several objects, kind/name", args: []string{"label", "cm/a", "cm/c", "tier=web", "team=blue"},
			wantStdout: "configmap/a labeled\nconfigmap/c labeled\n",
			want:       []after{{"cm", "a", "app=x,team=blue,tier=web", "note=old"}, {"cm", "c", "app=y,team=blue,tier=web", "note=old"}}},
		{name: "the same value is no change", args: []string{"label", "cm", "a", "app=x"},
			wantStdout: "configmap/a not labeled\n", want: []after{{"cm", "a", "app=x", "note=old"}}},
		{name: "a new value needs --overwrite", args: []string{"label", "cm", "a", "app=z", "tier=web"}, wantCode: 1,
			wantStderr: `error: configmap/a: "app" already has the value "x"; pass --overwrite to change it`,
			want:       []after{{"cm", "a", "app=x", "note=old"}}},
		{name: "--overwrite", args: []string{"label", "--overwrite", "cm", "a", "app=z"},
			wantStdout: "configmap/a labeled\n", want: []after{{"cm", "a", "app=z", "note=old"}}},
		{name: "remove", args: []string{"label", "cm", "a", "app-", "tier=web"},
			wantStdout: "configmap/a labeled\n", want: []after{{"cm", "a", "tier=web", "note=old"}}},
		{name: "remove a missing label", args: []string{"label", "cm", "a", "nope-"},
			wantStdout: "configmap/a not labeled\n", wantStderr: `configmap/a: label "nope" not found`, want: []after{{"cm", "a", "app=x", "note=old"}}},
		{name: "by selector", args: []string{"label", "cm", "-l", "app=x", "tier=web"},
			wantStdout: "configmap/a labeled\nconfigmap/b labeled\n",
			want:       []after{{"cm", "a", "app=x,tier=web", "note=old"}, {"cm", "b", "app=x,tier=web", "note=old"}, {"cm", "c", "app=y", "note=old"}}},
		{name: "--all", args: []string{"label", "cm", "--all", "tier=web"},
			wantStdout: "configmap/a labeled\nconfigmap/b labeled\nconfigmap/c labeled\n",
			want:       []after{{"cm", "c", "app=y,tier=web", "note=old"}}},
		{name: "a pod", args: []string{"label", "pod", "p", "tier=web"},
			wantStdout: "pod/p labeled\n", want: []after{{"pod", "p", "app=x,tier=web", "note=old"}}},
		{name: "a node role", args: []string{"label", "node", "n1", "node-role.kubernetes.io/worker="},
			wantStdout: "node/n1 labeled\n", want: []after{{"node", "n1", "app=x,node-role.kubernetes.io/worker=", "note=old"}}},
		{name: "a missing object does not stop the others", args: []string{"label", "cm", "nope", "a", "tier=web"}, wantCode: 1,
			wantStdout: "configmap/a labeled\n", wantStderr: `error: configmap/nope: configmaps "nope" not found`,
			want: []after{{"cm", "a", "app=x,tier=web", "note=old"}}},
		{name: "bad key", args: []string{"label", "cm", "a", "bad key=x"}, wantCode: 1,
			wantStderr: `invalid label "bad key=x": key "bad key": name part must consist of`},
		{name: "bad prefix", args: []string{"label", "cm", "a", "Example.COM/x=y"}, wantCode: 1,
			wantStderr: `invalid label "Example.COM/x=y": key "Example.COM/x": prefix part a lowercase RFC 1123 subdomain`},
		{name: "bad value", args: []string{"label", "cm", "a", "tier=front end"}, wantCode: 1,
			wantStderr: `invalid label "tier=front end": value "front end": a valid label must be`},
		{name: "set and removed", args: []string{"label", "cm", "a", "tier=web", "tier-"}, wantCode: 1,
			wantStderr: `label "tier" is both set and removed; pass one`},
		{name: "two values", args: []string{"label", "cm", "a", "tier=web", "tier=db"}, wantCode: 1,
			wantStderr: `label "tier" is given two values, "web" and "db"`},
		{name: "no change", args: []string{"label", "cm", "a"}, wantCode: 1, wantStderr: "say what to change: KEY=VALUE sets a label, KEY- removes one"},
		{name: "no object", args: []string{"label", "tier=web"}, wantCode: 1, wantStderr: "say which objects to label"},
		{name: "a kind without names", args: []string{"label", "cm", "tier=web"}, wantCode: 1, wantStderr: "say which configmaps: names, -l SELECTOR, or --all"},
		{name: "an unknown kind", args: []string{"label", "gizmos", "a", "tier=web"}, wantCode: 1, wantStderr: `the server doesn't have a resource type "gizmos"`},

		{name: "annotate", args: []string{"annotate", "cm", "a", "description=the first map; see=docs"},
			wantStdout: "configmap/a annotated\n", want: []after{{"cm", "a", "app=x", "description=the first map; see=docs,note=old"}}},
		{name: "annotate: a new value needs --overwrite", args: []string{"annotate", "node/n1", "note=new"}, wantCode: 1,
			wantStderr: `error: node/n1: "note" already has the value "old"; pass --overwrite to change it`,
			want:       []after{{"node", "n1", "app=x", "note=old"}}},
		{name: "annotate --overwrite", args: []string{"annotate", "node/n1", "note=new", "--overwrite"},
			wantStdout: "node/n1 annotated\n", want: []after{{"node", "n1", "app=x", "note=new"}}},
		{name: "annotate: remove", args: []string{"annotate", "pod", "p", "note-"},
			wantStdout: "pod/p annotated\n", want: []after{{"pod", "p", "app=x", ""}}},
		{name: "annotate: bad key", args: []string{"annotate", "pod", "p", "x_=1"}, wantCode: 1,
			wantStderr: `invalid annotation "x_=1": key "x_"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startWithLabelled(t)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			for _, w := range tc.want {
				labels, annotations := metadataOf(t, env, w.kind, w.name)
				if labels != w.labels || annotations != w.annotations {
					t.Fatalf("%s %s: got labels %q annotations %q, want %q and %q", w.kind, w.name, labels, annotations, w.labels, w.annotations)
				}
			}
		})
	}
}
