// Package replicaset keeps the pods of every ReplicaSet and
// ReplicationController: as many active pods matching the selector as the
// replica count asks for, made from the pod template. Pods are tied to
// their owner by a controller owner reference: pods without one whose
// labels match are adopted, owned pods whose labels stop matching are
// released (and replaced). Changing the template affects only pods created
// afterwards; changing the count acts at once. Expectations keep the loop
// from creating or deleting twice before its own writes show in its
// informers.
package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// Owner kinds, which prefix the queue keys.
var (
	replicaSetKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	rcKind         = corev1.SchemeGroupVersion.WithKind("ReplicationController")
)

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// BurstReplicas caps the pods one sync creates or deletes (default
	// 500); the rest follow in the next syncs.
	BurstReplicas int
	// Workers is the number of owners synced at once (default 5).
	Workers int
}

// Controller is the ReplicaSet and ReplicationController control loop.
type Controller struct {
	deps     Deps
	pods     corelisters.PodLister
	rsets    appslisters.ReplicaSetLister
	rcs      corelisters.ReplicationControllerLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	expect   *controller.Expectations
	recorder record.EventRecorder
	podCtl   controller.PodControl
}

// New builds the controller and registers its informers on deps.Informers.
func New(deps Deps) *Controller {
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.BurstReplicas <= 0 {
		deps.BurstReplicas = 500
	}
	if deps.Workers <= 0 {
		deps.Workers = 5
	}
	podInf := deps.Informers.Core().V1().Pods()
	rsInf := deps.Informers.Apps().V1().ReplicaSets()
	rcInf := deps.Informers.Core().V1().ReplicationControllers()
	c := &Controller{
		deps:   deps,
		pods:   podInf.Lister(),
		rsets:  rsInf.Lister(),
		rcs:    rcInf.Lister(),
		synced: []cache.InformerSynced{podInf.Informer().HasSynced, rsInf.Informer().HasSynced, rcInf.Informer().HasSynced},
		queue:  controller.NewQueue("replicaset"),
		expect: controller.NewExpectations(),
	}
	_, _ = rsInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, replicaSetKind.Kind+"/")) // registration handles are not needed
	_, _ = rcInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, rcKind.Kind+"/"))
	_, _ = podInf.Informer().AddEventHandler(controller.PodEvents{
		Queue:        c.queue,
		Expectations: c.expect,
		OwnerOf:      c.ownerOf,
		Orphan:       c.matchingOwners,
		Updated:      c.podUpdated,
	}.Handler())
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "replicaset-controller")
	defer stop()
	c.recorder = rec
	c.podCtl = controller.PodControl{Client: c.deps.Client, Recorder: rec}
	loop := &controller.Loop{Name: "replicaset", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

// owner is what the loop needs of a ReplicaSet or a ReplicationController.
type owner struct {
	obj             runtime.Object
	meta            metav1.Object
	kind            schema.GroupVersionKind
	replicas        int32
	selector        labels.Selector
	template        *corev1.PodTemplateSpec
	minReadySeconds int32
}

// ownerOf resolves a pod's controller reference to the key of a
// ReplicaSet or ReplicationController this loop manages.
func (c *Controller) ownerOf(ns string, ref *metav1.OwnerReference) (string, bool) {
	_, isRS := controller.ResolveControllerRef(ref, replicaSetKind, c.rsets.ReplicaSets(ns).Get)
	_, isRC := controller.ResolveControllerRef(ref, rcKind, c.rcs.ReplicationControllers(ns).Get)
	if !isRS && !isRC {
		return "", false
	}
	return ref.Kind + "/" + ns + "/" + ref.Name, true
}

// matchingOwners are the keys of the owners whose selector matches an
// orphan pod, which may adopt it.
func (c *Controller) matchingOwners(pod *corev1.Pod) []string {
	var keys []string
	set := labels.Set(pod.Labels)
	rsets, _ := c.rsets.ReplicaSets(pod.Namespace).List(labels.Everything())
	for _, rs := range rsets {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(set) {
			keys = append(keys, replicaSetKind.Kind+"/"+rs.Namespace+"/"+rs.Name)
		}
	}
	rcs, _ := c.rcs.ReplicationControllers(pod.Namespace).List(labels.Everything())
	for _, rc := range rcs {
		if len(rc.Spec.Selector) > 0 && labels.SelectorFromSet(rc.Spec.Selector).Matches(set) {
			keys = append(keys, rcKind.Kind+"/"+rc.Namespace+"/"+rc.Name)
		}
	}
	return keys
}

// podUpdated schedules another sync of the owner of a pod that just
// turned Ready for when the pod becomes available, minReadySeconds later,
// so that it is counted.
func (c *Controller) podUpdated(key string, old, pod *corev1.Pod) {
	if !controller.IsPodReady(old) && controller.IsPodReady(pod) {
		if o, err := c.lookup(key); err == nil && o != nil && o.minReadySeconds > 0 {
			c.queue.AddAfter(key, time.Duration(o.minReadySeconds)*time.Second+time.Second)
		}
	}
}

// lookup reads the owner a queue key names; nil when it is gone.
func (c *Controller) lookup(key string) (*owner, error) {
	kind, ns, name, err := splitKey(key)
	if err != nil {
		return nil, err
	}
	switch kind {
	case replicaSetKind.Kind:
		rs, err := c.rsets.ReplicaSets(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("replicaset %s/%s: invalid selector: %w", ns, name, err)
		}
		return &owner{obj: rs, meta: rs, kind: replicaSetKind, replicas: replicasOf(rs.Spec.Replicas), selector: sel,
			template: &rs.Spec.Template, minReadySeconds: rs.Spec.MinReadySeconds}, nil
	case rcKind.Kind:
		rc, err := c.rcs.ReplicationControllers(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &owner{obj: rc, meta: rc, kind: rcKind, replicas: replicasOf(rc.Spec.Replicas), selector: labels.SelectorFromSet(rc.Spec.Selector),
			template: rc.Spec.Template, minReadySeconds: rc.Spec.MinReadySeconds}, nil
	}
	return nil, fmt.Errorf("unknown owner kind in key %q", key)
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func splitKey(key string) (kind, ns, name string, err error) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			kind = key[:i]
			ns, name, err = cache.SplitMetaNamespaceKey(key[i+1:])
			return kind, ns, name, err
		}
	}
	return "", "", "", fmt.Errorf("malformed key %q", key)
}

