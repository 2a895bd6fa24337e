package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"orch.dev/orch/server/controller"
)

// sync looks at one object: as an owner kept for the collector by a
// finalizer, or as a dependent whose owners may be gone.
func (c *Controller) sync(ctx context.Context, key string) error {
	w, objKey, ok := c.splitKey(key)
	if !ok {
		return nil
	}
	obj, exists, err := w.informer.GetIndexer().GetByKey(objKey)
	if err != nil {
		return err
	}
	m := metaOf(obj)
	if !exists || m == nil {
		return nil
	}
	if m.DeletionTimestamp != nil {
		switch {
		case hasFinalizer(m.Finalizers, metav1.FinalizerOrphanDependents):
			return c.orphanDependents(ctx, w, m)
		case hasFinalizer(m.Finalizers, metav1.FinalizerDeleteDependents):
			return c.deleteDependents(ctx, w, m)
		}
		return nil // already going
	}
	if len(m.OwnerReferences) == 0 {
		return nil
	}
	return c.collect(ctx, w, m)
}

// refsByState sorts an object's owner references by what they point at.
type refsByState struct {
	solid, gone, waiting []metav1.OwnerReference
}

// classify looks up the owners m names. It returns false, having said
// why, if m must be left alone: an owner's kind is not served, so whether
// that owner exists cannot be told.
func (c *Controller) classify(ctx context.Context, w *watched, m *metav1.PartialObjectMetadata) (refsByState, bool, error) {
	var r refsByState
	for _, ref := range m.OwnerReferences {
		st, err := c.ownerState(ctx, m, ref)
		if errors.Is(err, errUnknownKind) {
			c.deps.Logger.Info("leaving an object alone: an owner's kind is not served", "resource", w.name, "ns", m.Namespace, "name", m.Name, "err", err)
			return r, false, nil
		}
		if err != nil {
			return r, false, err
		}
		switch st {
		case solid:
			r.solid = append(r.solid, ref)
		case gone:
			r.gone = append(r.gone, ref)
		case waiting:
			r.waiting = append(r.waiting, ref)
		}
	}
	return r, true, nil
}

