// Package garbagecollector deletes objects whose owners are gone, as the
// Kubernetes garbage collector does.
//
// Objects name their owners in metadata.ownerReferences, by kind, name and
// UID: an object of the same name but another UID is another owner. The
// collector watches the metadata of every resource it is given and acts on
// three cases:
//
//   - Background (the default): once none of an object's owners exists any
//     more, the object is deleted with propagationPolicy Background, so its
//     own dependents follow in turn (Deployment, ReplicaSets, Pods). An
//     object that still has an owner loses only its references to the
//     owners that are gone.
//   - Foreground: the API keeps an owner deleted this way, marked, with the
//     foregroundDeletion finalizer. The collector deletes its dependents
//     (those that have dependents of their own in the foreground too) and
//     removes the finalizer once no dependent with blockOwnerDeletion
//     remains; a pod stopping on its node still counts.
//   - Orphan: the API keeps the owner with the orphan finalizer; the
//     collector removes the owner's reference from every dependent, then
//     the finalizer.
//
// Only the API may say that an owner is gone: a cache miss is confirmed
// with a read, and owners confirmed absent are remembered by UID (UIDs are
// never reused). Before it lets a foreground or orphan owner go, the
// collector lists the owner's namespace in the API rather than trusting its
// caches, which may lag behind one another.
package garbagecollector

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/lru"

	"orch.dev/orch/server/controller"
)

const (
	// ownerIndex indexes cached objects by the UIDs of their owners.
	ownerIndex = "ownerUID"
	// absentOwners is how many owners confirmed gone are remembered.
	absentOwners = 4096
)

// Deps are what the collector needs.
type Deps struct {
	// Client serves discovery: which kind each resource holds and whether
	// it is namespaced, to resolve an owner reference's apiVersion and kind.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Resources are the resources whose objects may own others or be
	// owned; the collector watches their metadata. Owners of a kind not
	// listed here are still checked, but their deletion is noticed only
	// when their dependents next change.
	Resources []schema.GroupVersionResource
	Logger    *slog.Logger
	// Workers is how many objects are looked at concurrently; default 4.
	Workers int
	// Recheck is how soon an owner in foreground deletion is looked at
	// again while dependents still block it, in case a dependent's
	// deletion was missed; default 10s.
	Recheck time.Duration
}

// Controller is the garbage collector.
type Controller struct {
	deps    Deps
	factory dynamicinformer.DynamicSharedInformerFactory
	queue   workqueue.TypedRateLimitingInterface[string]
	absent  *lru.Cache // owners confirmed gone

	// Run sets these before the informers and workers start.
	kinds   *kindTable
	watched map[string]*watched // by queue key prefix
	order   []*watched
	synced  []cache.InformerSynced
}

// watched is one resource the collector has an informer on.
type watched struct {
	name     string // group resource, as in "pods" or "replicasets.apps"; the queue key prefix
	gvr      schema.GroupVersionResource
	informer cache.SharedIndexInformer
}

// get is the cached object ns/name of w, or nil.
func (w *watched) get(ns, name string) *metav1.PartialObjectMetadata {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, err := w.informer.GetIndexer().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	return metaOf(obj)
}

// New builds the collector; Run starts it.
func New(deps Deps) *Controller {
	if deps.Workers < 1 {
		deps.Workers = 4
	}
	if deps.Recheck <= 0 {
		deps.Recheck = 10 * time.Second
	}
	return &Controller{
		deps:    deps,
		factory: dynamicinformer.NewDynamicSharedInformerFactory(deps.Dynamic, 0),
		watched: map[string]*watched{},
		queue:   controller.NewQueue("garbagecollector"),
		absent:  lru.New(absentOwners),
	}
}

