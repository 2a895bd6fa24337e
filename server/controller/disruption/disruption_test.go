package disruption

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller"
)

const wait = 20 * time.Second

// harness is the controller on a fresh API server; the test plays the node
// agent (pod status) and the eviction subresource (disruptedPods).
type harness struct {
	t   *testing.T
	ctx context.Context
	cs  kubernetes.Interface
	c   *Controller
}

// start runs the controller with clk (nil: the real clock).
func start(t *testing.T, clk clock.PassiveClock) *harness {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	c := New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard, Clock: clk})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	return &harness{t: t, ctx: ctx, cs: env.Client, c: c}
}

var web = map[string]string{"app": "web"}

// podSpec says what differs from a Running, Ready pod labelled app=web in
// namespace default.
type podSpec struct {
	name     string
	ns       string
	labels   map[string]string
	phase    corev1.PodPhase
	notReady bool
	owner    *metav1.OwnerReference
}

func (h *harness) createPod(ps podSpec) {
	h.t.Helper()
	if ps.ns == "" {
		ps.ns = "default"
	}
	if ps.labels == nil {
		ps.labels = web
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ps.name, Namespace: ps.ns, Labels: ps.labels},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
	}
	if ps.owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*ps.owner}
	}
	if _, err := h.cs.CoreV1().Pods(ps.ns).Create(h.ctx, p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	if ps.phase == "" {
		ps.phase = corev1.PodRunning
	}
	h.setPodStatus(ps.ns, ps.name, ps.phase, !ps.notReady)
}

func (h *harness) setPodStatus(ns, name string, phase corev1.PodPhase, ready bool) {
	h.t.Helper()
	p, err := h.cs.CoreV1().Pods(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	p.Status.Phase = phase
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: metav1.Now()}}
	if _, err := h.cs.CoreV1().Pods(ns).UpdateStatus(h.ctx, p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: web},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
	}
}

// The owners below are written directly: no workload controller runs, so
// their pods are the ones a test creates.

func (h *harness) createDeployment(name string, replicas int32) *metav1.OwnerReference {
	h.t.Helper()
	d, err := h.cs.AppsV1().Deployments("default").Create(h.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: web}, Template: podTemplate()},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))
}

func (h *harness) createReplicaSet(name string, replicas int32, owner *metav1.OwnerReference) *metav1.OwnerReference {
	h.t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: web}, Template: podTemplate()},
	}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	rs, err := h.cs.AppsV1().ReplicaSets("default").Create(h.ctx, rs, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
}

func (h *harness) createStatefulSet(name string, replicas int32) *metav1.OwnerReference {
	h.t.Helper()
	ss, err := h.cs.AppsV1().StatefulSets("default").Create(h.ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas), ServiceName: name,
			Selector: &metav1.LabelSelector{MatchLabels: web}, Template: podTemplate()},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return metav1.NewControllerRef(ss, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
}

func (h *harness) createReplicationController(name string, replicas int32) *metav1.OwnerReference {
	h.t.Helper()
	tpl := podTemplate()
	rc, err := h.cs.CoreV1().ReplicationControllers("default").Create(h.ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To(replicas), Selector: web, Template: &tpl},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return metav1.NewControllerRef(rc, corev1.SchemeGroupVersion.WithKind("ReplicationController"))
}

// absentOwner is a controller reference to an object that does not exist.
func absentOwner(kind, name string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("absent-" + name), Controller: ptr.To(true)}
}

