// Package statefulset runs the pods of every StatefulSet: pods with stable
// names NAME-0 … NAME-(N-1), each with the labels
// statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index, its
// own name as host name and the set's serviceName as subdomain, so that
// DNS can give every pod a stable name.
//
// With podManagementPolicy OrderedReady (the default) pods are created one
// at a time in ordinal order, each only once the one before is Running and
// Ready (and available for minReadySeconds), and on scale-down removed one
// at a time from the highest ordinal, each only once the one above is gone.
// With Parallel, pods are created and deleted all at once.
//
// Each pod carries the controller-revision-hash label, NAME-HASH with HASH
// a hash of the template it was made from; status.updateRevision names the
// current template and status.currentRevision the one the set ran before
// the rollout in progress. With updateStrategy RollingUpdate, pods of other
// revisions with an ordinal at or above the partition are replaced from the
// highest ordinal down, one at a time, each waiting for the one above to be
// Running and Ready; ordinals below the partition keep the current
// revision, and are recreated from it if they go (from the template of a
// pod of that revision, as orch keeps no ControllerRevision objects; when
// no such pod is left, from the new template). With OnDelete, pods are
// replaced only when someone deletes them, and come back with the new
// template.
//
// A StatefulSet pod never runs twice at once. NAME-i is created again only
// after the previous NAME-i object is completely gone from the API, not
// merely marked for deletion: the name is the pod's identity, and the API
// refuses a second object of the same name. A pod being deleted on a node
// that is lost (its agent dead or cut off) therefore stays, Terminating,
// and is replaced only when
//
//   - the node comes back and its agent confirms the containers stopped (it
//     then removes the pod object), or
//   - an operator, knowing the node is really down, force-deletes the pod:
//     orchctl delete pod NAME --grace-period 0 --force, or
//   - an operator deletes the Node object, after which the pod garbage
//     collector force-deletes the pods bound to it.
//
// Failed and Succeeded pods are deleted (the API removes them at once,
// their containers having stopped) and recreated under the same name,
// backing off per ordinal (1 s doubling to 15 min) when they keep failing.
//
// volumeClaimTemplates give each pod its own PersistentVolumeClaims,
// created before the pod and named TEMPLATE-NAME-i as in Kubernetes; the
// pod gets a persistentVolumeClaim volume named after each template. The
// claims survive the pod (a replacement pod reuses them) and, unless
// persistentVolumeClaimRetentionPolicy.whenDeleted is Delete, the set.
package statefulset

import (
	"context"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/server/controller"
)

var statefulSetKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// Workers is the number of StatefulSets synced at once (default 2).
	Workers int
	// FailedPodBackoff is how long a failed pod waits before it is
	// replaced, when the pod it replaced failed too (default 1s, doubling
	// with each failure up to MaxFailedPodBackoff, default 15m). The first
	// failure is replaced at once.
	FailedPodBackoff    time.Duration
	MaxFailedPodBackoff time.Duration
}

// Controller is the StatefulSet control loop.
type Controller struct {
	deps    Deps
	sets    appslisters.StatefulSetLister
	pods    corelisters.PodLister
	claims  corelisters.PersistentVolumeClaimLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	expect  *controller.Expectations
	backoff *flowcontrol.Backoff

	recorder record.EventRecorder
	podCtl   controller.PodControl
}

// New builds the controller and registers its informers on
// deps.Informers; the caller starts the factory.
func New(deps Deps) *Controller {
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Workers <= 0 {
		deps.Workers = 2
	}
	if deps.FailedPodBackoff <= 0 {
		deps.FailedPodBackoff = time.Second
	}
	if deps.MaxFailedPodBackoff <= 0 {
		deps.MaxFailedPodBackoff = 15 * time.Minute
	}
	deps.MaxFailedPodBackoff = max(deps.MaxFailedPodBackoff, deps.FailedPodBackoff)
	setInf := deps.Informers.Apps().V1().StatefulSets()
	podInf := deps.Informers.Core().V1().Pods()
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	c := &Controller{
		deps:    deps,
		sets:    setInf.Lister(),
		pods:    podInf.Lister(),
		claims:  claimInf.Lister(),
		synced:  []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced, claimInf.Informer().HasSynced},
		queue:   controller.NewQueue("statefulset"),
		expect:  controller.NewExpectations(),
		backoff: flowcontrol.NewFakeBackOff(deps.FailedPodBackoff, deps.MaxFailedPodBackoff, deps.Clock),
	}
	// Handlers only enqueue; sync decides from the current state. The
	// registration handles are not needed.
	_, _ = setInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	_, _ = podInf.Informer().AddEventHandler(controller.PodEvents{
		Queue:        c.queue,
		Expectations: c.expect,
		OwnerOf:      c.ownerOf,
		Orphan:       c.matchingOwners,
		// A marked pod keeps its name until it is gone: this loop waits to
		// see the mark before it acts again, and the removal before it
		// makes the pod again.
		MarkedCountsAsCreated: true,
	}.Handler())
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "statefulset-controller")
	defer stop()
	c.recorder = rec
	c.podCtl = controller.PodControl{Client: c.deps.Client, Recorder: rec}
	go wait.Until(c.backoff.GC, time.Minute, ctx.Done())
	loop := &controller.Loop{Name: "statefulset", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := controller.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

// ownerOf resolves a pod's controller reference to the key of a
// StatefulSet this loop manages.
func (c *Controller) ownerOf(ns string, ref *metav1.OwnerReference) (string, bool) {
	if _, ok := controller.ResolveControllerRef(ref, statefulSetKind, c.sets.StatefulSets(ns).Get); !ok {
		return "", false
	}
	return ns + "/" + ref.Name, true
}

// matchingOwners are the keys of the StatefulSets an orphan pod could
// belong to: its name is one of theirs and their selector matches it.
func (c *Controller) matchingOwners(pod *corev1.Pod) []string {
	sets, err := c.sets.StatefulSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, set := range sets {
		if _, ok := ordinalOf(set, pod); !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, set.Namespace+"/"+set.Name)
		}
	}
	return keys
}

// sync brings one StatefulSet's pods in line with its spec, then writes
// its status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation refuses both; such an object is left alone rather
		// than made to own every pod of its namespace.
		c.deps.Logger.Warn("statefulset has an invalid selector; ignoring it", "ns", ns, "statefulset", name, "err", err)
		return nil
	}
	// Checked before reading the caches: what is observed after this point
	// makes the next sync act.
	satisfied := c.expect.Satisfied(key)
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	// Only pods named as members of the set are adopted or kept.
	var members []*corev1.Pod
	for _, p := range all {
		if _, ok := ordinalOf(set, p); ok {
			members = append(members, p)
		}
	}
	owned, err := controller.ClaimPods(ctx, c.deps.Client, set, statefulSetKind, selector, members)
	if err != nil {
		return err
	}
	s := newState(set, key, owned, c.deps.Clock.Now())

	var retry time.Duration
	var syncErr error
	if satisfied && set.DeletionTimestamp == nil {
		retry, syncErr = c.reconcile(ctx, s)
	}
	d, err := c.updateStatus(ctx, s, satisfied)
	retry = sooner(retry, d)
	switch {
	case syncErr != nil:
		return syncErr
	case err != nil:
		return err
	case retry > 0:
		return controller.RequeueAfter(retry)
	}
	return nil
}

// sooner is the shorter of two waits, 0 meaning none.
func sooner(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
