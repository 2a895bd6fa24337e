//lint:file-ignore SA1019 orphanDependents is deprecated but old clients still send it; the API accepts it as Kubernetes does.

package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"orch.dev/orch/raftstore"
)

// Namespaces that exist from the start and may not be deleted.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// parseDeleteOptions reads DeleteOptions from the body (if any) and the
// query parameters Kubernetes clients also use.
func parseDeleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		if _, err := decodeBody(r.Header.Get("Content-Type"), body, opts, schema.GroupVersionKind{Kind: "DeleteOptions"}, "Strict"); err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badRequest("gracePeriodSeconds %q must be an integer", v)
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := isTrue(v)
		opts.OrphanDependents = &b
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return nil, badRequest("gracePeriodSeconds must be zero or positive, not %d", *opts.GracePeriodSeconds)
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return nil, badRequest("propagationPolicy must be Background, Foreground or Orphan, not %q", *p)
		}
		if opts.OrphanDependents != nil {
			return nil, badRequest("orphanDependents and propagationPolicy may not both be set")
		}
	}
	return opts, nil
}

// propagation is the request's propagation policy; Background when unset.
func propagation(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	switch {
	case opts.PropagationPolicy != nil:
		return *opts.PropagationPolicy
	case opts.OrphanDependents != nil && *opts.OrphanDependents:
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

// propagationFinalizer is the finalizer that keeps a propagation policy on
// the object for the garbage collector, as Kubernetes does: Orphan and
// Foreground deletions wait for it to act on the dependents.
func propagationFinalizer(opts *metav1.DeleteOptions) string {
	switch propagation(opts) {
	case metav1.DeletePropagationOrphan:
		return metav1.FinalizerOrphanDependents
	case metav1.DeletePropagationForeground:
		return metav1.FinalizerDeleteDependents
	}
	return ""
}

// deleteObject deletes one object, or starts its graceful deletion.
func (s *Server) deleteObject(ctx context.Context, res *resource, ns, name string, opts *metav1.DeleteOptions, dry bool) ([]byte, int, error) {
	var minRev int64
	for attempt := 0; attempt < 20; attempt++ {
		kv, cur, err := s.current(ctx, res, ns, name, minRev)
		if err != nil {
			return nil, 0, err
		}
		if pc := opts.Preconditions; pc != nil {
			if pc.UID != nil && *pc.UID != cur.GetUID() {
				return nil, 0, apierrors.NewConflict(res.gr(), name, fmt.Errorf("precondition failed: UID in precondition: %s, UID in object meta: %s", *pc.UID, cur.GetUID()))
			}
			if pc.ResourceVersion != nil && *pc.ResourceVersion != cur.GetResourceVersion() {
				return nil, 0, apierrors.NewConflict(res.gr(), name, fmt.Errorf("precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", *pc.ResourceVersion, cur.GetResourceVersion()))
			}
		}
		next, remove, err := s.deletionStep(res, cur, opts)
		if err != nil {
			return nil, 0, err
		}
		key := res.key(ns, name)
		var op raftstore.Op
		var stored []byte
		if remove {
			op = raftstore.Op{Type: raftstore.OpDelete, Key: key}
			stored = kv.Value
		} else {
			if next == nil {
				// Already being deleted and nothing to change.
				return withRV(kv.Value, kv.ModRevision), http.StatusOK, nil
			}
			stored, err = encodeForStore(res, next)
			if err != nil {
				return nil, 0, apierrors.NewInternalError(err)
			}
			op = raftstore.Op{Type: raftstore.OpPut, Key: key, Value: stored}
		}
		if dry {
			return withRV(stored, kv.ModRevision), http.StatusOK, nil
		}
		txn := &raftstore.Txn{Compares: []raftstore.Compare{{Key: key, ModRevision: kv.ModRevision}}, Ops: []raftstore.Op{op}}
		if svc, ok := cur.(*corev1.Service); ok && remove {
			// The Service's cluster IP and node ports go with it.
			releaseService(svc).addTo(txn)
		}
		out, err := s.storeTxn(ctx, txn)
		if err != nil {
			return nil, 0, storeError(err)
		}
		if out.Succeeded {
			code := http.StatusOK
			if !remove {
				code = http.StatusAccepted
			}
			return withRV(stored, out.Revision), code, nil
		}
		minRev = out.Revision
	}
	return nil, 0, apierrors.NewConflict(res.gr(), name, fmt.Errorf("too many concurrent writers; try again"))
}

// deletionStep decides what a delete does to cur: remove it now, or mark it
// with a deletionTimestamp (returned as next) and leave the rest to its
// finalizers or, for a pod, to the node that stops its containers. A nil
// next without remove means nothing changes.
func (s *Server) deletionStep(res *resource, cur object, opts *metav1.DeleteOptions) (next object, remove bool, err error) {
	now := s.nowTime()
	switch o := cur.(type) {
	case *corev1.Namespace:
		if protectedNamespaces[o.Name] {
			return nil, false, apierrors.NewForbidden(res.gr(), o.Name, fmt.Errorf("this namespace may not be deleted"))
		}
		if len(o.Spec.Finalizers) == 0 && len(o.Finalizers) == 0 {
			return nil, true, nil
		}
		if o.DeletionTimestamp != nil {
			return nil, false, nil
		}
		n := o.DeepCopy()
		n.DeletionTimestamp = &now
		zero := int64(0)
		n.DeletionGracePeriodSeconds = &zero
		n.Status.Phase = corev1.NamespaceTerminating
		return n, false, nil
	case *corev1.Pod:
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if o.Spec.TerminationGracePeriodSeconds != nil {
			grace = *o.Spec.TerminationGracePeriodSeconds
		}
		if opts.GracePeriodSeconds != nil {
			grace = *opts.GracePeriodSeconds
		}
		// Nothing runs a pod that is not on a node or has finished.
		if o.Spec.NodeName == "" || o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed {
			grace = 0
		}
		if grace > 0 {
			if o.DeletionGracePeriodSeconds != nil && *o.DeletionGracePeriodSeconds <= grace {
				return nil, false, nil // a shorter deadline is already running
			}
			n := o.DeepCopy()
			at := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			n.DeletionTimestamp = &at
			n.DeletionGracePeriodSeconds = &grace
			return n, false, nil
		}
	}
	finalizers := cur.GetFinalizers()
	add := propagationFinalizer(opts)
	if add != "" && slices.Contains(finalizers, add) {
		add = ""
	}
	if len(finalizers) == 0 && add == "" {
		return nil, true, nil
	}
	if cur.GetDeletionTimestamp() != nil && add == "" {
		if g := cur.GetDeletionGracePeriodSeconds(); g == nil || *g == 0 {
			return nil, false, nil
		}
	}
	n := cur.DeepCopyObject().(object)
	if n.GetDeletionTimestamp() == nil {
		n.SetDeletionTimestamp(&now)
	}
	if add != "" {
		n.SetFinalizers(append(slices.Clone(finalizers), add))
	}
	zero := int64(0)
	n.SetDeletionGracePeriodSeconds(&zero)
	return n, false, nil
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	opts, err := parseDeleteOptions(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out, code, err := s.deleteObject(ctx, ri.resource, ri.namespace, ri.name, opts, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, code, out)
}

// serveDeleteCollection deletes every object a list with the same
// selectors would return.
func (s *Server) serveDeleteCollection(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	p, err := parseListParams(r, ri.resource)
	if err != nil {
		writeError(w, err)
		return
	}
	opts, err := parseDeleteOptions(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	p.limit, p.cont = 0, ""
	items, _, _, err := s.listItems(ctx, ri, p)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	var deleted [][]byte
	var rev int64
	for _, it := range items {
		meta, err := decodeSelectable(it)
		if err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		out, _, err := s.deleteObject(ctx, ri.resource, meta.Metadata.Namespace, meta.Metadata.Name, opts, dry)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		deleted = append(deleted, out)
	}
	rev = s.store.Revision()
	writeJSON(w, http.StatusOK, encodeList(ri.resource, rev, "", deleted))
}
