package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"orch.dev/orch/raftstore"
)

// serveEviction evicts a pod: POST pods/NAME/eviction with a policy/v1
// Eviction, as client-go's Evict and kubectl drain send it. A pod that a
// PodDisruptionBudget selects is evicted only if the budget allows one
// more disruption (see checkBudget); otherwise the answer is 429 Too Many
// Requests and the client tries again later. An allowed eviction is the
// graceful delete its deleteOptions ask for (grace period, preconditions,
// dry run).
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	ev := &policyv1.Eviction{}
	if _, err := decodeBody(r.Header.Get("Content-Type"), body, ev, policyv1.SchemeGroupVersion.WithKind("Eviction"), "Strict"); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case ev.APIVersion != "" && ev.APIVersion != "policy/v1" && ev.APIVersion != "policy/v1beta1":
		writeError(w, badRequest("the API version in the data (%s) does not match the expected API version (policy/v1)", ev.APIVersion))
		return
	case ev.Kind != "" && ev.Kind != "Eviction":
		writeError(w, badRequest("the kind in the data (%s) does not match the expected kind (Eviction)", ev.Kind))
		return
	case ev.Name != ri.name:
		writeError(w, badRequest("name in URL does not match name in Eviction object"))
		return
	case ev.Namespace != "" && ev.Namespace != ri.namespace:
		writeError(w, badRequest("namespace in URL does not match namespace in Eviction object"))
		return
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if err := checkEvictionOptions(opts); err != nil {
		writeError(w, err)
		return
	}
	dry = dry || len(opts.DryRun) > 0
	if err := s.checkBudget(ctx, ri.resource, ri.namespace, ri.name, dry); err != nil {
		writeError(w, err)
		return
	}
	if _, _, err := s.deleteObject(ctx, ri.resource, ri.namespace, ri.name, opts, dry); err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

// checkEvictionOptions checks the deleteOptions of an eviction as a
// delete's are checked.
func checkEvictionOptions(opts *metav1.DeleteOptions) error {
	for _, d := range opts.DryRun {
		if d != metav1.DryRunAll {
			return badRequest("deleteOptions.dryRun must be All, not %q", d)
		}
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return badRequest("deleteOptions.gracePeriodSeconds must be zero or positive, not %d", *opts.GracePeriodSeconds)
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return badRequest("deleteOptions.propagationPolicy must be Background, Foreground or Orphan, not %q", *p)
		}
		//lint:ignore SA1019 old clients still send orphanDependents
		if opts.OrphanDependents != nil {
			return badRequest("deleteOptions.orphanDependents and propagationPolicy may not both be set")
		}
	}
	return nil
}

// checkBudget decides an eviction against the PodDisruptionBudget that
// selects the pod, as Kubernetes does: none, or a pod that is already
// finished or being deleted, needs no budget; a pod that is not ready may
// go when the budget is healthy (or its unhealthyPodEvictionPolicy is
// AlwaysAllow); a ready pod takes one of the budget's disruptionsAllowed,
// recorded in status.disruptedPods in the same compare-and-swap write, so
// concurrent evictions cannot overdraw it. Several budgets selecting one
// pod are refused, as in Kubernetes.
func (s *Server) checkBudget(ctx context.Context, pods *resource, ns, name string, dry bool) error {
	_, obj, err := s.current(ctx, pods, ns, name, 0)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	pdbRes := s.reg.byKind[policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")]
	budgets, err := s.selectingBudgets(ctx, pdbRes, pod)
	if err != nil || len(budgets) == 0 {
		return err
	}
	if len(budgets) > 1 {
		// Kubernetes' own wording, which clients may match on.
		return apierrors.NewInternalError(errMultipleBudgets)
	}
	_, _, err = s.guaranteedUpdate(ctx, pdbRes, ns, budgets[0], 0, dry, func(cur object) (object, []string, error) {
		pdb := cur.DeepCopyObject().(*policyv1.PodDisruptionBudget)
		if pdb.Status.ObservedGeneration < pdb.Generation {
			return nil, nil, tooManyRequests(fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget %s is still being processed by the server.", pdb.Name))
		}
		if !podReady(pod) {
			if p := pdb.Spec.UnhealthyPodEvictionPolicy; (p != nil && *p == policyv1.AlwaysAllow) || pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy {
				return cur, nil, nil // unchanged: no write
			}
			return nil, nil, tooManyRequests(fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
		}
		if pdb.Status.DisruptionsAllowed <= 0 {
			return nil, nil, tooManyRequests(fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
		}
		if len(pdb.Status.DisruptedPods) > 2000 {
			return nil, nil, tooManyRequests("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
		}
		pdb.Status.DisruptionsAllowed--
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[pod.Name] = s.nowTime()
		return pdb, nil, nil
	})
	return err
}

//lint:ignore ST1005 Kubernetes' own wording, which clients may match on
var errMultipleBudgets = errors.New("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")

// selectingBudgets names the budgets of the pod's namespace whose selector
// matches the pod (a nil selector matches nothing, an empty one all).
func (s *Server) selectingBudgets(ctx context.Context, pdbRes *resource, pod *corev1.Pod) ([]string, error) {
	kvs, _, _, err := s.store.List(ctx, pdbRes.prefix(pod.Namespace), raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		return nil, storeError(err)
	}
	var out []string
	for _, kv := range kvs {
		obj, err := decodeStored(pdbRes, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		pdb := obj.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb.Name)
	}
	return out, nil
}

func podReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// tooManyRequests is the 429 an eviction gets when a budget stands in its
// way, with the cause kubectl drain recognises.
func tooManyRequests(msg string) error {
	err := apierrors.NewTooManyRequests(msg, 0) // no Retry-After: clients would wait it out silently
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: "DisruptionBudget", Message: msg})
	return err
}
