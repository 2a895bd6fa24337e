// Package disruption keeps the status of every PodDisruptionBudget: how
// many of the pods it selects are healthy (currentHealthy), how many must
// stay so (desiredHealthy), how many pods there should be (expectedPods),
// and from these how many may be disrupted now (disruptionsAllowed), which
// the eviction subresource spends one at a time.
//
// A budget selects the pods of its namespace that its selector matches: a
// nil selector selects none, an empty one all of them. A pod is healthy
// when it is Running, Ready and not being deleted. desiredHealthy is
// minAvailable as a count, or as a percentage of expectedPods (rounded
// up), or expectedPods less maxUnavailable (a count, or a percentage of
// expectedPods rounded up). expectedPods is the number of selected pods
// when minAvailable is a count; otherwise it is the scale of the pods'
// controllers: a ReplicaSet counts its Deployment's replicas when a
// Deployment controls it and its own otherwise, and a ReplicationController
// or StatefulSet its replicas, each controller once. Pods without a
// controller, or whose controller is gone, count one each. Unlike
// Kubernetes, which refuses to compute such a budget, pods whose
// controller is of another kind (a DaemonSet, a Job) also count one each:
// those controllers have no replica count to read.
//
// The eviction subresource writes status.disruptedPods (pod name → time)
// when it lets a pod go, just before deleting it. Such a pod no longer
// counts as healthy, so the disruption it took is not granted again while
// the pod is still on its way out. Its entry is dropped once the pod is
// gone or being deleted, or after DeletionTimeout if the delete never came
// (the eviction failed); the budget is synced again when the oldest entry
// runs out.
//
// Status is written through the status subresource only when it changes,
// guarded by the resourceVersion the informer shows, so a disruptedPods
// entry written meanwhile is never lost.
package disruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/server/controller"
)

// DeletionTimeout is how long an entry of status.disruptedPods stands for
// a pod that is neither gone nor being deleted: past it, the eviction that
// wrote the entry is taken to have failed, and the pod counts again.
const DeletionTimeout = 2 * time.Minute

// Event reasons; the first two are those of Kubernetes' disruption
// controller.
const (
	reasonNoPods            = "NoPods"
	reasonCalculationFailed = "CalculateExpectedPodCountFailed"
	reasonInvalidSelector   = "InvalidSelector"
)

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	// Clock dates condition transitions and ages disruptedPods entries
	// (default: the real clock). When it is also a clock.Clock, as the
	// real clock and the testing fake are, the budget is synced again on
	// it when its oldest entry runs out.
	Clock clock.PassiveClock
}

// Controller is the PodDisruptionBudget status control loop.
type Controller struct {
	deps         Deps
	budgets      policylisters.PodDisruptionBudgetLister
	pods         corelisters.PodLister
	rcs          corelisters.ReplicationControllerLister
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]
	written      *controller.WrittenVersions
	recorder     record.EventRecorder
}

// New builds the controller and registers its informers on deps.Informers.
func New(deps Deps) *Controller {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	queueClock, ok := deps.Clock.(clock.Clock)
	if !ok {
		queueClock = clock.RealClock{}
	}
	pdbInf := deps.Informers.Policy().V1().PodDisruptionBudgets()
	podInf := deps.Informers.Core().V1().Pods()
	rcInf := deps.Informers.Core().V1().ReplicationControllers()
	rsInf := deps.Informers.Apps().V1().ReplicaSets()
	dInf := deps.Informers.Apps().V1().Deployments()
	ssInf := deps.Informers.Apps().V1().StatefulSets()
	c := &Controller{
		deps:         deps,
		budgets:      pdbInf.Lister(),
		pods:         podInf.Lister(),
		rcs:          rcInf.Lister(),
		replicaSets:  rsInf.Lister(),
		deployments:  dInf.Lister(),
		statefulSets: ssInf.Lister(),
		synced: []cache.InformerSynced{pdbInf.Informer().HasSynced, podInf.Informer().HasSynced, rcInf.Informer().HasSynced,
			rsInf.Informer().HasSynced, dInf.Informer().HasSynced, ssInf.Informer().HasSynced},
		queue:   controller.NewClockedQueue("disruption", queueClock),
		written: controller.NewWrittenVersions(),
	}
	// Handlers only enqueue; sync decides from the listers. The informers
	// of the pods' controllers are there for their listers: a change of
	// scale is not watched, as it makes pods come and go.
	_, _ = pdbInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, "")) // registration handles are not needed
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePodBudgets(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			c.enqueuePodBudgets(newObj)
			o, okOld := oldObj.(*corev1.Pod)
			n, okNew := newObj.(*corev1.Pod)
			if okOld && okNew && !maps.Equal(o.Labels, n.Labels) {
				c.enqueuePodBudgets(oldObj)
			}
		},
		DeleteFunc: func(obj any) { c.enqueuePodBudgets(obj) },
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "controllermanager")
	defer stop()
	c.recorder = rec
	loop := &controller.Loop{Name: "disruption", Queue: c.queue, Sync: c.sync, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

// enqueuePodBudgets queues the budgets of the pod's namespace whose
// selector matches the pod's labels.
func (c *Controller) enqueuePodBudgets(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	pdbs, err := c.budgets.PodDisruptionBudgets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	set := labels.Set(pod.Labels)
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(set) {
			continue // a bad selector is reported by the budget's own sync
		}
		c.queue.Add(pdb.Namespace + "/" + pdb.Name)
	}
}

// sync makes the status of one budget what its pods say.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	pdb, err := c.budgets.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.written.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if c.written.Stale(key, pdb) {
		return nil // the informer still shows what preceded our last write; its update queues the budget again
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, reasonInvalidSelector, "Invalid selector: %v", err)
		return c.failSafe(ctx, key, pdb, fmt.Errorf("selector: %w", err))
	}
	pods, err := c.pods.Pods(ns).List(sel)
	if err != nil {
		return fmt.Errorf("list pods of poddisruptionbudget %s: %w", key, err)
	}
	if len(pods) == 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeNormal, reasonNoPods, "No matching pods found")
	}
	expected, desired, err := c.counts(&pdb.Spec, pods)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, reasonCalculationFailed, "Failed to calculate the number of expected pods: %v", err)
		return c.failSafe(ctx, key, pdb, err)
	}
	now := c.deps.Clock.Now()
	disrupted, recheck := c.keepDisrupted(pdb, pods, now)
	healthy := countHealthy(pods, disrupted)
	allowed := healthy - desired
	if expected <= 0 || allowed < 0 {
		allowed = 0
	}

	next := pdb.DeepCopy()
	next.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptedPods:      disrupted,
		DisruptionsAllowed: allowed,
		CurrentHealthy:     healthy,
		DesiredHealthy:     desired,
		ExpectedPods:       expected,
		Conditions:         next.Status.Conditions,
	}
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse, Reason: policyv1.InsufficientPodsReason}
	if allowed > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	c.setCondition(next, cond, now)
	if err := c.writeStatus(ctx, key, pdb, next); err != nil {
		return err
	}
	if recheck > 0 {
		return controller.RequeueAfter(recheck)
	}
	return nil
}

// failSafe allows no disruption for a budget whose status cannot be
// computed, as Kubernetes does, leaving the rest of its status (and so its
// observedGeneration) as it was. The cause is in the condition's message;
// there is nothing to retry until the budget changes.
func (c *Controller) failSafe(ctx context.Context, key string, pdb *policyv1.PodDisruptionBudget, cause error) error {
	next := pdb.DeepCopy()
	next.Status.DisruptionsAllowed = 0
	c.setCondition(next, metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.SyncFailedReason, Message: cause.Error()}, c.deps.Clock.Now())
	return c.writeStatus(ctx, key, pdb, next)
}

// setCondition sets cond on next, keeping its lastTransitionTime when its
// status does not change.
func (c *Controller) setCondition(next *policyv1.PodDisruptionBudget, cond metav1.Condition, now time.Time) {
	cond.ObservedGeneration = next.Status.ObservedGeneration
	cond.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second)) // the resolution the wire keeps
	apimeta.SetStatusCondition(&next.Status.Conditions, cond)
}

// writeStatus writes next's status if it differs from cur's. The write
// carries the resourceVersion the informer showed, so it never overwrites
// what someone wrote meanwhile (a disruptedPods entry of an eviction); on
// a conflict, the newer budget is on its way to the informer, whose update
// queues the budget again.
func (c *Controller) writeStatus(ctx context.Context, key string, cur, next *policyv1.PodDisruptionBudget) error {
	if apiequality.Semantic.DeepEqual(cur.Status, next.Status) {
		return nil
	}
	out, err := c.deps.Client.PolicyV1().PodDisruptionBudgets(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("update status of poddisruptionbudget %s: %w", key, err)
	}
	c.written.Record(key, out)
	return nil
}

// counts are the expectedPods and desiredHealthy of a budget over the pods
// it selects.
func (c *Controller) counts(spec *policyv1.PodDisruptionBudgetSpec, pods []*corev1.Pod) (expected, desired int32, err error) {
	switch {
	case spec.MaxUnavailable != nil:
		if expected, err = c.controllersScale(pods); err != nil {
			return 0, 0, err
		}
		unavailable, err := scaled(*spec.MaxUnavailable, expected)
		if err != nil {
			return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
		}
		return expected, max(0, expected-unavailable), nil
	case spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.Int:
		desired, err := scaled(*spec.MinAvailable, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("minAvailable: %w", err)
		}
		return int32(min(len(pods), math.MaxInt32)), desired, nil
	case spec.MinAvailable != nil:
		if expected, err = c.controllersScale(pods); err != nil {
			return 0, 0, err
		}
		desired, err := scaled(*spec.MinAvailable, expected)
		if err != nil {
			return 0, 0, fmt.Errorf("minAvailable: %w", err)
		}
		return expected, desired, nil
	}
	return 0, 0, errors.New("neither minAvailable nor maxUnavailable is set")
}

