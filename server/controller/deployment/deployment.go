// Package deployment is the Deployment control loop. A Deployment runs its
// pods through ReplicaSets, one per version of its pod template: the
// ReplicaSet of the current template (the "new" one, named
// DEPLOYMENT-<pod-template-hash>) is scaled up while the others (the "old"
// ones) are scaled down, within the strategy's budget — RollingUpdate keeps
// at least replicas-maxUnavailable pods available and at most
// replicas+maxSurge pods in total; Recreate scales the old ReplicaSets to
// zero, waits for their pods to be gone, then scales the new one up.
//
// Each template version is a revision, numbered by the annotation
// deployment.kubernetes.io/revision on its ReplicaSet; revisionHistoryLimit
// old ReplicaSets scaled to zero are kept for rollbacks. The status carries
// the replica counts and the Available and Progressing conditions; a
// rollout that makes no progress for progressDeadlineSeconds is marked
// Progressing=False, reason ProgressDeadlineExceeded.
//
// orch adds one thing Kubernetes does not do: a rollout that passes its
// progress deadline is rolled back automatically to the newest revision that
// was ever fully available (marked by the annotation orch.dev/available on
// its ReplicaSet), unless the Deployment carries the annotation
// orch.dev/auto-rollback: "false". A revision that was itself fully
// available is never rolled back from, so a rollback cannot loop.
//
// The loop follows the Kubernetes deployment controller: event handlers only
// enqueue Deployment keys, and one level-based sync reconciles a Deployment
// from the listers. It needs no expectations: ReplicaSet names are
// deterministic and every write is guarded by a resourceVersion, so acting
// on a stale cache ends in a conflict and a retry, never a duplicate.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/server/controller"
)

// Annotations and labels the controller reads and writes.
const (
	// RevisionAnnotation numbers the revision of a ReplicaSet; on the
	// Deployment it is the revision of the current template.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// RevisionHistoryAnnotation lists, on a ReplicaSet, the revision
	// numbers it had before a rollback made it current again.
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	// DesiredReplicasAnnotation and MaxReplicasAnnotation record, on a
	// ReplicaSet, the Deployment's replicas and replicas+maxSurge when the
	// controller last scaled it; they drive proportional scaling.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	// ChangeCauseAnnotation says why a revision was made; it is copied
	// from the Deployment to the ReplicaSet of the revision.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	// PodTemplateHashLabel tells the pods of one revision from the others.
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

	// AvailableAnnotation ("true") marks a ReplicaSet whose revision had
	// all the Deployment's replicas available as the new ReplicaSet: a
	// revision automatic rollback may go back to.
	AvailableAnnotation = "orch.dev/available"
	// AutoRollbackAnnotation "false" on a Deployment turns automatic
	// rollback off for it.
	AutoRollbackAnnotation = "orch.dev/auto-rollback"
	// AutoRolledBackFromAnnotation and AutoRolledBackToAnnotation record,
	// on a Deployment, the revision an automatic rollback left and the one
	// it went back to (numbered as before the rollback), and
	// AutoRollbackReasonAnnotation says why. orchctl rollout status reads
	// them. A new revision clears them.
	AutoRolledBackFromAnnotation = "orch.dev/auto-rolled-back-from"
	AutoRolledBackToAnnotation   = "orch.dev/auto-rolled-back-to"
	AutoRollbackReasonAnnotation = "orch.dev/auto-rollback-reason"

	lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
	rollbackToAnnotation  = "deprecated.deployment.rollback.to"
)

// Event reasons recorded on Deployments.
const (
	ReasonScalingReplicaSet  = "ScalingReplicaSet"
	ReasonDeploymentRollback = "DeploymentRollback"
	ReasonAutoRollback       = "AutoRollback"
	ReasonSelectingAll       = "SelectingAll"
)

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	// Clock decides progress deadlines and condition times; default the
	// real clock.
	Clock clock.Clock
	// Workers is the number of Deployments synced at once (default 5).
	Workers int
	// DisableAutoRollback turns automatic rollback off for every
	// Deployment; by default it is on unless a Deployment opts out.
	DisableAutoRollback bool
}

// Controller is the Deployment control loop.
type Controller struct {
	deps     Deps
	client   kubernetes.Interface
	clock    clock.Clock
	log      *slog.Logger
	dLister  appslisters.DeploymentLister
	rsLister appslisters.ReplicaSetLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
}

