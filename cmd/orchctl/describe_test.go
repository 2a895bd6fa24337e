package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDescribe(t *testing.T) {
	env := startWithObjects(t)
	// An event about another object with the same name must not show up.
	_, err := env.Client.CoreV1().Events("default").Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "other"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", UID: "not-the-pod"},
		Type:           corev1.EventTypeWarning, Reason: "Stale", Message: "about an earlier pod of that name",
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		want    []string // regular expressions, in order
		notWant []string
	}{
		{
			name: "pod with its events",
			args: []string{"describe", "pod", "web-1"},
			want: []string{
				`(?m)^Name:\s+web-1$`, `(?m)^Namespace:\s+default$`, `(?m)^Labels:\s+app=web$`, `(?m)^Annotations:\s+<none>$`,
				`(?m)^Created:\s+\w{3}, `, `(?m)^IP:\s+10\.42\.0\.5$`, `(?m)^Status:\s+Running$`,
				`(?m)^Containers:$`, `(?m)^  c:$`, `(?m)^    Image:\s+orch/hello:dev$`, `(?m)^    State:\s+Running$`,
				`(?m)^    Ready:\s+True$`, `(?m)^    Restart Count:\s+0$`,
				`(?m)^Events:$`, `(?m)^  Type\s+Reason\s+Age\s+From\s+Message$`,
				`(?m)^  Normal\s+Started\s+\d+s\s+orch-agent, n1\s+Started container c$`,
			},
			notWant: []string{"Stale"},
		},
		{
			name: "object without events",
			args: []string{"describe", "cm", "settings"},
			want: []string{`(?m)^Name:\s+settings$`, `(?m)^Data:$`, `(?m)^  a:$`, `(?m)^    1$`, `(?m)^Events:\s+<none>$`},
		},
		{
			name: "deployment",
			args: []string{"describe", "deployment/web"},
			want: []string{
				`(?m)^Selector:\s+app=web$`, `(?m)^Replicas:\s+2 desired \| 2 updated \| 2 total \| 1 available \| 0 unavailable$`,
				`(?m)^Pod Template:$`, `(?m)^    web:$`, `(?m)^      Image:\s+orch/hello:dev$`,
			},
		},
		{
			name: "service",
			args: []string{"describe", "svc", "web"},
			want: []string{
				`(?m)^Type:\s+NodePort$`, `(?m)^IP:\s+10\.43\.0\.10$`, `(?m)^Port:\s+http 80/TCP$`, `(?m)^TargetPort:\s+8080/TCP$`,
				`(?m)^NodePort:\s+30080/TCP$`, `(?m)^Selector:\s+app=web$`,
			},
		},
		{
			name: "generic view of spec and status",
			args: []string{"describe", "namespace", "kube-system"},
			want: []string{`(?m)^Name:\s+kube-system$`, `(?m)^Status:$`, `(?m)^  phase: Active$`},
		},
		{
			name: "every object of a kind",
			args: []string{"describe", "pods", "-l", "app=crash"},
			want: []string{`(?m)^Name:\s+crash$`, `(?m)^Status:\s+CrashLoopBackOff$`, `(?m)^      Reason:\s+CrashLoopBackOff$`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustSucceed(t, env, "", tc.args...)
			rest := r.stdout
			for _, w := range tc.want {
				loc := regexp.MustCompile(w).FindStringIndex(rest)
				if loc == nil {
					t.Fatalf("got:\n%s\nwant a match for %s after the previous ones", r.stdout, w)
				}
				rest = rest[loc[1]:]
			}
			for _, nw := range tc.notWant {
				if strings.Contains(r.stdout, nw) {
					t.Fatalf("got:\n%s\nwant no %q", r.stdout, nw)
				}
			}
		})
	}
	t.Run("missing object", func(t *testing.T) {
		r := orchctl(t, env, "", "describe", "pod", "nope")
		if r.code != 1 || !strings.Contains(r.stderr, `pods "nope" not found`) {
			t.Fatalf("got %s, want exit 1 and the NotFound message", r)
		}
	})
}