// sync brings one owner's pods to its replica count and writes its status.
func (c *Controller) sync(ctx context.Context, key string) error {
	o, err := c.lookup(key)
	if err != nil {
		return err
	}
	if o == nil {
		c.expect.Forget(key)
		return nil
	}
	// Before the expectations are checked: observations that arrive after
	// this point make the next sync act.
	satisfied := c.expect.Satisfied(key)
	all, err := c.pods.Pods(o.meta.GetNamespace()).List(labels.Everything())
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	for _, p := range all {
		if controller.IsPodActive(p) {
			active = append(active, p)
		}
	}
	owned, err := controller.ClaimPods(ctx, c.deps.Client, o.meta, o.kind, o.selector, active)
	if err != nil {
		return err
	}
	var manageErr error
	if satisfied && o.meta.GetDeletionTimestamp() == nil && o.template != nil {
		manageErr = c.manage(ctx, key, o, owned)
	}
	if err := c.updateStatus(ctx, o, owned, manageErr); err != nil {
		return err
	}
	if manageErr != nil {
		return manageErr
	}
	if o.minReadySeconds > 0 {
		// Ready pods that are not yet available become so later.
		now := c.deps.Clock.Now()
		for _, p := range owned {
			if controller.IsPodReady(p) && !controller.IsPodAvailable(p, o.minReadySeconds, now) {
				return controller.RequeueAfter(time.Duration(o.minReadySeconds) * time.Second)
			}
		}
	}
	return nil
}

// manage creates or deletes pods so that len(owned) meets o.replicas.
func (c *Controller) manage(ctx context.Context, key string, o *owner, owned []*corev1.Pod) error {
	diff := len(owned) - int(o.replicas)
	switch {
	case diff < 0:
		n := min(-diff, c.deps.BurstReplicas)
		c.expect.ExpectCreations(key, n)
		// Slow start: batches of 1, 2, 4, ... so that a template that
		// cannot be created fails once, not n times.
		created := 0
		for batch := 1; created < n; batch *= 2 {
			size := min(batch, n-created)
			errs := make([]error, size)
			var wg sync.WaitGroup
			for i := 0; i < size; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pod := controller.PodFromTemplate(o.template, o.meta, o.kind)
					if _, err := c.podCtl.Create(ctx, pod, o.obj); err != nil {
						c.expect.CreationObserved(key)
						errs[i] = err
					}
				}()
			}
			wg.Wait()
			created += size
			for _, err := range errs {
				if err != nil {
					// The creations never attempted will not be observed.
					for skipped := n - created; skipped > 0; skipped-- {
						c.expect.CreationObserved(key)
					}
					return fmt.Errorf("create pods: %w", err)
				}
			}
		}
	case diff > 0:
		n := min(diff, c.deps.BurstReplicas)
		victims := append([]*corev1.Pod(nil), owned...)
		controller.SortForDeletion(victims)
		victims = victims[:n]
		uids := make([]types.UID, 0, n)
		for _, p := range victims {
			uids = append(uids, p.UID)
		}
		c.expect.ExpectDeletions(key, uids...)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.podCtl.Delete(ctx, p, o.obj); err != nil {
					c.expect.DeletionObserved(key, p.UID)
					errs[i] = err
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("delete pods: %w", err)
			}
		}
	}
	return nil
}
