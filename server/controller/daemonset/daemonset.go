// Package daemonset runs one pod of every DaemonSet on each node that is
// eligible for it: the node matches the template's nodeSelector and
// required node affinity, and the pod tolerates the node's NoSchedule and
// NoExecute taints. Pods carry the DaemonSet tolerations Kubernetes adds
// (not-ready, unreachable, disk/memory/pid pressure, unschedulable), so a
// cordoned or struggling node keeps its daemon.
//
// The controller binds its pods itself: each pod is created with
// spec.nodeName set, so the scheduler never sees it. A new node gets its
// pod; a node that stops matching the selector or affinity, or gains a
// NoExecute taint the pod does not tolerate, loses it (a new NoSchedule
// taint only keeps new pods away, as in Kubernetes); the pods of a deleted
// Node object are deleted without a grace period, since no agent is left to
// stop them. A node with more than one pod keeps the oldest. Failed pods
// are deleted and recreated, backing off per node (1 s doubling to 15 min)
// when they keep failing.
//
// Each pod carries the controller-revision-hash label, a hash of the
// template it was made from. With updateStrategy RollingUpdate, pods of an
// older template are replaced node by node: with maxUnavailable (an integer
// or a percentage of the eligible nodes, rounded up) old pods are deleted
// first and at most that many eligible nodes are without an available pod;
// with maxSurge the new pod starts next to the old one, which is deleted
// once the new one is available. With OnDelete, pods are replaced only when
// someone deletes them.
package daemonset

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

var daemonSetKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Event reasons this controller records besides the PodControl ones.
const (
	reasonFailedDaemonPod = "FailedDaemonPod"
)

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// Workers is the number of DaemonSets synced at once (default 2).
	Workers int
	// FailedPodBackoff is how long a node's failed daemon pod waits before
	// it is replaced, when the pod it replaced failed too (default 1s,
	// doubling with each failure up to MaxFailedPodBackoff, default 15m).
	// The first failure is replaced at once.
	FailedPodBackoff    time.Duration
	MaxFailedPodBackoff time.Duration
}

// Controller is the DaemonSet control loop.
type Controller struct {
	deps    Deps
	sets    appslisters.DaemonSetLister
	pods    corelisters.PodLister
	nodes   corelisters.NodeLister
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
	dsInf := deps.Informers.Apps().V1().DaemonSets()
	podInf := deps.Informers.Core().V1().Pods()
	nodeInf := deps.Informers.Core().V1().Nodes()
	c := &Controller{
		deps:    deps,
		sets:    dsInf.Lister(),
		pods:    podInf.Lister(),
		nodes:   nodeInf.Lister(),
		synced:  []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue:   controller.NewQueue("daemonset"),
		expect:  controller.NewExpectations(),
		backoff: flowcontrol.NewFakeBackOff(deps.FailedPodBackoff, deps.MaxFailedPodBackoff, deps.Clock),
	}
	// Handlers only enqueue; sync decides from the current state. The
	// registration handles are not needed.
	_, _ = dsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	_, _ = podInf.Informer().AddEventHandler(controller.PodEvents{
		Queue:        c.queue,
		Expectations: c.expect,
		OwnerOf:      c.ownerOf,
		Orphan:       c.matchingOwners,
	}.Handler())
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: c.updateNode,
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "daemonset-controller")
	defer stop()
	c.recorder = rec
	c.podCtl = controller.PodControl{Client: c.deps.Client, Recorder: rec}
	go wait.Until(c.backoff.GC, time.Minute, ctx.Done())
	loop := &controller.Loop{Name: "daemonset", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := controller.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

// enqueueAll queues every DaemonSet: a node came, went or changed in a way
// that may change where daemons run.
func (c *Controller) enqueueAll() {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		c.enqueue(ds)
	}
}

func (c *Controller) updateNode(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	// Status updates (heartbeats, conditions) do not move daemons.
	if labels.Equals(old.Labels, node.Labels) && old.Spec.Unschedulable == node.Spec.Unschedulable &&
		taintsEqual(old.Spec.Taints, node.Spec.Taints) {
		return
	}
	c.enqueueAll()
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Value != b[i].Value || a[i].Effect != b[i].Effect {
			return false
		}
	}
	return true
}

// ownerOf resolves a pod's controller reference to the key of a DaemonSet
// this loop manages.
func (c *Controller) ownerOf(ns string, ref *metav1.OwnerReference) (string, bool) {
	if _, ok := controller.ResolveControllerRef(ref, daemonSetKind, c.sets.DaemonSets(ns).Get); !ok {
		return "", false
	}
	return ns + "/" + ref.Name, true
}

// matchingOwners are the keys of the DaemonSets whose selector matches an
// orphan pod, which may adopt it.
func (c *Controller) matchingOwners(pod *corev1.Pod) []string {
	sets, err := c.sets.DaemonSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, ds := range sets {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, ds.Namespace+"/"+ds.Name)
		}
	}
	return keys
}

// sync brings one DaemonSet's pods in line with the nodes and its
// template, then writes its status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation refuses both; such an object is left alone rather
		// than made to own every pod of its namespace.
		c.deps.Logger.Warn("daemonset has an invalid selector; ignoring it", "ns", ns, "daemonset", name, "err", err)
		return nil
	}
	// Checked before reading the caches: what is observed after this point
	// makes the next sync act.
	satisfied := c.expect.Satisfied(key)
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned, err := controller.ClaimPods(ctx, c.deps.Client, ds, daemonSetKind, selector, all)
	if err != nil {
		return err
	}
	s := &state{
		ds:     ds,
		key:    key,
		hash:   controller.RevisionHash(&ds.Spec.Template),
		nodes:  nodes,
		byNode: podsByNode(owned),
		now:    c.deps.Clock.Now(),
	}
	s.template = daemonPod(ds, s.hash, "")

	var errs []error
	var retry time.Duration
	if satisfied && ds.DeletionTimestamp == nil {
		d, acted, err := c.manage(ctx, s)
		retry = sooner(retry, d)
		if err != nil {
			errs = append(errs, err)
		}
		// The rollout works from the same view of the pods, which is stale
		// once manage acted: it waits for the next sync.
		if err == nil && !acted && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
			if err := c.rollingUpdate(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	d, err := c.updateStatus(ctx, s, satisfied)
	retry = sooner(retry, d)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	if retry > 0 {
		return controller.RequeueAfter(retry)
	}
	return nil
}

// state is what one sync knows of a DaemonSet and its pods.
type state struct {
	ds       *appsv1.DaemonSet
	key      string
	hash     string
	template *corev1.Pod // a pod as the DaemonSet makes them, on no node
	nodes    []*corev1.Node
	byNode   map[string][]*corev1.Pod
	now      time.Time
}

// podsByNode groups pods by the node they are bound to ("" for none).
// Finished pods already being deleted are left out: nothing is left to do
// with them.
func podsByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	m := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil && isFinished(p) {
			continue
		}
		m[p.Spec.NodeName] = append(m[p.Spec.NodeName], p)
	}
	return m
}

func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
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
