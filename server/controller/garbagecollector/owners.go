package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
)

// errUnknownKind is an owner reference to a kind the API does not serve:
// the collector cannot tell whether such an owner exists.
var errUnknownKind = errors.New("garbagecollector: owner kind not served")

// target is where objects of one kind live.
type target struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// kindTable resolves an owner reference's apiVersion and kind to a
// resource, from the API's discovery documents.
type kindTable struct {
	byGVK map[schema.GroupVersionKind]target
	// byGK is the first version discovery lists for a kind, for references
	// written with a version the API no longer serves.
	byGK       map[schema.GroupKind]target
	namespaced map[schema.GroupResource]bool
	gvrs       map[schema.GroupVersionResource]bool
}

func loadKinds(d discovery.DiscoveryInterface) (*kindTable, error) {
	_, lists, err := d.ServerGroupsAndResources()
	if err != nil {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	k := &kindTable{byGVK: map[schema.GroupVersionKind]target{}, byGK: map[schema.GroupKind]target{},
		namespaced: map[schema.GroupResource]bool{}, gvrs: map[schema.GroupVersionResource]bool{}}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discover resources: %w", err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			t := target{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced}
			gvk := gv.WithKind(r.Kind)
			k.byGVK[gvk] = t
			if _, ok := k.byGK[gvk.GroupKind()]; !ok {
				k.byGK[gvk.GroupKind()] = t
			}
			k.namespaced[t.gvr.GroupResource()] = r.Namespaced
			k.gvrs[t.gvr] = true
		}
	}
	return k, nil
}

func (k *kindTable) lookup(apiVersion, kind string) (target, bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return target{}, false
	}
	if t, ok := k.byGVK[gv.WithKind(kind)]; ok {
		return t, true
	}
	t, ok := k.byGK[schema.GroupKind{Group: gv.Group, Kind: kind}]
	return t, ok
}

// served reports whether the API serves gvr.
func (k *kindTable) served(gvr schema.GroupVersionResource) bool { return k.gvrs[gvr] }

// isNamespaced reports whether objects of gr live in namespaces; a
// resource discovery does not list is taken as namespaced.
func (k *kindTable) isNamespaced(gr schema.GroupResource) bool {
	n, ok := k.namespaced[gr]
	return n || !ok
}

// ownerState is what one owner reference means for its dependent.
type ownerState int

const (
	// solid: the owner exists and does not wait for its dependents.
	solid ownerState = iota
	// gone: no object of that kind, name and UID exists.
	gone
	// waiting: the owner is being deleted in the foreground and waits
	// for its dependents to go first.
	waiting
)

func stateOf(deletion *metav1.Time, finalizers []string) ownerState {
	if deletion != nil && hasFinalizer(finalizers, metav1.FinalizerDeleteDependents) {
		return waiting
	}
	return solid
}

// ownerState looks ref, an owner of dependent, up: in the informers first,
// then, if they do not have it, in the API, which alone may say the owner
// is gone (the informers may not have seen it yet).
func (c *Controller) ownerState(ctx context.Context, dependent *metav1.PartialObjectMetadata, ref metav1.OwnerReference) (ownerState, error) {
	t, ok := c.kinds.lookup(ref.APIVersion, ref.Kind)
	if !ok {
		return solid, fmt.Errorf("%w: %s %s", errUnknownKind, ref.APIVersion, ref.Kind)
	}
	ns := ""
	if t.namespaced {
		if dependent.Namespace == "" {
			// A cluster-scoped object cannot have a namespaced owner;
			// Kubernetes treats such an owner as absent.
			return gone, nil
		}
		ns = dependent.Namespace
	}
	absentKey := absentKey(ns, ref.UID)
	if _, ok := c.absent.Get(absentKey); ok {
		return gone, nil
	}
	if w := c.watched[t.gvr.GroupResource().String()]; w != nil {
		if o := w.get(ns, ref.Name); o != nil && o.UID == ref.UID {
			return stateOf(o.DeletionTimestamp, o.Finalizers), nil
		}
	}
	o, err := c.deps.Dynamic.Resource(t.gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.absent.Add(absentKey, true)
		return gone, nil
	case err != nil:
		return solid, fmt.Errorf("get owner %s %s: %w", ref.Kind, ref.Name, err)
	case o.GetUID() != ref.UID:
		c.absent.Add(absentKey, true)
		return gone, nil
	}
	return stateOf(o.GetDeletionTimestamp(), o.GetFinalizers()), nil
}

// absentKey names an owner confirmed gone. The namespace is part of it: a
// reference from another namespace to the UID of an existing object does
// not find it, yet that object exists for its own dependents.
func absentKey(ns string, uid types.UID) string {
	return ns + "/" + string(uid)
}

func refTo(refs []metav1.OwnerReference, uid types.UID) (metav1.OwnerReference, bool) {
	for _, r := range refs {
		if r.UID == uid {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}

func hasFinalizer(finalizers []string, f string) bool {
	for _, x := range finalizers {
		if x == f {
			return true
		}
	}
	return false
}

func isTrue(b *bool) bool { return b != nil && *b }
