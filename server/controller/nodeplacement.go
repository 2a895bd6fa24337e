package controller

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
)

// NodeSelectionMatches reports whether node is one a pod with spec may run
// on by its nodeSelector and its required node affinity
// (requiredDuringSchedulingIgnoredDuringExecution): the node must have
// every nodeSelector label and satisfy at least one node selector term. A
// required affinity with no terms, or a term with no requirements, matches
// no node, as in Kubernetes. The scheduler and the DaemonSet controller
// share it so that both agree on where a pod may go.
func NodeSelectionMatches(spec *corev1.PodSpec, node *corev1.Node) bool {
	for k, v := range spec.NodeSelector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil {
		return true
	}
	required := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if required == nil {
		return true
	}
	for i := range required.NodeSelectorTerms {
		if nodeSelectorTermMatches(&required.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// nodeSelectorTermMatches reports whether node satisfies every requirement
// of term; a term with no requirements matches nothing.
func nodeSelectorTermMatches(term *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for i := range term.MatchExpressions {
		r := &term.MatchExpressions[i]
		v, ok := node.Labels[r.Key]
		if !nodeSelectorRequirementMatches(r, v, ok) {
			return false
		}
	}
	for i := range term.MatchFields {
		r := &term.MatchFields[i]
		// metadata.name is the one field nodes can be selected by.
		if r.Key != "metadata.name" || !nodeSelectorRequirementMatches(r, node.Name, true) {
			return false
		}
	}
	return true
}

// nodeSelectorRequirementMatches evaluates one requirement against the
// node's value for its key (present says whether the node has the key). A
// malformed requirement (Gt or Lt without exactly one integer, an unknown
// operator) matches nothing.
func nodeSelectorRequirementMatches(r *corev1.NodeSelectorRequirement, value string, present bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		want, err := strconv.ParseInt(r.Values[0], 10, 64)
		if err != nil {
			return false
		}
		got, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return got > want
		}
		return got < want
	}
	return false
}

// ToleratesTaint reports whether one of tolerations matches taint: the
// effect must agree (an empty one agrees with every effect), and the key
// and value must match by the operator (Equal when empty); Exists with an
// empty key matches every taint.
func ToleratesTaint(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		if toleratesTaint(&tolerations[i], taint) {
			return true
		}
	}
	return false
}

func toleratesTaint(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return tol.Key == "" || tol.Key == t.Key
	case corev1.TolerationOpEqual, "":
		return tol.Key == t.Key && tol.Value == t.Value
	}
	return false
}

// UnschedulableTaint is the taint a cordoned node (spec.unschedulable) is
// treated as having: pods that tolerate it, as DaemonSet pods do, may
// still go there.
var UnschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// UntoleratedTaint returns the first taint of node with the given effect
// that tolerations do not tolerate, counting a cordoned node as tainted
// with UnschedulableTaint.
func UntoleratedTaint(tolerations []corev1.Toleration, node *corev1.Node, effect corev1.TaintEffect) (corev1.Taint, bool) {
	if node.Spec.Unschedulable && effect == UnschedulableTaint.Effect && !ToleratesTaint(tolerations, &UnschedulableTaint) {
		return UnschedulableTaint, true
	}
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect == effect && !ToleratesTaint(tolerations, t) {
			return *t, true
		}
	}
	return corev1.Taint{}, false
}

// RevisionHash is a short, stable name for a pod template's content (FNV-1a
// over its JSON, encoded as Kubernetes encodes hashes), for the
// controller-revision-hash label that tells which pods were made from the
// current template. Equal templates always hash alike.
func RevisionHash(template *corev1.PodTemplateSpec) string {
	h := fnv.New32a()
	// Marshalling a PodTemplateSpec cannot fail: it holds no channels,
	// functions or unsupported map keys.
	b, _ := json.Marshal(template)
	_, _ = h.Write(b) // a hash.Hash never returns an error
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// DeleteOnMissingNode deletes pod at once (grace period 0) because the
// Node it is bound to no longer exists, so no agent will ever confirm that
// its containers stopped; it records SuccessfulDelete or FailedDelete on
// owner. A pod already gone is not an error.
func (c PodControl) DeleteOnMissingNode(ctx context.Context, pod *corev1.Pod, owner runtime.Object) error {
	uid := pod.UID
	zero := int64(0)
	err := c.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		if ctx.Err() == nil {
			c.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting pod %s of missing node %s: %v", pod.Name, pod.Spec.NodeName, err)
		}
		return err
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %s (its node %s no longer exists)", pod.Name, pod.Spec.NodeName)
	return nil
}
