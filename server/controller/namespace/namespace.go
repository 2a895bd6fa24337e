// Package namespace is the control loop that finishes deleting namespaces.
// The API marks a deleted namespace Terminating and refuses new content in
// it; this controller deletes everything left inside, waits until nothing
// remains (pods on nodes take their grace period), then removes the
// "kubernetes" finalizer from the namespace, at which point the API deletes
// it.
package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Deps are what the controller needs.
type Deps struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Resources are the namespaced resources to empty a namespace of.
	Resources []schema.GroupVersionResource
	Logger    *slog.Logger
	// Recheck is how soon a namespace that still has content is looked at
	// again; default 2s.
	Recheck time.Duration
}

// Controller empties and removes terminating namespaces.
type Controller struct {
	deps    Deps
	factory informers.SharedInformerFactory
	lister  corelisters.NamespaceLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller; Run starts it.
func New(deps Deps) *Controller {
	if deps.Recheck == 0 {
		deps.Recheck = 2 * time.Second
	}
	factory := informers.NewSharedInformerFactory(deps.Client, 0)
	nsInformer := factory.Core().V1().Namespaces()
	c := &Controller{
		deps:    deps,
		factory: factory,
		lister:  nsInformer.Lister(),
		synced:  nsInformer.Informer().HasSynced,
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	// Handlers only enqueue; sync decides from the current state.
	_, _ = nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for c.processNext(ctx) {
	}
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	requeue, err := c.sync(ctx, name)
	switch {
	case err != nil:
		c.deps.Logger.Warn("namespace cleanup failed; will retry", "ns", name, "err", err)
		c.queue.AddRateLimited(name)
	case requeue:
		c.queue.Forget(name)
		c.queue.AddAfter(name, c.deps.Recheck)
	default:
		c.queue.Forget(name)
	}
	return true
}

const finalizer = corev1.FinalizerKubernetes

// sync deletes what remains in a terminating namespace. It reports whether
// the namespace must be looked at again.
func (c *Controller) sync(ctx context.Context, name string) (bool, error) {
	ns, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ns.DeletionTimestamp == nil || !hasFinalizer(ns) {
		return false, nil
	}
	remaining := 0
	for _, gvr := range c.deps.Resources {
		list, err := c.deps.Dynamic.Resource(gvr).Namespace(name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		for _, item := range list.Items {
			remaining++
			if item.GetDeletionTimestamp() != nil {
				continue
			}
			bg := metav1.DeletePropagationBackground
			err := c.deps.Dynamic.Resource(gvr).Namespace(name).Delete(ctx, item.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
			if err != nil && !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("delete %s/%s: %w", gvr.Resource, item.GetName(), err)
			}
		}
	}
	if remaining > 0 {
		c.deps.Logger.Debug("namespace still has content", "ns", name, "objects", remaining)
		return true, nil
	}
	cur := ns.DeepCopy()
	var keep []corev1.FinalizerName
	for _, f := range cur.Spec.Finalizers {
		if f != finalizer {
			keep = append(keep, f)
		}
	}
	cur.Spec.Finalizers = keep
	if _, err := c.deps.Client.CoreV1().Namespaces().Finalize(ctx, cur, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("finalize: %w", err)
	}
	c.deps.Logger.Info("namespace deleted", "ns", name)
	return false, nil
}

func hasFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == finalizer {
			return true
		}
	}
	return false
}
