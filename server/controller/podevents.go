package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// PodEvents turns the pod informer's events into the queue keys of the
// pods' owners, for a control loop that owns pods through their controller
// reference, and settles the loop's expectations as its own creations and
// deletions show up:
//
//   - a pod that appears is a creation by its owner;
//   - a pod that disappears, or is marked for deletion (it has a
//     deletionTimestamp), is a deletion by its owner: a pod being deleted
//     no longer counts, so the owner acts now rather than once the pod's
//     node has stopped it;
//   - a pod whose controller reference changed queues its old and its new
//     owner (both observe the deletion when the same update marks it);
//   - an orphan (a pod without an owner of this loop) queues the owners
//     that may adopt it when it appears, and when its labels change or it
//     loses its controller.
type PodEvents struct {
	Queue        workqueue.TypedInterface[string]
	Expectations *Expectations
	// OwnerOf resolves the controller reference of a pod in namespace ns
	// to its owner's queue key; ok is false when the reference names no
	// owner of this loop, or one that is gone or has another UID (see
	// ResolveControllerRef). ref is never nil.
	OwnerOf func(ns string, ref *metav1.OwnerReference) (key string, ok bool)
	// Orphan, when set, lists the keys of the owners that may adopt pod,
	// which has no owner of this loop.
	Orphan func(pod *corev1.Pod) []string
	// Updated, when set, is called on each update of a pod whose owner
	// resolves, with the owner's key, before the key is queued: for what a
	// loop wants to do on top (sync again later, say).
	Updated func(key string, old, cur *corev1.Pod)
	// MarkedCountsAsCreated chooses how a pod already marked for deletion
	// counts. By default the mark is the pod's deletion: the update that
	// sets it observes the deletion, and a pod that first shows up marked
	// (after a relist) is a deletion alone, not a creation, since it may
	// be an old pod rather than the one its owner waits for. With
	// MarkedCountsAsCreated, a marked pod is still one its owner made:
	// showing up, it counts as created and deleted, and every update that
	// shows the mark observes the deletion.
	MarkedCountsAsCreated bool
}

// Handler is the handler to register on the pod informer.
func (e PodEvents) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{AddFunc: e.add, UpdateFunc: e.update, DeleteFunc: e.delete}
}

// ownerOf is the key of the owner ref names, if any.
func (e PodEvents) ownerOf(ns string, ref *metav1.OwnerReference) (string, bool) {
	if ref == nil {
		return "", false
	}
	return e.OwnerOf(ns, ref)
}

func (e PodEvents) enqueueAdopters(pod *corev1.Pod) {
	if e.Orphan == nil {
		return
	}
	for _, key := range e.Orphan(pod) {
		e.Queue.Add(key)
	}
}

func (e PodEvents) add(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return
	}
	marked := pod.DeletionTimestamp != nil
	if marked && !e.MarkedCountsAsCreated {
		e.delete(pod)
		return
	}
	key, ok := e.ownerOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod))
	if !ok {
		e.enqueueAdopters(pod)
		return
	}
	e.Expectations.CreationObserved(key)
	if marked {
		e.Expectations.DeletionObserved(key, pod.UID)
	}
	e.Queue.Add(key)
}

func (e PodEvents) update(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old == nil || cur == nil || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	marking := cur.DeletionTimestamp != nil && (old.DeletionTimestamp == nil || e.MarkedCountsAsCreated)
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if key, ok := e.ownerOf(old.Namespace, oldRef); ok {
			if marking {
				e.Expectations.DeletionObserved(key, old.UID)
			}
			e.Queue.Add(key)
		}
	}
	if key, ok := e.ownerOf(cur.Namespace, curRef); ok {
		if marking {
			e.Expectations.DeletionObserved(key, cur.UID)
		}
		if e.Updated != nil {
			e.Updated(key, old, cur)
		}
		e.Queue.Add(key)
		return
	}
	if curRef == nil && (oldRef != nil || !labels.Equals(old.Labels, cur.Labels)) {
		e.enqueueAdopters(cur)
	}
}

func (e PodEvents) delete(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		pod, ok = tomb.Obj.(*corev1.Pod)
	}
	if !ok || pod == nil {
		return
	}
	if key, ok := e.ownerOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod)); ok {
		e.Expectations.DeletionObserved(key, pod.UID)
		e.Queue.Add(key)
	}
}

// ResolveControllerRef is the owner a pod's controller reference names,
// read with get (a lister's Get for ref's namespace), when ref is of kind
// and the object found has ref's UID: an object of the same name made
// again after the pod's owner was deleted is not its owner.
func ResolveControllerRef[T metav1.Object](ref *metav1.OwnerReference, kind schema.GroupVersionKind, get func(name string) (T, error)) (T, bool) {
	var none T
	if ref == nil || ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return none, false
	}
	obj, err := get(ref.Name)
	if err != nil || obj.GetUID() != ref.UID {
		return none, false
	}
	return obj, true
}

// DeletionObservedIfGone settles key's expectation for the deletion of p
// when pods (the loop's pod cache) already shows p gone or marked for
// deletion: the event for it may have been handled before the expectation
// was set, and would then never settle it.
func (e *Expectations) DeletionObservedIfGone(pods corelisters.PodLister, key string, p *corev1.Pod) {
	cur, err := pods.Pods(p.Namespace).Get(p.Name)
	if err != nil || cur.UID != p.UID || cur.DeletionTimestamp != nil {
		e.DeletionObserved(key, p.UID)
	}
}