// scaled is v as a count: itself if it is an integer, or a percentage of
// total rounded up.
func scaled(v intstr.IntOrString, total int32) (int32, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, int(total), true)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative", v.String())
	}
	return int32(min(n, math.MaxInt32)), nil
}

// controllersScale is the number of pods the controllers of pods want:
// each controller's scale once, and one for each pod without a controller
// whose scale is known (see the package comment).
func (c *Controller) controllersScale(pods []*corev1.Pod) (int32, error) {
	seen := map[types.UID]bool{}
	var total int64
	for _, pod := range pods {
		uid, scale, ok, err := c.controllerScale(pod)
		if err != nil {
			return 0, fmt.Errorf("controller of pod %s: %w", pod.Name, err)
		}
		switch {
		case !ok:
			total++
		case !seen[uid]:
			seen[uid] = true
			total += int64(scale)
		}
	}
	return int32(min(total, math.MaxInt32)), nil
}

// controllerScale is the UID and scale of the controller whose replicas pod
// counts toward; ok is false when the pod counts by itself.
func (c *Controller) controllerScale(pod *corev1.Pod) (uid types.UID, scale int32, ok bool, err error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return "", 0, false, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", 0, false, nil // a reference to nothing this loop reads
	}
	ns := pod.Namespace
	switch {
	case gv.Group == "apps" && ref.Kind == "ReplicaSet":
		rs, err := c.replicaSets.ReplicaSets(ns).Get(ref.Name)
		if ok, err := found(err, rs, ref); !ok {
			return "", 0, false, err
		}
		if dref := metav1.GetControllerOfNoCopy(rs); dref != nil && dref.Kind == "Deployment" && groupOf(dref) == "apps" {
			d, err := c.deployments.Deployments(ns).Get(dref.Name)
			ok, err := found(err, d, dref)
			if err != nil {
				return "", 0, false, err
			}
			if ok {
				return d.UID, replicas(d.Spec.Replicas), true, nil
			}
			// The Deployment is gone: the ReplicaSet's own scale stands.
		}
		return rs.UID, replicas(rs.Spec.Replicas), true, nil
	case gv.Group == "" && ref.Kind == "ReplicationController":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if ok, err := found(err, rc, ref); !ok {
			return "", 0, false, err
		}
		return rc.UID, replicas(rc.Spec.Replicas), true, nil
	case gv.Group == "apps" && ref.Kind == "StatefulSet":
		ss, err := c.statefulSets.StatefulSets(ns).Get(ref.Name)
		if ok, err := found(err, ss, ref); !ok {
			return "", 0, false, err
		}
		return ss.UID, replicas(ss.Spec.Replicas), true, nil
	}
	return "", 0, false, nil
}

// found reports whether a lister's Get (obj, err) found the object ref
// names, with its UID; not found is not an error.
func found(err error, obj metav1.Object, ref *metav1.OwnerReference) (bool, error) {
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return obj.GetUID() == ref.UID, nil
}

func groupOf(ref *metav1.OwnerReference) string {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// replicas is a spec.replicas, defaulted as the API does.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return max(0, *r)
}

// keepDisrupted is the disruptedPods map of pdb without the entries that
// are done: the pod is gone (no longer selected) or being deleted, or the
// entry is DeletionTimeout old. recheck is how long until the oldest kept
// entry runs out (0 for none).
func (c *Controller) keepDisrupted(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (kept map[string]metav1.Time, recheck time.Duration) {
	if len(pdb.Status.DisruptedPods) == 0 {
		return nil, 0
	}
	for _, pod := range pods {
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok || pod.DeletionTimestamp != nil {
			continue
		}
		left := at.Add(DeletionTimeout).Sub(now)
		if left <= 0 {
			c.deps.Logger.Info("evicted pod was not deleted in time; it counts again", "ns", pod.Namespace, "pod", pod.Name,
				"pdb", pdb.Name, "evicted", at.Time)
			continue
		}
		if kept == nil {
			kept = map[string]metav1.Time{}
		}
		kept[pod.Name] = at
		if recheck == 0 || left < recheck {
			recheck = left
		}
	}
	return kept, recheck
}

// countHealthy counts the pods that are Running, Ready, not being deleted
// and not disrupted.
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !controller.IsPodReady(pod) {
			continue
		}
		if _, ok := disrupted[pod.Name]; ok {
			continue
		}
		n++
	}
	return n
}