// collect deletes m if none of its owners remains (an owner waiting in
// foreground deletion does not count), or drops its references to the
// owners that are gone or waiting while another remains.
func (c *Controller) collect(ctx context.Context, w *watched, m *metav1.PartialObjectMetadata) error {
	// The cached object first: most objects have their owners, which
	// takes no call to the API.
	refs, ok, err := c.classify(ctx, w, m)
	if err != nil || !ok || len(refs.gone)+len(refs.waiting) == 0 {
		return err
	}
	// Then act on the object as the API has it, with its resourceVersion
	// as a precondition: the cache may lag behind a change to the
	// object's owners (an orphaning owner dropped its reference, say).
	client := c.deps.Dynamic.Resource(w.gvr).Namespace(m.Namespace)
	live, err := client.Get(ctx, m.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s: %w", w.name, m.Name, err)
	}
	if live.GetUID() != m.UID {
		return nil // replaced: the new object is looked at on its own
	}
	m = metaOf(live)
	if m.DeletionTimestamp != nil || len(m.OwnerReferences) == 0 {
		return nil
	}
	if refs, ok, err = c.classify(ctx, w, m); err != nil || !ok {
		return err
	}
	if len(refs.solid) > 0 {
		if len(refs.gone) == 0 && len(refs.waiting) == 0 {
			return nil
		}
		drop := map[types.UID]bool{}
		for _, ref := range append(refs.gone, refs.waiting...) {
			drop[ref.UID] = true
		}
		updated, err := c.updateObject(ctx, w, m.Namespace, m.Name, m.UID, live, dropOwnerRefs(drop))
		if err != nil {
			return fmt.Errorf("drop owner references of %s %s: %w", w.name, m.Name, err)
		}
		if updated != nil {
			c.deps.Logger.Info("dropped references to owners that are gone or going", "resource", w.name, "ns", m.Namespace, "name", m.Name,
				"owners", ownerNames(append(refs.gone, refs.waiting...)), "remaining", ownerNames(refs.solid))
		}
		return nil
	}
	policy := metav1.DeletePropagationBackground
	deps := c.cachedDependents(m)
	switch {
	case len(refs.waiting) > 0 && len(deps) > 0:
		// An owner waits for m in the foreground: m's own dependents go
		// first too.
		policy = metav1.DeletePropagationForeground
		for _, d := range deps {
			if d.m.DeletionTimestamp != nil && hasFinalizer(d.m.Finalizers, metav1.FinalizerDeleteDependents) {
				// A dependent of m waits for its own dependents and may be
				// an owner of m: stop m from blocking anything, or the
				// cycle would wait forever.
				updated, err := c.updateObject(ctx, w, m.Namespace, m.Name, m.UID, live, unblockOwnerRefs)
				if err != nil {
					return fmt.Errorf("unblock owner references of %s %s: %w", w.name, m.Name, err)
				}
				if updated != nil {
					live = updated
				}
				break
			}
		}
	case hasFinalizer(m.Finalizers, metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case hasFinalizer(m.Finalizers, metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	uid, rv := live.GetUID(), live.GetResourceVersion()
	err = client.Delete(ctx, m.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}, PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", w.name, m.Name, err)
	}
	c.deps.Logger.Info("deleted an object whose owners are gone", "resource", w.name, "ns", m.Namespace, "name", m.Name,
		"owners", ownerNames(m.OwnerReferences), "propagation", string(policy))
	return nil
}

// deleteDependents works for an owner deleted in the foreground: it queues
// its dependents for deletion and lets the owner go once no dependent with
// blockOwnerDeletion remains.
func (c *Controller) deleteDependents(ctx context.Context, w *watched, m *metav1.PartialObjectMetadata) error {
	blocking := 0
	for _, d := range c.cachedDependents(m) {
		if isTrue(d.ref.BlockOwnerDeletion) {
			blocking++
		}
		if d.m.DeletionTimestamp == nil {
			c.enqueue(d.w, d.m)
		}
	}
	if blocking == 0 {
		// The informers agree nothing blocks; the API has the last word,
		// as a dependent's informer may lag behind the owner's.
		live, err := c.listDependents(ctx, m)
		if err != nil {
			return err
		}
		for _, d := range live {
			if isTrue(d.ref.BlockOwnerDeletion) {
				blocking++
			}
			if d.obj.GetDeletionTimestamp() == nil {
				c.enqueue(d.w, metaOf(d.obj))
			}
		}
	}
	if blocking > 0 {
		c.deps.Logger.Debug("waiting for dependents to go", "resource", w.name, "ns", m.Namespace, "name", m.Name, "blocking", blocking)
		return controller.RequeueAfter(c.deps.Recheck)
	}
	updated, err := c.updateObject(ctx, w, m.Namespace, m.Name, m.UID, nil, removeFinalizer(metav1.FinalizerDeleteDependents))
	if err != nil {
		return fmt.Errorf("remove the %s finalizer of %s %s: %w", metav1.FinalizerDeleteDependents, w.name, m.Name, err)
	}
	if updated != nil {
		c.deps.Logger.Info("dependents deleted; releasing the owner", "resource", w.name, "ns", m.Namespace, "name", m.Name)
	}
	return nil
}

// orphanDependents works for an owner deleted with propagationPolicy
// Orphan: it removes the owner's reference from every dependent, then lets
// the owner go.
func (c *Controller) orphanDependents(ctx context.Context, w *watched, m *metav1.PartialObjectMetadata) error {
	live, err := c.listDependents(ctx, m)
	if err != nil {
		return err
	}
	drop := dropOwnerRefs(map[types.UID]bool{m.UID: true})
	for _, d := range live {
		if _, err := c.updateObject(ctx, d.w, d.obj.GetNamespace(), d.obj.GetName(), d.obj.GetUID(), d.obj, drop); err != nil {
			return fmt.Errorf("orphan %s %s: %w", d.w.name, d.obj.GetName(), err)
		}
	}
	updated, err := c.updateObject(ctx, w, m.Namespace, m.Name, m.UID, nil, removeFinalizer(metav1.FinalizerOrphanDependents))
	if err != nil {
		return fmt.Errorf("remove the %s finalizer of %s %s: %w", metav1.FinalizerOrphanDependents, w.name, m.Name, err)
	}
	if updated != nil {
		c.deps.Logger.Info("orphaned dependents; releasing the owner", "resource", w.name, "ns", m.Namespace, "name", m.Name, "dependents", len(live))
	}
	return nil
}

// liveDependent is an object the API holds that names an owner.
type liveDependent struct {
	w   *watched
	obj *unstructured.Unstructured
	ref metav1.OwnerReference
}

// listDependents lists, in the API, the objects that name owner: in its
// namespace, or everywhere for a cluster-scoped owner.
func (c *Controller) listDependents(ctx context.Context, owner *metav1.PartialObjectMetadata) ([]liveDependent, error) {
	var out []liveDependent
	for _, w := range c.order {
		if owner.Namespace != "" && !c.kinds.isNamespaced(w.gvr.GroupResource()) {
			continue // cluster-scoped objects have no namespaced owners
		}
		list, err := c.deps.Dynamic.Resource(w.gvr).Namespace(owner.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", w.name, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			if it.GetUID() == owner.UID {
				continue // an object naming itself as its owner
			}
			if ref, ok := refTo(it.GetOwnerReferences(), owner.UID); ok {
				out = append(out, liveDependent{w: w, obj: it, ref: ref})
			}
		}
	}
	return out, nil
}

// updateObject applies change to the object ns/name of w in the API, if it
// still has uid, and returns the object written, or nil if it wrote
// nothing. first, if not nil, is a recent copy to try before reading the
// object; a conflict reads it again.
func (c *Controller) updateObject(ctx context.Context, w *watched, ns, name string, uid types.UID, first *unstructured.Unstructured,
	change func(*unstructured.Unstructured) bool) (*unstructured.Unstructured, error) {
	client := c.deps.Dynamic.Resource(w.gvr).Namespace(ns)
	var written *unstructured.Unstructured
	obj := first
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := obj
		obj = nil
		if cur == nil {
			o, err := client.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			cur = o
		}
		cur = cur.DeepCopy()
		if cur.GetUID() != uid || !change(cur) {
			return nil // replaced by another object, or nothing to do
		}
		out, err := client.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		written = out
		return nil
	})
	return written, err
}

