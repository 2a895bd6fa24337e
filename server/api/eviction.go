package api

import (
	"net/http"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serveEviction evicts a pod: POST pods/NAME/eviction with a policy/v1
// Eviction, as client-go's Evict and kubectl drain send it. orch serves no
// PodDisruptionBudgets, so no budget is checked and no eviction is refused
// with 429: an eviction is the graceful delete its deleteOptions ask for
// (grace period, preconditions, dry run).
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
