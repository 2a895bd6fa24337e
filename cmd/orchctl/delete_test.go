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

// configMaps lists the configmap names in ns, sorted and comma-joined.
func configMaps(t *testing.T, env *apitest.Env, ns string) string {
	t.Helper()
	l, err := env.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range l.Items {
		names = append(names, cm.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func TestDelete(t *testing.T) {
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: kube-system}\n"
	cases := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout []string
		wantStderr string
		wantLeft   map[string]string // namespace: the configmaps left there
	}{
		{
			name: "by name", args: []string{"delete", "configmap", "a", "c"},
			wantStdout: []string{"configmap/a deleted", "configmap/c deleted"},
			wantLeft:   map[string]string{"default": "d", "kube-system": "b"},
		},
		{
			name: "kind/name", args: []string{"delete", "cm/a"},
			wantStdout: []string{"configmap/a deleted"},
			wantLeft:   map[string]string{"default": "c,d"},
		},
		{
			name: "from a manifest on stdin", args: []string{"delete", "-f", "-"}, stdin: manifest,
			wantStdout: []string{"configmap/a deleted", "configmap/b deleted"},
			wantLeft:   map[string]string{"default": "c,d", "kube-system": ""},
		},
		{
			name: "by label", args: []string{"delete", "cm", "-l", "tier=x"},
			wantStdout: []string{"configmap/a deleted", "configmap/c deleted"},
			wantLeft:   map[string]string{"default": "d", "kube-system": "b"},
		},
		{
			name: "by label across namespaces", args: []string{"delete", "cm", "-l", "tier=x", "-A"},
			wantStdout: []string{"configmap/a deleted", "configmap/c deleted", "configmap/b deleted"},
			wantLeft:   map[string]string{"default": "d", "kube-system": ""},
		},
		{
			name: "all of a kind in the namespace", args: []string{"delete", "cm", "--all", "-n", "kube-system", "--force"},
			wantStdout: []string{"configmap/b deleted"},
			wantLeft:   map[string]string{"default": "a,c,d", "kube-system": ""},
		},
		{
			name: "a missing object is an error, the others still go", args: []string{"delete", "cm", "nope", "a"},
			wantCode: 1, wantStdout: []string{"configmap/a deleted"}, wantStderr: `error: configmaps "nope" not found`,
			wantLeft: map[string]string{"default": "c,d"},
		},
		{
			name: "--ignore-not-found", args: []string{"delete", "cm", "nope", "--ignore-not-found", "--wait"},
			wantLeft: map[string]string{"default": "a,c,d"},
		},
		{
			name: "a selector matching nothing", args: []string{"delete", "cm", "-l", "tier=none"},
			wantStderr: "No resources found", wantLeft: map[string]string{"default": "a,c,d"},
		},
		{
			name: "neither names nor a selector", args: []string{"delete", "cm"},
			wantCode: 1, wantStderr: "say which configmaps to delete: names, -l SELECTOR, or --all",
		},
		{
			name: "a negative grace period", args: []string{"delete", "cm", "a", "--grace-period", "-5"},
			wantCode: 1, wantStderr: "--grace-period -5: want -1",
		},
		{
			name: "--force with a grace period", args: []string{"delete", "cm", "a", "--force", "--grace-period", "30"},
			wantCode: 1, wantStderr: "--force deletes without a grace period; it contradicts --grace-period 30",
		},
		{
			name: "a grace period that is not a number", args: []string{"delete", "cm", "a", "--grace-period", "soon"},
			wantCode: 1, wantStderr: `invalid value "soon" for flag -grace-period`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			ctx := context.Background()
			for _, cm := range []struct{ ns, name, tier string }{
				{"default", "a", "x"}, {"default", "c", "x"}, {"default", "d", "y"}, {"kube-system", "b", "x"},
			} {
				_, err := env.Client.CoreV1().ConfigMaps(cm.ns).Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: cm.name, Labels: map[string]string{"tier": cm.tier}},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
			}
			r := orchctl(t, env, tc.stdin, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if got := lines(r.stdout); strings.Join(got, "\n") != strings.Join(tc.wantStdout, "\n") {
				t.Fatalf("got stdout %q, want %q", got, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
			for ns, want := range tc.wantLeft {
				if got := configMaps(t, env, ns); got != want {
					t.Fatalf("got configmaps %q left in %s, want %q", got, ns, want)
				}
			}
		})
	}
}

func TestCreateNamespace(t *testing.T) {
	env := apitest.Start(t)
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "new", args: []string{"create", "namespace", "team-a"}, wantStdout: "namespace/team-a created"},
		{name: "short name", args: []string{"create", "ns", "team-b"}, wantStdout: "namespace/team-b created"},
		{name: "exists", args: []string{"create", "namespace", "default"}, wantCode: 1, wantStderr: `namespaces "default" already exists`},
		{name: "no name", args: []string{"create", "namespace"}, wantCode: 1, wantStderr: "create namespace takes one NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if got := strings.TrimSpace(r.stdout); got != tc.wantStdout {
				t.Fatalf("got stdout %q, want %q", got, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(context.Background(), "team-a", metav1.GetOptions{}); err != nil {
		t.Fatalf("got %v, want namespace team-a to exist", err)
	}
}
