package api

import (
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patchType reads the patch type from the Content-Type header.
func patchType(r *http.Request) (types.PatchType, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = ct
	}
	switch types.PatchType(mt) {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return types.PatchType(mt), nil
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return "", unsupportedMediaType(mt + ": server-side apply is not supported by orch; use client-side apply (orchctl apply)")
	}
	return "", unsupportedMediaType(mt + ": use application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json")
}

func unsupportedMediaType(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: "unsupported patch type " + msg,
	}}
}

func unprocessable(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid, Message: msg,
	}}
}

// applyPatch applies a patch document of type pt to original. schema is a
// typed value, used by strategic merge patches for their merge keys.
func applyPatch(pt types.PatchType, original, patch []byte, schema any) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, badRequest("invalid JSON patch: %v", err)
		}
		out, err := p.Apply(original)
		if err != nil {
			return nil, unprocessable("the JSON patch could not be applied: " + err.Error())
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, badRequest("invalid merge patch: %v", err)
		}
		return out, nil
	case types.StrategicMergePatchType:
		out, err := strategicpatch.StrategicMergePatch(original, patch, schema)
		if err != nil {
			return nil, badRequest("invalid strategic merge patch: %v", err)
		}
		return out, nil
	}
	return nil, unsupportedMediaType(string(pt))
}

func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res := ri.resource
	pt, err := patchType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	fv, err := fieldValidation(r)
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	patch, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var decodeWarnings []string
	out, warnings, err := s.guaranteedUpdate(ctx, res, ri.namespace, ri.name, 0, dry, func(cur object) (object, []string, error) {
		original, err := encodeForStore(res, cur.DeepCopyObject().(object))
		if err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		original = withRV(original, mustRV(cur))
		patched, err := applyPatch(pt, original, patch, res.newObj())
		if err != nil {
			return nil, nil, err
		}
		obj, warn, err := decodeObject(res, patched, fv)
		if err != nil {
			return nil, nil, err
		}
		decodeWarnings = warn
		// A patch that sets metadata.resourceVersion makes it a precondition.
		if obj.GetResourceVersion() != cur.GetResourceVersion() {
			return nil, nil, conflict(res, ri.name)
		}
		if err := checkIdentity(ri, obj); err != nil {
			return nil, nil, err
		}
		return s.update(res, obj, cur, ri.subresource)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	addWarnings(w, append(decodeWarnings, warnings...))
	writeWritten(w, r, http.StatusOK, out)
}

func mustRV(obj object) int64 {
	n, _ := parseRV(obj.GetResourceVersion()) // set by decodeStored from the store revision
	return n
}