// dropOwnerRefs removes the references to the owners in uids.
func dropOwnerRefs(uids map[types.UID]bool) func(*unstructured.Unstructured) bool {
	return func(o *unstructured.Unstructured) bool {
		refs := o.GetOwnerReferences()
		keep := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool { return uids[r.UID] })
		if len(keep) == len(refs) {
			return false
		}
		o.SetOwnerReferences(keep)
		return true
	}
}

// unblockOwnerRefs sets blockOwnerDeletion to false where it is true.
func unblockOwnerRefs(o *unstructured.Unstructured) bool {
	refs := o.GetOwnerReferences()
	changed := false
	for i := range refs {
		if isTrue(refs[i].BlockOwnerDeletion) {
			no := false
			refs[i].BlockOwnerDeletion = &no
			changed = true
		}
	}
	if changed {
		o.SetOwnerReferences(refs)
	}
	return changed
}

func removeFinalizer(f string) func(*unstructured.Unstructured) bool {
	return func(o *unstructured.Unstructured) bool {
		fins := o.GetFinalizers()
		keep := slices.DeleteFunc(slices.Clone(fins), func(x string) bool { return x == f })
		if len(keep) == len(fins) {
			return false
		}
		o.SetFinalizers(keep)
		return true
	}
}

// ownerNames says which owners refs name, for logs: "ReplicaSet/web-1".
func ownerNames(refs []metav1.OwnerReference) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Kind + "/" + r.Name
	}
	return strings.Join(names, ",")
}