// New builds the controller and registers its informers and event handlers
// on deps.Informers; the caller starts the factory.
func New(deps Deps) *Controller {
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Workers <= 0 {
		deps.Workers = 5
	}
	dInf := deps.Informers.Apps().V1().Deployments()
	rsInf := deps.Informers.Apps().V1().ReplicaSets()
	podInf := deps.Informers.Core().V1().Pods()
	c := &Controller{
		deps:     deps,
		client:   deps.Client,
		clock:    deps.Clock,
		log:      deps.Logger.With("controller", "deployment"),
		dLister:  dInf.Lister(),
		rsLister: rsInf.Lister(),
		pods:     podInf.Lister(),
		synced:   []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue:    controller.NewClockedQueue("deployment", deps.Clock),
		// Replaced in Run; events recorded before it are dropped.
		recorder: &record.FakeRecorder{},
	}
	// Handlers only enqueue; sync decides from the current state. The
	// registration handles are not needed: the handlers live as long as
	// the factory.
	_, _ = dInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	_, _ = rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.client, "deployment-controller")
	defer stop()
	c.recorder = rec
	loop := &controller.Loop{Name: "deployment", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.log}
	return loop.Run(ctx, c.synced...)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := controller.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

// deploymentFor resolves a controller reference to the Deployment it names,
// or nil when that Deployment is gone or is another one of the same name.
func (c *Controller) deploymentFor(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != deploymentKind.Kind || ref.APIVersion != deploymentKind.GroupVersion().String() {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// deploymentsMatching lists the Deployments whose selector matches an
// orphan ReplicaSet, which may adopt it.
func (c *Controller) deploymentsMatching(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	if len(rs.Labels) == 0 {
		return nil
	}
	all, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(rs.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (c *Controller) addReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.deploymentFor(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	for _, d := range c.deploymentsMatching(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(oldObj, newObj any) {
	old, ok1 := oldObj.(*appsv1.ReplicaSet)
	cur, ok2 := newObj.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !sameRef(oldRef, curRef)
	if refChanged && oldRef != nil {
		if d := c.deploymentFor(old.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.deploymentFor(cur.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if refChanged || !labels.Equals(old.Labels, cur.Labels) {
		for _, d := range c.deploymentsMatching(cur) {
			c.enqueue(d)
		}
	}
}

func sameRef(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if rs, ok = tomb.Obj.(*appsv1.ReplicaSet); !ok {
			return
		}
	}
	if d := c.deploymentFor(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil {
		c.enqueue(d)
	}
}

// A Recreate rollout waits for the old pods to be gone, so the end of a
// pod (deleted, or finished) wakes its Deployment.
func (c *Controller) updatePod(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.Status.Phase == cur.Status.Phase {
		return
	}
	if cur.Status.Phase == corev1.PodFailed || cur.Status.Phase == corev1.PodSucceeded {
		c.enqueueRecreateOf(cur)
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	c.enqueueRecreateOf(pod)
}

func (c *Controller) enqueueRecreateOf(pod *corev1.Pod) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.deploymentFor(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

// sync reconciles one Deployment: claims its ReplicaSets, then scales
// them (a paused Deployment, or a change of replicas only) or rolls out
// the current template with the Deployment's strategy, and writes the
// status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	cached, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err == nil && d.Spec.Selector == nil {
		err = errors.New("no selector")
	}
	if err != nil {
		// Validation keeps such a Deployment out; nothing can be done
		// with it but say so.
		c.recorder.Eventf(d, corev1.EventTypeWarning, "InvalidSelector", "Invalid selector: %v", err)
		return nil
	}
	if sel.Empty() {
		c.recorder.Eventf(d, corev1.EventTypeWarning, ReasonSelectingAll, "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return c.writeStatus(ctx, d)
		}
		return nil
	}
	rsList, err := c.claimReplicaSets(ctx, d, sel)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.syncScale(ctx, d, rsList)
	}
	scaling, err := c.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return c.syncScale(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		podsByRS, err := c.podsByReplicaSet(d, sel, rsList)
		if err != nil {
			return err
		}
		return c.rolloutRecreate(ctx, d, rsList, podsByRS)
	case appsv1.RollingUpdateDeploymentStrategyType, "":
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("deployment %s/%s: unknown strategy type %q", d.Namespace, d.Name, d.Spec.Strategy.Type)
}

// podsByReplicaSet groups the pods matching the Deployment's selector by
// the ReplicaSet that controls them, for Recreate to tell whether old pods
// still run. Pods being deleted are included: they may still be running.
func (c *Controller) podsByReplicaSet(d *appsv1.Deployment, sel labels.Selector, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	pods, err := c.pods.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	out := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		out[rs.UID] = nil
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if _, ok := out[ref.UID]; ok {
			out[ref.UID] = append(out[ref.UID], p)
		}
	}
	return out, nil
}

// writeStatus writes d's status and takes in what the server returned.
func (c *Controller) writeStatus(ctx context.Context, d *appsv1.Deployment) error {
	out, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	*d = *out
	return nil
}

// writeDeployment writes d (metadata and spec) and takes in what the
// server returned. Status changes in d are not written and are lost.
func (c *Controller) writeDeployment(ctx context.Context, d *appsv1.Deployment) error {
	out, err := c.client.AppsV1().Deployments(d.Namespace).Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	*d = *out
	return nil
}
