package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/server/controller"
)

// DefaultTolerationSeconds is how long a pod without a toleration for the
// not-ready and unreachable taints stays on a node that has one, unless
// Deps.DefaultTolerationSeconds says otherwise.
const DefaultTolerationSeconds = 30

// Deps are what the controller needs.
type Deps struct {
	Client kubernetes.Interface
	// Informers is the leader's shared informer factory; the caller starts
	// it after New. Nil makes a private one that Run starts.
	Informers informers.SharedInformerFactory
	// Alive reports which agents gossip currently knows as members, and
	// Changed returns a channel closed at the next membership change. With
	// Alive nil, Ready conditions are left to the agents (and to tests).
	Alive   func() map[string]bool
	Changed func() <-chan struct{}
	Logger  *slog.Logger
	// Grace is how long a new leader waits before trusting its view of
	// the membership (default 5s): a server that just started may not know
	// every member yet.
	Grace time.Duration
	// Clock is the time that deadlines count on; default the real one.
	Clock clock.Clock
	// DefaultTolerationSeconds is how long a pod that does not tolerate
	// the not-ready or unreachable taint stays on a node that has it before
	// it is evicted; nil means DefaultTolerationSeconds (30), 0 evicts at
	// once. Kubernetes adds the same default to pods by admission (300 s).
	DefaultTolerationSeconds *int64
}

// Controller marks Nodes whose agents are gone from gossip, taints failed
// Nodes, marks their pods not ready, evicts pods whose tolerations run out
// and removes pods of deleted Nodes.
type Controller struct {
	deps          Deps
	clock         clock.Clock
	defaultWindow time.Duration
	factory       informers.SharedInformerFactory
	ownFactory    bool
	nodes         corelisters.NodeLister
	nodesSynced   cache.InformerSynced
	pods          corelisters.PodLister
	podIndexer    cache.Indexer
	indexed       bool
	podsSynced    cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	expect        *controller.Expectations
	recorder      record.EventRecorder
	kick          chan struct{}

	mu        sync.Mutex
	firstSeen map[string]time.Time // NoExecute taints without timeAdded, by node/taint
}

// podsByNode is the name of the pod index by spec.nodeName this controller
// adds to the shared pod informer.
const podsByNode = "orch.dev/nodelifecycle.spec.nodeName"

// New builds the controller and registers its informers on the factory.
func New(deps Deps) *Controller {
	if deps.Grace == 0 {
		deps.Grace = 5 * time.Second
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	window := int64(DefaultTolerationSeconds)
	if deps.DefaultTolerationSeconds != nil {
		window = *deps.DefaultTolerationSeconds
	}
	c := &Controller{
		deps:          deps,
		clock:         deps.Clock,
		defaultWindow: seconds(window),
		factory:       deps.Informers,
		queue:         controller.NewClockedQueue("nodelifecycle", deps.Clock),
		expect:        controller.NewExpectations(),
		recorder:      &record.FakeRecorder{}, // replaced by Run
		kick:          make(chan struct{}, 1),
		firstSeen:     map[string]time.Time{},
	}
	if c.factory == nil {
		c.factory = informers.NewSharedInformerFactory(deps.Client, 0)
		c.ownFactory = true
	}
	nodeInf := c.factory.Core().V1().Nodes()
	podInf := c.factory.Core().V1().Pods()
	c.nodes, c.nodesSynced = nodeInf.Lister(), nodeInf.Informer().HasSynced
	c.pods, c.podsSynced = podInf.Lister(), podInf.Informer().HasSynced
	c.podIndexer = podInf.Informer().GetIndexer()
	err := podInf.Informer().AddIndexers(cache.Indexers{podsByNode: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	c.indexed = err == nil
	if err != nil {
		deps.Logger.Warn("pods are listed without an index by node", "err", err)
	}
	// The registration handles are not needed: the handlers live as long
	// as the factory.
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.nodeChanged,
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
		DeleteFunc: c.nodeChanged,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: func(_, obj any) { c.podChanged(obj) },
		DeleteFunc: c.podDeleted,
	})
	return c
}

// seconds converts tolerationSeconds to a duration: negative counts as 0
// and absurdly large values are capped rather than overflowing.
func seconds(s int64) time.Duration {
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	switch {
	case s < 0:
		return 0
	case s > maxSeconds:
		return time.Duration(maxSeconds) * time.Second
	}
	return time.Duration(s) * time.Second
}

func (c *Controller) nodeChanged(obj any) {
	if key, ok := controller.KeyOf(obj); ok {
		c.queue.Add(key)
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return
	}
	if p.DeletionTimestamp != nil {
		c.expect.DeletionObserved(p.Spec.NodeName, p.UID)
	}
	c.queue.Add(p.Spec.NodeName)
}

func (c *Controller) podDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		c.expect.DeletionObserved(p.Spec.NodeName, p.UID)
	}
}

