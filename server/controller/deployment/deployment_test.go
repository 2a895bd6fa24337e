package deployment

import (
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

var hashRE = regexp.MustCompile(`^web-[bcdfghjkmnpqrstvwxz2456789]{10}$`)

func TestNewDeploymentCreatesItsReplicaSet(t *testing.T) {
	h := start(t, false)
	d := h.create(newDeployment(3, func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{ChangeCauseAnnotation: "first release"}
		d.Spec.MinReadySeconds = 0
	}))
	h.waitComplete("orch/hello:v1", 3)

	sets := h.replicaSets()
	if len(sets) != 1 {
		t.Fatalf("got replica sets %s, want one", describeSets(sets))
	}
	rs := sets[0]
	hash := rs.Labels[PodTemplateHashLabel]
	if !hashRE.MatchString(rs.Name) || rs.Name != "web-"+hash {
		t.Errorf("got replica set name %q with hash label %q, want web-<10 safe characters> ending in the hash", rs.Name, hash)
	}
	if rs.Spec.Selector.MatchLabels[PodTemplateHashLabel] != hash || rs.Spec.Template.Labels[PodTemplateHashLabel] != hash {
		t.Errorf("got selector %v and template labels %v, want both to carry %s=%s", rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels, PodTemplateHashLabel, hash)
	}
	if ref := metav1.GetControllerOf(&rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" {
		t.Errorf("got controller %+v, want Deployment web", ref)
	}
	wantAnn := map[string]string{RevisionAnnotation: "1", ChangeCauseAnnotation: "first release", AvailableAnnotation: "true",
		DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4"}
	for k, v := range wantAnn {
		if rs.Annotations[k] != v {
			t.Errorf("replica set annotation %s: got %q, want %q", k, rs.Annotations[k], v)
		}
	}
	got := h.get()
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision: got %q, want 1", got.Annotations[RevisionAnnotation])
	}
	if c := getCondition(got.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonMinimumAvailable {
		t.Errorf("got Available condition %+v, want True %s", c, ReasonMinimumAvailable)
	}
	for _, p := range h.activePods() {
		if p.Labels[PodTemplateHashLabel] != hash {
			t.Errorf("pod %s: got labels %v, want %s=%s", p.Name, p.Labels, PodTemplateHashLabel, hash)
		}
	}
	h.waitEvent(ReasonScalingReplicaSet, fmt.Sprintf("Scaled up replica set %s from 0 to 3", rs.Name))
}

func TestScalingActsAtOnce(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(5))
	h.waitComplete("orch/hello:v1", 5)
	rsName := h.replicaSets()[0].Name
	steps := []struct {
		replicas int32
		event    string
	}{
		{10, "Scaled up replica set %s from 5 to 10"},
		{2, "Scaled down replica set %s from 10 to 2"},
		{0, "Scaled down replica set %s from 2 to 0"},
	}
	for _, s := range steps {
		t.Run(fmt.Sprintf("to %d", s.replicas), func(t *testing.T) {
			h.t = t
			sc, err := h.cs.AppsV1().Deployments(ns).GetScale(h.ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sc.Spec.Replicas = s.replicas
			if _, err := h.cs.AppsV1().Deployments(ns).UpdateScale(h.ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			h.waitComplete("orch/hello:v1", s.replicas)
			if sets := h.replicaSets(); len(sets) != 1 || sets[0].Name != rsName {
				t.Fatalf("got replica sets %s, want only %s", describeSets(sets), rsName)
			}
			h.waitEvent(ReasonScalingReplicaSet, fmt.Sprintf(s.event, rsName))
		})
	}
}

// rolloutWatch follows the pods and ReplicaSets of app=web and records the
// fewest available pods and the most replicas wanted at any time.
type rolloutWatch struct {
	mu           sync.Mutex
	synced       bool // states seen while the informers fill are partial
	pods         cache.Store
	sets         cache.Store
	minAvailable int
	maxWanted    int32
}

func watchRollout(h *harness) *rolloutWatch {
	h.t.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(h.cs, 0, informers.WithNamespace(ns))
	podInf, rsInf := f.Core().V1().Pods().Informer(), f.Apps().V1().ReplicaSets().Informer()
	r := &rolloutWatch{pods: podInf.GetStore(), sets: rsInf.GetStore(), minAvailable: 1 << 30}
	observe := func(any) { r.observe() }
	handler := cache.ResourceEventHandlerFuncs{AddFunc: observe, UpdateFunc: func(_, o any) { observe(o) }, DeleteFunc: observe}
	_, _ = podInf.AddEventHandler(handler) // registration handles are not needed
	_, _ = rsInf.AddEventHandler(handler)
	stop := make(chan struct{})
	f.Start(stop)
	h.t.Cleanup(func() { close(stop); f.Shutdown() })
	if !cache.WaitForCacheSync(h.ctx.Done(), podInf.HasSynced, rsInf.HasSynced) {
		h.t.Fatal("rollout watch did not sync")
	}
	r.mu.Lock()
	r.synced = true
	r.mu.Unlock()
	r.observe()
	return r
}

func (r *rolloutWatch) observe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.synced {
		return
	}
	available := 0
	for _, o := range r.pods.List() {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp == nil && testutilReady(p) {
			available++
		}
	}
	var wanted int32
	for _, o := range r.sets.List() {
		wanted += replicasOf(o.(*appsv1.ReplicaSet).Spec.Replicas)
	}
	r.minAvailable = min(r.minAvailable, available)
	r.maxWanted = max(r.maxWanted, wanted)
}

func (r *rolloutWatch) peaks() (int, int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minAvailable, r.maxWanted
}

func testutilReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestRollingUpdateKeepsAvailability(t *testing.T) {
	cases := []struct {
		name                     string
		replicas                 int32
		maxSurge, maxUnavailable intstr.IntOrString
		wantMinAvailable         int
		wantMaxWanted            int32
	}{
		{name: "maxSurge 1 maxUnavailable 1", replicas: 4, maxSurge: intstr.FromInt32(1), maxUnavailable: intstr.FromInt32(1), wantMinAvailable: 3, wantMaxWanted: 5},
		{name: "defaults of 25% round surge up and unavailable down", replicas: 3, maxSurge: intstr.FromString("25%"), maxUnavailable: intstr.FromString("25%"), wantMinAvailable: 3, wantMaxWanted: 4},
		{name: "maxSurge 0 maxUnavailable 2", replicas: 4, maxSurge: intstr.FromInt32(0), maxUnavailable: intstr.FromInt32(2), wantMinAvailable: 2, wantMaxWanted: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, false)
			h.create(newDeployment(tc.replicas, func(d *appsv1.Deployment) {
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(tc.maxSurge), MaxUnavailable: ptr.To(tc.maxUnavailable)}
			}))
			h.waitComplete("orch/hello:v1", tc.replicas)
			r := watchRollout(h)
			h.update(setImage("orch/hello:v2"))
			h.waitComplete("orch/hello:v2", tc.replicas)
			minAvailable, maxWanted := r.peaks()
			if minAvailable < tc.wantMinAvailable {
				t.Errorf("got %d available pods at the lowest, want at least %d", minAvailable, tc.wantMinAvailable)
			}
			if maxWanted > tc.wantMaxWanted {
				t.Errorf("got %d replicas wanted at the most, want at most %d", maxWanted, tc.wantMaxWanted)
			}
			if d := h.get(); d.Annotations[RevisionAnnotation] != "2" {
				t.Errorf("got revision %q, want 2", d.Annotations[RevisionAnnotation])
			}
		})
	}
}

func TestRecreateWaitsForOldPodsToGo(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(3, func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}))
	h.waitComplete("orch/hello:v1", 3)
	h.kubelet.HoldDeletes(true)
	h.update(setImage("orch/hello:v2"))
	testutil.Eventually(t, 10*time.Second, func() string {
		d := h.get()
		if d.Status.ObservedGeneration != d.Generation {
			return "generation not observed yet"
		}
		old := h.rsWithImage("orch/hello:v1")
		if old == nil || replicasOf(old.Spec.Replicas) != 0 {
			return fmt.Sprintf("replica sets %s, want v1 scaled to 0", describeSets(h.replicaSets()))
		}
		if n := len(h.activePods()); n != 0 {
			return fmt.Sprintf("%d pods not terminating", n)
		}
		return ""
	})
	// The old pods are Terminating: nothing new may start beside them.
	if rs := h.rsWithImage("orch/hello:v2"); rs != nil {
		t.Fatalf("got replica set %s for v2 while the old pods still terminate, want none yet", rs.Name)
	}
	h.kubelet.HoldDeletes(false)
	h.waitComplete("orch/hello:v2", 3)
	h.waitEvent(ReasonScalingReplicaSet, fmt.Sprintf("Scaled down replica set %s from 3 to 0", h.rsWithImage("orch/hello:v1").Name))
	h.waitEvent(ReasonScalingReplicaSet, fmt.Sprintf("Scaled up replica set %s from 0 to 3", h.rsWithImage("orch/hello:v2").Name))
}

func TestPauseStopsTheRolloutButNotScaling(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(2))
	h.waitComplete("orch/hello:v1", 2)
	h.update(func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "orch/hello:v2"
	})
	testutil.Eventually(t, 10*time.Second, func() string {
		d := h.get()
		c := getCondition(d.Status, appsv1.DeploymentProgressing)
		if d.Status.ObservedGeneration != d.Generation || c == nil || c.Reason != ReasonPaused || c.Status != corev1.ConditionUnknown {
			return fmt.Sprintf("observed %d of %d, Progressing %+v; want the paused generation observed with Unknown %s", d.Status.ObservedGeneration, d.Generation, c, ReasonPaused)
		}
		return ""
	})
	h.update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](4) })
	testutil.Eventually(t, 10*time.Second, func() string {
		if sets := h.replicaSets(); len(sets) != 1 || replicasOf(sets[0].Spec.Replicas) != 4 || sets[0].Status.AvailableReplicas != 4 {
			return fmt.Sprintf("replica sets %s, want only v1, scaled to 4 while paused", describeSets(sets))
		}
		return ""
	})
	if rs := h.rsWithImage("orch/hello:v2"); rs != nil {
		t.Fatalf("got replica set %s of the new template while paused, want none", rs.Name)
	}
	h.update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	h.waitComplete("orch/hello:v2", 4)
}

func TestCreatedPausedWaitsForResume(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(2, func(d *appsv1.Deployment) { d.Spec.Paused = true }))
	testutil.Eventually(t, 10*time.Second, func() string {
		d := h.get()
		if c := getCondition(d.Status, appsv1.DeploymentProgressing); d.Status.ObservedGeneration != d.Generation || c == nil || c.Reason != ReasonPaused {
			return fmt.Sprintf("status %+v, want generation %d observed and paused", d.Status, d.Generation)
		}
		return ""
	})
	if sets := h.replicaSets(); len(sets) != 0 {
		t.Fatalf("got replica sets %s while paused, want none", describeSets(sets))
	}
	h.update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	h.waitComplete("orch/hello:v1", 2)
}

func TestRevisionHistoryLimit(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(1, func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptr.To[int32](2) }))
	h.waitComplete("orch/hello:v1", 1)
	for v := 2; v <= 5; v++ {
		image := fmt.Sprintf("orch/hello:v%d", v)
		h.update(setImage(image))
		h.waitComplete(image, 1)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		sets := h.replicaSets()
		var revs []string
		for _, rs := range sets {
			revs = append(revs, rs.Annotations[RevisionAnnotation])
		}
		if fmt.Sprint(revs) != "[3 4 5]" {
			return fmt.Sprintf("got revisions %v (%s), want [3 4 5]: the current one and 2 old ones", revs, describeSets(sets))
		}
		return ""
	})
}

func TestAdoptsAMatchingReplicaSet(t *testing.T) {
	h := start(t, false)
	d := newDeployment(3)
	orphan := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-by-hand", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: d.Spec.Selector.DeepCopy(),
			Template: *d.Spec.Template.DeepCopy()},
	}
	if _, err := h.cs.AppsV1().ReplicaSets(ns).Create(h.ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := h.create(d)
	h.waitComplete("orch/hello:v1", 3)
	sets := h.replicaSets()
	if len(sets) != 1 || sets[0].Name != "web-by-hand" {
		t.Fatalf("got replica sets %s, want only the adopted web-by-hand", describeSets(sets))
	}
	if ref := metav1.GetControllerOf(&sets[0]); ref == nil || ref.UID != created.UID {
		t.Fatalf("got controller %+v, want Deployment web", ref)
	}
}