// Run collects garbage until ctx ends. It learns the API's kinds from
// discovery first, then watches the resources it was given.
func (c *Controller) Run(ctx context.Context) error {
	for {
		kinds, err := loadKinds(c.deps.Client.Discovery())
		if err == nil {
			c.kinds = kinds
			break
		}
		c.deps.Logger.Warn("discovery failed; will retry", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	c.watch()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	loop := controller.Loop{Name: "garbagecollector", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

// watch makes an informer on the metadata of each resource the API
// serves; one it does not serve would never sync, so it is left out.
func (c *Controller) watch() {
	for _, gvr := range c.deps.Resources {
		name := gvr.GroupResource().String()
		if c.watched[name] != nil {
			continue
		}
		if !c.kinds.served(gvr) {
			c.deps.Logger.Warn("not watching a resource the API does not serve", "resource", gvr.String())
			continue
		}
		inf := c.factory.ForResource(gvr).Informer()
		// Both fail only once the informer has started, and it has not.
		_ = inf.SetTransform(slim)
		_ = inf.AddIndexers(cache.Indexers{ownerIndex: ownerUIDs})
		w := &watched{name: name, gvr: gvr, informer: inf}
		// The registration handle is not needed: the handler lives as long as the informer.
		_, _ = inf.AddEventHandler(c.handler(w))
		c.watched[name] = w
		c.order = append(c.order, w)
		c.synced = append(c.synced, inf.HasSynced)
	}
}

// handler only enqueues: objects with owners, owners with the collector's
// finalizers, the dependents of an object that is gone, and the
// foreground-deleted owners of a dependent that changed or went.
func (c *Controller) handler(w *watched) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m := metaOf(obj); m != nil && interesting(m) {
				c.enqueue(w, m)
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			old, m := metaOf(oldObj), metaOf(obj)
			if old == nil || m == nil {
				return
			}
			if old.UID != m.UID {
				// Replaced between two looks: the old object is gone.
				c.enqueueDependents(old)
				c.enqueueWaitingOwners(old)
				if interesting(m) {
					c.enqueue(w, m)
				}
				return
			}
			if !slices.EqualFunc(old.OwnerReferences, m.OwnerReferences, sameRef) || deletionChanged(old, m) {
				c.enqueue(w, m)
				c.enqueueWaitingOwners(old)
				c.enqueueWaitingOwners(m)
			}
		},
		DeleteFunc: func(obj any) {
			if m := metaOf(obj); m != nil {
				c.enqueueDependents(m)
				c.enqueueWaitingOwners(m)
			}
		},
	}
}

func interesting(m *metav1.PartialObjectMetadata) bool {
	return len(m.OwnerReferences) > 0 || hasFinalizer(m.Finalizers, metav1.FinalizerOrphanDependents) ||
		hasFinalizer(m.Finalizers, metav1.FinalizerDeleteDependents)
}

func sameRef(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name &&
		isTrue(a.BlockOwnerDeletion) == isTrue(b.BlockOwnerDeletion) && isTrue(a.Controller) == isTrue(b.Controller)
}

func deletionChanged(old, m *metav1.PartialObjectMetadata) bool {
	return (old.DeletionTimestamp == nil) != (m.DeletionTimestamp == nil) || !slices.Equal(old.Finalizers, m.Finalizers)
}

// key is the queue key of an object of w: "<group resource>/<namespace>/<name>".
func key(w *watched, m *metav1.PartialObjectMetadata) string {
	if m.Namespace == "" {
		return w.name + "/" + m.Name
	}
	return w.name + "/" + m.Namespace + "/" + m.Name
}

func (c *Controller) enqueue(w *watched, m *metav1.PartialObjectMetadata) {
	c.queue.Add(key(w, m))
}

// enqueueDependents queues the cached dependents of owner.
func (c *Controller) enqueueDependents(owner *metav1.PartialObjectMetadata) {
	for _, d := range c.cachedDependents(owner) {
		c.enqueue(d.w, d.m)
	}
}

// enqueueWaitingOwners queues the owners of m that wait in foreground
// deletion for their dependents.
func (c *Controller) enqueueWaitingOwners(m *metav1.PartialObjectMetadata) {
	for _, ref := range m.OwnerReferences {
		w, o := c.cachedOwner(m, ref)
		if o != nil && o.DeletionTimestamp != nil && hasFinalizer(o.Finalizers, metav1.FinalizerDeleteDependents) {
			c.enqueue(w, o)
		}
	}
}

// cachedDependent is an object in the informers that names an owner.
type cachedDependent struct {
	w   *watched
	m   *metav1.PartialObjectMetadata
	ref metav1.OwnerReference
}

// cachedDependents are the objects in the informers that name owner.
func (c *Controller) cachedDependents(owner *metav1.PartialObjectMetadata) []cachedDependent {
	var out []cachedDependent
	for _, w := range c.order {
		// ByIndex fails only for an index that does not exist; New adds it.
		objs, _ := w.informer.GetIndexer().ByIndex(ownerIndex, string(owner.UID))
		for _, obj := range objs {
			d := metaOf(obj)
			// A namespaced owner owns only objects of its namespace; an
			// object naming itself as its owner is not its own dependent.
			if d == nil || d.UID == owner.UID || (owner.Namespace != "" && d.Namespace != owner.Namespace) {
				continue
			}
			if ref, ok := refTo(d.OwnerReferences, owner.UID); ok {
				out = append(out, cachedDependent{w: w, m: d, ref: ref})
			}
		}
	}
	return out
}

// cachedOwner is the owner ref names for dependent m, if an informer has
// it with the same UID.
func (c *Controller) cachedOwner(m *metav1.PartialObjectMetadata, ref metav1.OwnerReference) (*watched, *metav1.PartialObjectMetadata) {
	if c.kinds == nil {
		return nil, nil
	}
	t, ok := c.kinds.lookup(ref.APIVersion, ref.Kind)
	if !ok {
		return nil, nil
	}
	w := c.watched[t.gvr.GroupResource().String()]
	if w == nil {
		return nil, nil
	}
	ns := ""
	if t.namespaced {
		ns = m.Namespace
	}
	o := w.get(ns, ref.Name)
	if o == nil || o.UID != ref.UID {
		return nil, nil
	}
	return w, o
}

// slim keeps of an object only the metadata the collector reads, so the
// informers' caches stay small.
func slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil // already slim, or a tombstone
	}
	m := &metav1.PartialObjectMetadata{}
	m.Name = u.GetName()
	m.Namespace = u.GetNamespace()
	m.UID = u.GetUID()
	m.ResourceVersion = u.GetResourceVersion()
	m.OwnerReferences = u.GetOwnerReferences()
	m.Finalizers = u.GetFinalizers()
	m.DeletionTimestamp = u.GetDeletionTimestamp()
	m.DeletionGracePeriodSeconds = u.GetDeletionGracePeriodSeconds()
	return m, nil
}

// metaOf is the slim metadata of an informer object or tombstone, or nil.
func metaOf(obj any) *metav1.PartialObjectMetadata {
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		return o
	case *unstructured.Unstructured:
		m, _ := slim(o) // slim never fails
		return m.(*metav1.PartialObjectMetadata)
	case cache.DeletedFinalStateUnknown:
		return metaOf(o.Obj)
	}
	return nil
}

func ownerUIDs(obj any) ([]string, error) {
	m := metaOf(obj)
	if m == nil {
		return nil, nil
	}
	out := make([]string, 0, len(m.OwnerReferences))
	for _, ref := range m.OwnerReferences {
		out = append(out, string(ref.UID))
	}
	return out, nil
}

// splitKey parses a queue key into its resource and informer key.
func (c *Controller) splitKey(key string) (*watched, string, bool) {
	name, objKey, ok := strings.Cut(key, "/")
	if !ok {
		return nil, "", false
	}
	w := c.watched[name]
	return w, objKey, w != nil
}