func (h *harness) createBudget(name string, spec policyv1.PodDisruptionBudgetSpec) {
	h.t.Helper()
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if _, err := h.cs.PolicyV1().PodDisruptionBudgets("default").Create(h.ctx, pdb, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) budget(name string) *policyv1.PodDisruptionBudget {
	h.t.Helper()
	pdb, err := h.cs.PolicyV1().PodDisruptionBudgets("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return pdb
}

// waitBudget waits until check passes on the budget named name.
func (h *harness) waitBudget(name string, check func(*policyv1.PodDisruptionBudget) string) *policyv1.PodDisruptionBudget {
	h.t.Helper()
	var pdb *policyv1.PodDisruptionBudget
	testutil.Eventually(h.t, wait, func() string {
		var err error
		if pdb, err = h.cs.PolicyV1().PodDisruptionBudgets("default").Get(h.ctx, name, metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return check(pdb)
	})
	return pdb
}

// waitCached waits until the controller's cache shows the budget as the
// API server has it, so a direct sync acts on the latest.
func (h *harness) waitCached(name string) {
	h.t.Helper()
	testutil.Eventually(h.t, wait, func() string {
		cur := h.budget(name)
		cached, err := h.c.budgets.PodDisruptionBudgets("default").Get(name)
		if err != nil || cached.ResourceVersion != cur.ResourceVersion {
			return "the cache does not show the latest budget yet"
		}
		return ""
	})
}

// counts are the numbers of a budget's status.
type counts struct{ expected, desired, current, allowed int32 }

func countsOf(pdb *policyv1.PodDisruptionBudget) counts {
	s := pdb.Status
	return counts{expected: s.ExpectedPods, desired: s.DesiredHealthy, current: s.CurrentHealthy, allowed: s.DisruptionsAllowed}
}

// hasStatus checks a budget's counts, the reason of its DisruptionAllowed
// condition, its disruptedPods (by name) and that its status is of its
// current generation.
func hasStatus(want counts, reason string, disrupted ...string) func(*policyv1.PodDisruptionBudget) string {
	return func(pdb *policyv1.PodDisruptionBudget) string {
		if got := countsOf(pdb); got != want {
			return fmt.Sprintf("got %+v, want %+v", got, want)
		}
		cond := apimeta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition)
		wantStatus := metav1.ConditionFalse
		if reason == policyv1.SufficientPodsReason {
			wantStatus = metav1.ConditionTrue
		}
		if cond == nil || cond.Reason != reason || cond.Status != wantStatus {
			return fmt.Sprintf("got conditions %+v, want DisruptionAllowed %s with reason %s", pdb.Status.Conditions, wantStatus, reason)
		}
		if pdb.Status.ObservedGeneration != pdb.Generation || cond.ObservedGeneration != pdb.Generation {
			return fmt.Sprintf("got observedGeneration %d (condition %d), want %d", pdb.Status.ObservedGeneration, cond.ObservedGeneration, pdb.Generation)
		}
		if len(pdb.Status.DisruptedPods) != len(disrupted) {
			return fmt.Sprintf("got disruptedPods %v, want %v", pdb.Status.DisruptedPods, disrupted)
		}
		for _, name := range disrupted {
			if _, ok := pdb.Status.DisruptedPods[name]; !ok {
				return fmt.Sprintf("got disruptedPods %v, want %v", pdb.Status.DisruptedPods, disrupted)
			}
		}
		return ""
	}
}

func minAvailable(v intstr.IntOrString) policyv1.PodDisruptionBudgetSpec {
	return policyv1.PodDisruptionBudgetSpec{MinAvailable: &v, Selector: &metav1.LabelSelector{MatchLabels: web}}
}

func maxUnavailable(v intstr.IntOrString) policyv1.PodDisruptionBudgetSpec {
	return policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &v, Selector: &metav1.LabelSelector{MatchLabels: web}}
}

func readyPods(h *harness, owner *metav1.OwnerReference, names ...string) {
	h.t.Helper()
	for _, name := range names {
		h.createPod(podSpec{name: name, owner: owner})
	}
}

func TestBudgetStatus(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(h *harness)
		spec   policyv1.PodDisruptionBudgetSpec
		want   counts
		reason string
	}{
		{
			name:   "minAvailable count",
			setup:  func(h *harness) { readyPods(h, nil, "a", "b", "c") },
			spec:   minAvailable(intstr.FromInt32(2)),
			want:   counts{expected: 3, desired: 2, current: 3, allowed: 1},
			reason: policyv1.SufficientPodsReason,
		},
		{
			name: "only running ready pods are healthy",
			setup: func(h *harness) {
				readyPods(h, nil, "a")
				h.createPod(podSpec{name: "not-ready", notReady: true})
				h.createPod(podSpec{name: "pending", phase: corev1.PodPending})
				h.createPod(podSpec{name: "succeeded", phase: corev1.PodSucceeded})
				h.createPod(podSpec{name: "other-app", labels: map[string]string{"app": "db"}})
			},
			spec:   minAvailable(intstr.FromInt32(1)),
			want:   counts{expected: 4, desired: 1, current: 1, allowed: 0},
			reason: policyv1.InsufficientPodsReason,
		},
		{
			name: "maxUnavailable counts a Deployment's replicas, not its ReplicaSet's",
			setup: func(h *harness) {
				rs := h.createReplicaSet("web-5d8f", 2, h.createDeployment("web", 3))
				readyPods(h, rs, "web-5d8f-a", "web-5d8f-b")
			},
			spec:   maxUnavailable(intstr.FromInt32(1)),
			want:   counts{expected: 3, desired: 2, current: 2, allowed: 0},
			reason: policyv1.InsufficientPodsReason,
		},
		{
			name:   "minAvailable percentage of a ReplicaSet",
			setup:  func(h *harness) { readyPods(h, h.createReplicaSet("web", 4, nil), "a", "b", "c", "d") },
			spec:   minAvailable(intstr.FromString("50%")),
			want:   counts{expected: 4, desired: 2, current: 4, allowed: 2},
			reason: policyv1.SufficientPodsReason,
		},
		{
			name: "maxUnavailable percentage of a StatefulSet and a pod of its own",
			setup: func(h *harness) {
				readyPods(h, h.createStatefulSet("web", 3), "web-0", "web-1", "web-2")
				readyPods(h, nil, "bare")
			},
			spec:   maxUnavailable(intstr.FromString("25%")), // ceil(0.25 × 4) = 1
			want:   counts{expected: 4, desired: 3, current: 4, allowed: 1},
			reason: policyv1.SufficientPodsReason,
		},
		{
			name:   "minAvailable percentage of a ReplicationController short of pods",
			setup:  func(h *harness) { readyPods(h, h.createReplicationController("web", 3), "a") },
			spec:   minAvailable(intstr.FromString("50%")), // ceil(1.5) = 2
			want:   counts{expected: 3, desired: 2, current: 1, allowed: 0},
			reason: policyv1.InsufficientPodsReason,
		},
		{
			name: "pods of a DaemonSet or of a missing controller count one each",
			setup: func(h *harness) {
				ds := absentOwner("DaemonSet", "agent")
				readyPods(h, ds, "agent-a", "agent-b")
				readyPods(h, absentOwner("ReplicaSet", "gone"), "gone-a")
			},
			spec:   maxUnavailable(intstr.FromInt32(1)),
			want:   counts{expected: 3, desired: 2, current: 3, allowed: 1},
			reason: policyv1.SufficientPodsReason,
		},
		{
			name:   "a nil selector selects nothing",
			setup:  func(h *harness) { readyPods(h, nil, "a", "b") },
			spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(0))},
			want:   counts{},
			reason: policyv1.InsufficientPodsReason,
		},
		{
			name: "an empty selector selects every pod of the namespace",
			setup: func(h *harness) {
				readyPods(h, nil, "a")
				h.createPod(podSpec{name: "db", labels: map[string]string{"app": "db"}})
				h.createPod(podSpec{name: "elsewhere", ns: "kube-system"})
			},
			spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{}},
			want:   counts{expected: 2, desired: 1, current: 2, allowed: 1},
			reason: policyv1.SufficientPodsReason,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil)
			tc.setup(h)
			h.createBudget("budget", tc.spec)
			h.waitBudget("budget", hasStatus(tc.want, tc.reason))
		})
	}
}