func TestProportionalScalingMidRollout(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(10, func(d *appsv1.Deployment) {
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(3)), MaxUnavailable: ptr.To(intstr.FromInt32(2))}
	}))
	h.waitComplete("orch/hello:v1", 10)
	// A broken rollout stops with old 8 and new 5: 13 pods, 8 available.
	h.update(setImage("orch/broken:v2"))
	testutil.Eventually(t, 10*time.Second, func() string {
		old, cur := h.rsWithImage("orch/hello:v1"), h.rsWithImage("orch/broken:v2")
		if old == nil || cur == nil || replicasOf(old.Spec.Replicas) != 8 || replicasOf(cur.Spec.Replicas) != 5 {
			return fmt.Sprintf("replica sets %s, want v1 at 8 and v2 at 5", describeSets(h.replicaSets()))
		}
		return ""
	})
	// 20 replicas allow 23 pods: 10 more, shared 8:5.
	h.update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](20) })
	testutil.Eventually(t, 10*time.Second, func() string {
		old, cur := h.rsWithImage("orch/hello:v1"), h.rsWithImage("orch/broken:v2")
		if replicasOf(old.Spec.Replicas)+replicasOf(cur.Spec.Replicas) != 23 || replicasOf(old.Spec.Replicas) != 14 || replicasOf(cur.Spec.Replicas) != 9 {
			return fmt.Sprintf("replica sets %s, want v1 at 14 and v2 at 9", describeSets(h.replicaSets()))
		}
		return ""
	})
}

func TestFenceposts(t *testing.T) {
	cases := []struct {
		surge, unavailable intstr.IntOrString
		replicas           int32
		wantSurge, wantU   int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2},
		{intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 0},
		{intstr.FromString("25%"), intstr.FromString("25%"), 4, 1, 1},
		{intstr.FromInt32(0), intstr.FromInt32(0), 3, 0, 1},
		{intstr.FromString("0%"), intstr.FromString("10%"), 5, 0, 1},
		{intstr.FromInt32(2), intstr.FromInt32(5), 3, 2, 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s of %d", tc.surge.String(), tc.unavailable.String(), tc.replicas), func(t *testing.T) {
			d := newDeployment(tc.replicas, func(d *appsv1.Deployment) {
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &tc.surge, MaxUnavailable: &tc.unavailable}}
			})
			if s, u := maxSurge(d), maxUnavailable(d); s != tc.wantSurge || u != tc.wantU {
				t.Errorf("got maxSurge %d maxUnavailable %d, want %d and %d", s, u, tc.wantSurge, tc.wantU)
			}
		})
	}
}

func TestTemplateHash(t *testing.T) {
	a := newDeployment(1).Spec.Template
	b := newDeployment(1, setImage("orch/hello:v2")).Spec.Template
	one := int32(1)
	hashes := map[string]string{
		"template a":                  TemplateHash(&a, nil),
		"template b":                  TemplateHash(&b, nil),
		"template a, collision count": TemplateHash(&a, &one),
	}
	seen := map[string]string{}
	for name, h := range hashes {
		if !regexp.MustCompile(`^[bcdfghjkmnpqrstvwxz2456789]{10}$`).MatchString(h) {
			t.Errorf("%s: got hash %q, want 10 characters of the safe alphabet", name, h)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s: got the same hash %q, want different ones", name, other, h)
		}
		seen[h] = name
	}
	if again := TemplateHash(a.DeepCopy(), nil); again != hashes["template a"] {
		t.Errorf("got hash %q for a copy of template a, want %q", again, hashes["template a"])
	}
	withHash := a.DeepCopy()
	withHash.Labels = withLabel(withHash.Labels, PodTemplateHashLabel, "x")
	if !EqualIgnoreHash(&a, withHash) || EqualIgnoreHash(&a, &b) {
		t.Error("EqualIgnoreHash: got a wrong answer for a template with only a hash label added, or for different images")
	}
}
