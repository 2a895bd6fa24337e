package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: orch/hello:dev
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
`

const settingsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1", b: "2"}
`

func TestApplyThreeWay(t *testing.T) {
	env := apitest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()

	// The same file changes from step to step; each step runs on the
	// state the previous one left.
	v1 := webDeployment + "---\n" + settingsConfigMap
	v2 := strings.NewReplacer(
		`labels: {app: web, tier: front}`, `labels: {app: web}`,
		`env: [{name: A, value: "1"}, {name: B, value: "2"}]`, `env: [{name: A, value: "1"}]`,
		`replicas: 2`, `replicas: 3`,
		`data: {a: "1", b: "2"}`, `data: {a: "1"}`,
	).Replace(v1)
	steps := []struct {
		name     string
		manifest string
		before   func(t *testing.T) // changes made by someone else
		want     []string
		check    func(t *testing.T)
	}{
		{
			name:     "absent objects are created",
			manifest: v1,
			want:     []string{"deployment.apps/web created", "configmap/settings created"},
			check: func(t *testing.T) {
				cm, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var applied map[string]any
				if err := json.Unmarshal([]byte(cm.Annotations[lastAppliedAnnotation]), &applied); err != nil {
					t.Fatalf("got last-applied %q, want the manifest as JSON: %v", cm.Annotations[lastAppliedAnnotation], err)
				}
				if got := applied["data"]; got == nil {
					t.Fatalf("got last-applied %v, want it to hold the data", applied)
				}
			},
		},
		{
			name:     "the same manifest is unchanged",
			manifest: v1,
			want:     []string{"deployment.apps/web unchanged", "configmap/settings unchanged"},
		},
		{
			name:     "changes are configured and removed fields removed",
			manifest: v2,
			want:     []string{"deployment.apps/web configured", "configmap/settings configured"},
			check: func(t *testing.T) {
				d, err := env.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := *d.Spec.Replicas; got != 3 {
					t.Fatalf("got replicas %d, want 3", got)
				}
				if got, ok := d.Labels["tier"]; ok {
					t.Fatalf("got label tier=%s, want it removed", got)
				}
				if got := d.Spec.Template.Spec.Containers[0].Env; len(got) != 1 || got[0].Name != "A" {
					t.Fatalf("got env %v, want only A", got)
				}
				cm, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := cm.Data["b"]; ok || cm.Data["a"] != "1" {
					t.Fatalf("got data %v, want only a=1", cm.Data)
				}
			},
		},
		{
			name:     "fields set by others are kept",
			manifest: v2,
			before: func(t *testing.T) {
				cm, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cm.Data["added-by-ops"] = "yes"
				if _, err := env.Client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"deployment.apps/web unchanged", "configmap/settings unchanged"},
			check: func(t *testing.T) {
				cm, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := cm.Data["added-by-ops"]; got != "yes" {
					t.Fatalf("got added-by-ops=%q, want yes", got)
				}
			},
		},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before(t)
			}
			f := writeFile(t, dir, "app.yaml", st.manifest)
			r := mustSucceed(t, env, "", "apply", "-f", f)
			if got, want := lines(r.stdout), st.want; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("got %q, want %q", got, want)
			}
			if st.check != nil {
				st.check(t)
			}
		})
		if !ok {
			break
		}
	}
}

func TestApplySources(t *testing.T) {
	jsonList := `{"apiVersion": "v1", "kind": "List", "items": [
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}},
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}}]}`
	cases := []struct {
		name  string
		files map[string]string // written into a fresh directory
		args  func(dir string) []string
		stdin string
		want  []string
	}{
		{
			name: "a directory applies its manifests in name order and skips other files",
			files: map[string]string{
				"b.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bee}\n",
				"a.yml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ay}\n",
				"c.json":    `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sea"}}`,
				"notes.txt": "not a manifest",
			},
			args: func(dir string) []string { return []string{"apply", "-f", dir} },
			want: []string{"configmap/ay created", "configmap/bee created", "configmap/sea created"},
		},
		{
			name:  "stdin",
			stdin: "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin}\n---\n# only a comment\n",
			args:  func(string) []string { return []string{"apply", "-f", "-"} },
			want:  []string{"configmap/from-stdin created"},
		},
		{
			name:  "a List is expanded",
			files: map[string]string{"list.json": jsonList},
			args:  func(dir string) []string { return []string{"apply", "-f", dir + "/list.json"} },
			want:  []string{"configmap/one created", "configmap/two created"},
		},
		{
			name: "repeated -f and a stream of JSON objects",
			files: map[string]string{
				"x.json": `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x1"}}
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x2"}}`,
				"y.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: why}\nstringData: {k: v}\n",
			},
			args: func(dir string) []string { return []string{"apply", "-f", dir + "/x.json", "-f", dir + "/y.yaml"} },
			want: []string{"configmap/x1 created", "configmap/x2 created", "secret/why created"},
		},
		{
			name:  "the namespace comes from -n when the manifest has none",
			stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sys}\n",
			args:  func(string) []string { return []string{"apply", "-f", "-", "-n", "kube-system"} },
			want:  []string{"configmap/sys created"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			r := mustSucceed(t, env, tc.stdin, tc.args(dir)...)
			if got := lines(r.stdout); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("the manifest's namespace wins over the config's", func(t *testing.T) {
		env := apitest.Start(t)
		mustSucceed(t, env, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pub, namespace: kube-public}\n", "apply", "-f", "-")
		if _, err := env.Client.CoreV1().ConfigMaps("kube-public").Get(context.Background(), "pub", metav1.GetOptions{}); err != nil {
			t.Fatalf("got %v, want the configmap in kube-public", err)
		}
	})
	t.Run("a manifest namespace that contradicts -n is an error", func(t *testing.T) {
		env := apitest.Start(t)
		r := orchctl(t, env, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pub, namespace: kube-public}\n", "apply", "-f", "-", "-n", "default")
		if r.code != 1 || !strings.Contains(r.stderr, `the manifest says namespace "kube-public" but --namespace says "default"`) {
			t.Fatalf("got %s, want exit 1 naming both namespaces", r)
		}
	})
}

func TestApplyKeepsGoingAfterErrors(t *testing.T) {
	env := apitest.Start(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "mixed.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: x, bogus: 1}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
data: {a: b}
---
: not yaml [
---
apiVersion: v1
kind: ConfigMap
metadata: {name: last}
`)
	r := orchctl(t, env, "", "apply", "-f", f)
	if r.code != 1 {
		t.Fatalf("got exit %d, want 1\n%s", r.code, r)
	}
	if got, want := lines(r.stdout), []string{"configmap/first created", "configmap/last created"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got stdout %q, want %q", got, want)
	}
	wantErrs := []string{
		f + `: document 2 (Pod p): strict decoding error: unknown field "spec.containers[0].bogus"`,
		f + `: document 3 (Widget w): the server doesn't have a resource type for kind "Widget" in apiVersion "example.com/v1"`,
		f + `: document 4 (ConfigMap without a name): metadata.name is not set`,
		f + `: document 5: invalid YAML`,
	}
	errLines := lines(r.stderr)
	if len(errLines) != len(wantErrs) {
		t.Fatalf("got %d error lines, want %d\n%s", len(errLines), len(wantErrs), r.stderr)
	}
	for i, want := range wantErrs {
		if !strings.Contains(errLines[i], want) {
			t.Fatalf("error %d: got %q, want it to contain %q", i+1, errLines[i], want)
		}
	}
	if _, err := env.Client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("got %v, want the pod with an unknown field not created", err)
	}
}

func TestApplyRoundTripsGetOutput(t *testing.T) {
	// The image edit must miss the copy of the manifest in the
	// last-applied annotation, which is JSON without spaces.
	imageField := map[string]string{"yaml": "image: orch/hello:", "json": `"image": "orch/hello:`}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			env := apitest.Start(t)
			mustSucceed(t, env, webDeployment, "apply", "-f", "-")
			exported := mustSucceed(t, env, "", "get", "deployment", "web", "-o", format).stdout
			r := mustSucceed(t, env, exported, "apply", "-f", "-")
			if got, want := strings.TrimSpace(r.stdout), "deployment.apps/web unchanged"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			// The exported object, edited, still applies as a change.
			edited := strings.Replace(exported, imageField[format]+"dev", imageField[format]+"v2", 1)
			r = mustSucceed(t, env, edited, "apply", "-f", "-")
			if got, want := strings.TrimSpace(r.stdout), "deployment.apps/web configured"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			d, err := env.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Spec.Template.Spec.Containers[0].Image; got != "orch/hello:v2" {
				t.Fatalf("got image %q, want orch/hello:v2", got)
			}
			// And the original manifest takes the object back.
			r = mustSucceed(t, env, webDeployment, "apply", "-f", "-")
			if got, want := strings.TrimSpace(r.stdout), "deployment.apps/web configured"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// TestApplyValidationErrors checks that the server's validation errors reach
// the user with the document and the field path.
func TestApplyValidationErrors(t *testing.T) {
	env := apitest.Start(t)
	r := orchctl(t, env, strings.Replace(webDeployment, "replicas: 2", "replicas: -1", 1), "apply", "-f", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "spec.replicas") || !strings.Contains(r.stderr, "stdin: document 1 (Deployment web)") {
		t.Fatalf("got %s, want exit 1 naming the document and spec.replicas", r)
	}
}

func TestApplyFlagErrors(t *testing.T) {
	env := apitest.Start(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "no -f", args: []string{"apply"}, want: "--filename/-f is required"},
		{name: "bad --validate", args: []string{"apply", "-f", "-", "--validate", "maybe"}, want: `--validate "maybe": want strict, warn or ignore`},
		{name: "missing file", args: []string{"apply", "-f", "/nonexistent/x.yaml"}, want: "/nonexistent/x.yaml: stat /nonexistent/x.yaml: no such file or directory"},
		{name: "arguments", args: []string{"apply", "x.yaml"}, want: "apply takes no arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", tc.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("got %s, want exit 1 and %q", r, tc.want)
			}
		})
	}
}

// A last-applied record written by another client may carry
// server-owned fields; apply must not try to delete them (a patch that
// removes metadata.resourceVersion fails as a conflict).
func TestApplyIgnoresServerFieldsInTheRecord(t *testing.T) {
	env := apitest.Start(t)
	record := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"rec","namespace":"default","resourceVersion":"1","uid":"x"},"data":{"a":"1"},"status":{}}`
	_, err := env.Client.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "rec", Annotations: map[string]string{lastAppliedAnnotation: record}},
		Data:       map[string]string{"a": "1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		manifest string
		want     string
	}{
		{name: "same content", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rec}\ndata: {a: '1'}\n", want: "configmap/rec configured"},
		{name: "then unchanged", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rec}\ndata: {a: '1'}\n", want: "configmap/rec unchanged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustSucceed(t, env, tc.manifest, "apply", "-f", "-")
			if got := strings.TrimSpace(r.stdout); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