func TestBudgetFollowsChanges(t *testing.T) {
	h := start(t, nil)
	readyPods(h, nil, "a", "b", "c")
	h.createBudget("web", minAvailable(intstr.FromInt32(2)))
	h.waitBudget("web", hasStatus(counts{expected: 3, desired: 2, current: 3, allowed: 1}, policyv1.SufficientPodsReason))

	t.Run("a pod turns not ready", func(t *testing.T) {
		h.setPodStatus("default", "c", corev1.PodRunning, false)
		h.waitBudget("web", hasStatus(counts{expected: 3, desired: 2, current: 2, allowed: 0}, policyv1.InsufficientPodsReason))
	})
	var since metav1.Time
	t.Run("the pod is ready again", func(t *testing.T) {
		h.setPodStatus("default", "c", corev1.PodRunning, true)
		pdb := h.waitBudget("web", hasStatus(counts{expected: 3, desired: 2, current: 3, allowed: 1}, policyv1.SufficientPodsReason))
		since = apimeta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition).LastTransitionTime
	})
	t.Run("a new pod leaves the transition time alone", func(t *testing.T) {
		readyPods(h, nil, "d")
		pdb := h.waitBudget("web", hasStatus(counts{expected: 4, desired: 2, current: 4, allowed: 2}, policyv1.SufficientPodsReason))
		if got := apimeta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition).LastTransitionTime; !got.Equal(&since) {
			t.Errorf("got lastTransitionTime %s, want %s (the condition stayed True)", got, since)
		}
	})
	t.Run("a spec change is observed", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pdb := h.budget("web")
			pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(4))
			_, err := h.cs.PolicyV1().PodDisruptionBudgets("default").Update(h.ctx, pdb, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		pdb := h.waitBudget("web", hasStatus(counts{expected: 4, desired: 4, current: 4, allowed: 0}, policyv1.InsufficientPodsReason))
		if pdb.Generation != 2 {
			t.Errorf("got generation %d, want 2", pdb.Generation)
		}
	})
	t.Run("no write when nothing changed", func(t *testing.T) {
		h.waitCached("web")
		before := h.budget("web")
		if err := h.c.sync(h.ctx, "default/web"); err != nil {
			t.Fatal(err)
		}
		if after := h.budget("web"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("got resourceVersion %s after a sync with nothing new, want %s (no write)", after.ResourceVersion, before.ResourceVersion)
		}
	})
	t.Run("a relabelled pod leaves the budget", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := h.cs.CoreV1().Pods("default").Get(h.ctx, "d", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Labels = map[string]string{"app": "db"}
			_, err = h.cs.CoreV1().Pods("default").Update(h.ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		h.waitBudget("web", hasStatus(counts{expected: 3, desired: 4, current: 3, allowed: 0}, policyv1.InsufficientPodsReason))
	})
}