// Run runs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "nodelifecycle-controller")
	defer stop()
	c.recorder = rec
	if c.ownFactory {
		c.factory.Start(ctx.Done())
		defer c.factory.Shutdown()
	}
	var wg sync.WaitGroup
	if c.deps.Alive != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.watchMembership(ctx)
		}()
	}
	loop := controller.Loop{Name: "nodelifecycle", Queue: c.queue, Sync: c.sync, Workers: 4, Log: c.deps.Logger}
	err := loop.Run(ctx, c.nodesSynced, c.podsSynced)
	wg.Wait()
	return err
}

// sync reconciles one node: its taints from its Ready condition, its pods'
// readiness, the evictions that are due, and, once the Node is gone, the
// pods still bound to it.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetTaints(name, nil)
		return c.collectOrphans(ctx, name)
	}
	if err != nil {
		return err
	}
	if _, known := readyCondition(node); known {
		if node, err = c.reconcileTaints(ctx, node); err != nil {
			return fmt.Errorf("taints of node %s: %w", name, err)
		}
		if node == nil { // deleted meanwhile; its delete event comes
			return nil
		}
		// The node as written may be newer than the informer's copy.
		if readyStatus(node) != corev1.ConditionTrue {
			if err := c.markPodsNotReady(ctx, node, c.podsOn(name)); err != nil {
				return err
			}
		}
	}
	return c.evict(ctx, node)
}

// podsOn lists the pods bound to a node, from the informer.
func (c *Controller) podsOn(node string) []*corev1.Pod {
	var out []*corev1.Pod
	if c.indexed {
		objs, err := c.podIndexer.ByIndex(podsByNode, node)
		if err == nil {
			for _, o := range objs {
				if p, ok := o.(*corev1.Pod); ok {
					out = append(out, p)
				}
			}
			return out
		}
		c.deps.Logger.Warn("pod index by node", "err", err)
	}
	all, err := c.pods.List(labels.Everything())
	if err != nil { // the informer's lister does not fail
		c.deps.Logger.Warn("list pods", "err", err)
	}
	for _, p := range all {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

// readyCondition is the status of the node's Ready condition, and whether
// it has one.
func readyCondition(n *corev1.Node) (corev1.ConditionStatus, bool) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, true
		}
	}
	return corev1.ConditionUnknown, false
}

// deletePod deletes a pod bound to node, with grace (nil: the pod's own),
// expecting the informer to show it, so the pod is not deleted twice. It
// reports false when the pod was already gone or is another pod now.
func (c *Controller) deletePod(ctx context.Context, node string, pod *corev1.Pod, grace *int64) (bool, error) {
	uid := pod.UID
	c.expect.ExpectDeletions(node, uid)
	err := c.deps.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOptions(uid, grace))
	if err != nil {
		c.expect.DeletionObserved(node, uid)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return false, nil // gone, or another pod by that name now
		}
		return false, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return true, nil
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

func deleteOptions(uid types.UID, grace *int64) metav1.DeleteOptions {
	return metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &uid}}
}

// podKey names a pod in logs.
func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }
