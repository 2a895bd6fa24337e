package api

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
			},
		},
	}
}

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
	}
}

func TestCreateGetUpdateConflict(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	cms := e.client.CoreV1().ConfigMaps("default")

	created, err := cms.Create(c, configMap("settings", map[string]string{"a": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() || created.Namespace != "default" {
		t.Fatalf("got %+v, want uid, resourceVersion, creationTimestamp and namespace set", created.ObjectMeta)
	}
	got, err := cms.Get(c, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != created.ResourceVersion || got.Data["a"] != "1" {
		t.Fatalf("got %+v, want what was created", got)
	}

	t.Run("duplicate create is AlreadyExists", func(t *testing.T) {
		_, err := cms.Create(c, configMap("settings", nil), metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			t.Fatalf("got %v, want AlreadyExists", err)
		}
	})

	t.Run("update with the current resourceVersion", func(t *testing.T) {
		got.Data["a"] = "2"
		upd, err := cms.Update(c, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if upd.ResourceVersion == got.ResourceVersion || upd.UID != created.UID || !upd.CreationTimestamp.Equal(&created.CreationTimestamp) {
			t.Fatalf("got %+v, want a new resourceVersion and the same uid and creationTimestamp", upd.ObjectMeta)
		}
	})

	t.Run("update with a stale resourceVersion is a Conflict", func(t *testing.T) {
		stale := created.DeepCopy()
		stale.Data["a"] = "stale"
		_, err := cms.Update(c, stale, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			t.Fatalf("got %v, want Conflict", err)
		}
	})

	t.Run("an unchanged update keeps the resourceVersion", func(t *testing.T) {
		cur, _ := cms.Get(c, "settings", metav1.GetOptions{})
		same, err := cms.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if same.ResourceVersion != cur.ResourceVersion {
			t.Fatalf("got resourceVersion %s, want %s unchanged", same.ResourceVersion, cur.ResourceVersion)
		}
	})

	t.Run("get of a missing object is NotFound", func(t *testing.T) {
		_, err := cms.Get(c, "nope", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `configmaps "nope" not found`) {
			t.Fatalf("got %v, want NotFound naming the object", err)
		}
	})

	t.Run("create in a missing namespace is NotFound", func(t *testing.T) {
		_, err := e.client.CoreV1().ConfigMaps("ghost").Create(c, configMap("x", nil), metav1.CreateOptions{})
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "ghost") {
			t.Fatalf("got %v, want NotFound for namespace ghost", err)
		}
	})

	t.Run("generateName", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}
		a, err := cms.Create(c, cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := cms.Create(c, cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.Name, "gen-") || len(a.Name) != len("gen-")+5 || a.Name == b.Name {
			t.Fatalf("got names %q and %q, want two distinct gen-XXXXX", a.Name, b.Name)
		}
	})

	t.Run("resourceVersion on create is refused", func(t *testing.T) {
		cm := configMap("with-rv", nil)
		cm.ResourceVersion = "5"
		if _, err := cms.Create(c, cm, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
			t.Fatalf("got %v, want BadRequest", err)
		}
	})

	t.Run("dry run stores nothing", func(t *testing.T) {
		if _, err := cms.Create(c, configMap("dry", nil), metav1.CreateOptions{DryRun: []string{"All"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Get(c, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
}

func TestGenerationStatusAndScale(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	deps := e.client.AppsV1().Deployments("default")
	d := deployment("web", 2)
	d.Status.Replicas = 9 // a create may not set status
	created, err := deps.Create(c, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Generation != 1 || created.Status.Replicas != 0 {
		t.Fatalf("got generation %d status %+v, want 1 and empty status", created.Generation, created.Status)
	}

	t.Run("label change keeps the generation", func(t *testing.T) {
		cur, _ := deps.Get(c, "web", metav1.GetOptions{})
		cur.Labels = map[string]string{"tier": "front"}
		upd, err := deps.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if upd.Generation != 1 {
			t.Fatalf("got generation %d, want 1", upd.Generation)
		}
	})

	t.Run("spec change bumps the generation; status in an update is ignored", func(t *testing.T) {
		cur, _ := deps.Get(c, "web", metav1.GetOptions{})
		cur.Spec.Template.Spec.Containers[0].Image = "orch/hello:v2"
		cur.Status.Replicas = 7
		upd, err := deps.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if upd.Generation != 2 || upd.Status.Replicas != 0 {
			t.Fatalf("got generation %d status.replicas %d, want 2 and 0", upd.Generation, upd.Status.Replicas)
		}
	})

	t.Run("status update changes only status", func(t *testing.T) {
		cur, _ := deps.Get(c, "web", metav1.GetOptions{})
		cur.Status.Replicas = 2
		cur.Status.ObservedGeneration = cur.Generation
		cur.Spec.Replicas = ptr.To(int32(50))
		upd, err := deps.UpdateStatus(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if upd.Status.Replicas != 2 || *upd.Spec.Replicas != 2 || upd.Generation != 2 {
			t.Fatalf("got status.replicas %d spec.replicas %d generation %d, want 2 2 2", upd.Status.Replicas, *upd.Spec.Replicas, upd.Generation)
		}
	})

	t.Run("scale subresource", func(t *testing.T) {
		sc, err := deps.GetScale(c, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Spec.Replicas != 2 || sc.Status.Replicas != 2 || sc.Status.Selector != "app=web" {
			t.Fatalf("got %+v, want spec 2 status 2 selector app=web", sc)
		}
		sc.Spec.Replicas = 5
		if _, err := deps.UpdateScale(c, "web", sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		cur, _ := deps.Get(c, "web", metav1.GetOptions{})
		if *cur.Spec.Replicas != 5 || cur.Generation != 3 {
			t.Fatalf("got replicas %d generation %d, want 5 and 3", *cur.Spec.Replicas, cur.Generation)
		}
		if _, err := deps.Patch(c, "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}, "scale"); err != nil {
			t.Fatal(err)
		}
		if sc, _ := deps.GetScale(c, "web", metav1.GetOptions{}); sc.Spec.Replicas != 1 {
			t.Fatalf("scale patch: got %d replicas, want 1", sc.Spec.Replicas)
		}
		sc, _ = deps.GetScale(c, "web", metav1.GetOptions{})
		sc.Spec.Replicas = -1
		if _, err := deps.UpdateScale(c, "web", sc, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid for negative replicas", err)
		}
	})
}

func TestPatchTypes(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	deps := e.client.AppsV1().Deployments("default")
	if _, err := deps.Create(c, deployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		pt    types.PatchType
		patch string
		check func(*appsv1.Deployment) string
	}{
		{name: "merge patch", pt: types.MergePatchType, patch: `{"metadata":{"labels":{"a":"b"}}}`,
			check: func(d *appsv1.Deployment) string { return d.Labels["a"] }},
		{name: "strategic merge patch merges containers by name", pt: types.StrategicMergePatchType,
			patch: `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"orch/busybox:dev"}]}}}}`,
			check: func(d *appsv1.Deployment) string {
				names := map[string]bool{}
				for _, c := range d.Spec.Template.Spec.Containers {
					names[c.Name] = true
				}
				return fmt.Sprintf("%d %v %v", len(names), names["app"], names["sidecar"])
			}},
		{name: "json patch", pt: types.JSONPatchType, patch: `[{"op":"replace","path":"/spec/replicas","value":3}]`,
			check: func(d *appsv1.Deployment) string { return fmt.Sprint(*d.Spec.Replicas) }},
	}
	want := []string{"b", "2 true true", "3"}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := deps.Patch(c, "web", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(out); got != want[i] {
				t.Fatalf("got %q, want %q", got, want[i])
			}
		})
	}

	t.Run("a json patch that cannot apply is 422", func(t *testing.T) {
		_, err := deps.Patch(c, "web", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":99}]`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid (422)", err)
		}
	})
	t.Run("a patch with a stale resourceVersion is a Conflict", func(t *testing.T) {
		_, err := deps.Patch(c, "web", types.MergePatchType, []byte(`{"metadata":{"resourceVersion":"1"}}`), metav1.PatchOptions{})
		if !apierrors.IsConflict(err) {
			t.Fatalf("got %v, want Conflict", err)
		}
	})
	t.Run("server-side apply is refused with a clear message", func(t *testing.T) {
		_, err := deps.Patch(c, "web", types.ApplyYAMLPatchType, []byte(`{}`), metav1.PatchOptions{FieldManager: "x"})
		if !apierrors.IsUnsupportedMediaType(err) || !strings.Contains(err.Error(), "server-side apply") {
			t.Fatalf("got %v, want UnsupportedMediaType naming server-side apply", err)
		}
	})
	t.Run("a patch adding an unknown field is refused", func(t *testing.T) {
		_, err := deps.Patch(c, "web", types.MergePatchType, []byte(`{"spec":{"replicaz":3}}`), metav1.PatchOptions{})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.replicaz"`) {
			t.Fatalf("got %v, want BadRequest naming spec.replicaz", err)
		}
	})
}