// markDisrupted does what the eviction subresource does when it lets pod
// go: record it in disruptedPods, dated at, and spend one disruption.
func (h *harness) markDisrupted(budget, pod string, at time.Time) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pdb := h.budget(budget)
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[pod] = metav1.NewTime(at)
		pdb.Status.DisruptionsAllowed = max(0, pdb.Status.DisruptionsAllowed-1)
		_, err := h.cs.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(h.ctx, pdb, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func TestDisruptedPods(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	h := start(t, clk)
	readyPods(h, nil, "a", "b", "c", "d")
	h.createBudget("web", minAvailable(intstr.FromInt32(1)))
	h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 4, allowed: 3}, policyv1.SufficientPodsReason))

	t.Run("an evicted pod is not healthy", func(t *testing.T) {
		h.markDisrupted("web", "a", clk.Now())
		h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 3, allowed: 2}, policyv1.SufficientPodsReason, "a"))
	})
	t.Run("the entry runs out when the pod is not deleted", func(t *testing.T) {
		// The controller has asked to look again when the entry runs out.
		testutil.Eventually(t, wait, func() string {
			if !clk.HasWaiters() {
				return "no timer on the fake clock yet"
			}
			return ""
		})
		clk.Step(DeletionTimeout - 5*time.Second)
		h.waitCached("web")
		err := h.c.sync(h.ctx, "default/web")
		var again controller.RequeueAfter
		if !errors.As(err, &again) || again <= 0 || time.Duration(again) > 5*time.Second {
			t.Fatalf("got sync result %v, want to look again within 5s, when the entry runs out", err)
		}
		if msg := hasStatus(counts{expected: 4, desired: 1, current: 3, allowed: 2}, policyv1.SufficientPodsReason, "a")(h.budget("web")); msg != "" {
			t.Fatalf("before the timeout: %s", msg)
		}
		clk.Step(10 * time.Second)
		h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 4, allowed: 3}, policyv1.SufficientPodsReason))
	})
	t.Run("the entry goes once the pod is being deleted", func(t *testing.T) {
		h.markDisrupted("web", "b", clk.Now())
		h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 3, allowed: 2}, policyv1.SufficientPodsReason, "b"))
		if err := h.cs.CoreV1().Pods("default").Delete(h.ctx, "b", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 3, allowed: 2}, policyv1.SufficientPodsReason))
		if p, err := h.cs.CoreV1().Pods("default").Get(h.ctx, "b", metav1.GetOptions{}); err != nil || p.DeletionTimestamp == nil {
			t.Fatalf("got pod b %v (err %v), want it still there, being deleted", p, err)
		}
	})
	t.Run("the entry goes once the pod is gone", func(t *testing.T) {
		h.markDisrupted("web", "c", clk.Now())
		h.waitBudget("web", hasStatus(counts{expected: 4, desired: 1, current: 2, allowed: 1}, policyv1.SufficientPodsReason, "c"))
		if err := h.cs.CoreV1().Pods("default").Delete(h.ctx, "c", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		h.waitBudget("web", hasStatus(counts{expected: 3, desired: 1, current: 2, allowed: 1}, policyv1.SufficientPodsReason))
	})
	t.Run("an entry already past the timeout goes at once", func(t *testing.T) {
		h.markDisrupted("web", "d", clk.Now().Add(-DeletionTimeout-time.Second))
		h.waitBudget("web", hasStatus(counts{expected: 3, desired: 1, current: 2, allowed: 1}, policyv1.SufficientPodsReason))
	})
}
