package nodelifecycle

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The taints that say a node failed, as Kubernetes names them.
var (
	notReadyTaint    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
)

// isLifecycleTaint reports whether t is one of the taints this controller
// owns: not-ready or unreachable, NoExecute.
func isLifecycleTaint(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoExecute && (t.Key == notReadyTaint.Key || t.Key == unreachableTaint.Key)
}

// wantedTaint is the lifecycle taint a node with Ready status should carry:
// none when Ready is True.
func wantedTaint(status corev1.ConditionStatus) *corev1.Taint {
	switch status {
	case corev1.ConditionTrue:
		return nil
	case corev1.ConditionFalse:
		return &notReadyTaint
	}
	return &unreachableTaint
}

// taintsFor returns the node's taints with the lifecycle taints made to
// match its Ready condition, and whether that changed anything. A taint
// that stays keeps its timeAdded; a new one is added at now.
func taintsFor(n *corev1.Node, now metav1.Time) ([]corev1.Taint, bool) {
	status, known := readyCondition(n)
	if !known {
		return n.Spec.Taints, false
	}
	want := wantedTaint(status)
	var out []corev1.Taint
	has, changed := false, false
	for _, t := range n.Spec.Taints {
		switch {
		case !isLifecycleTaint(&t):
		case want != nil && t.Key == want.Key && !has:
			has = true
		default:
			changed = true
			continue
		}
		out = append(out, t)
	}
	if want != nil && !has {
		t := *want
		t.TimeAdded = &now
		out = append(out, t)
		changed = true
	}
	return out, changed
}

// reconcileTaints gives the node the lifecycle taint its Ready condition
// calls for and removes the other. It returns the node as written (or as
// it was, when nothing changed), or nil when the node is gone.
func (c *Controller) reconcileTaints(ctx context.Context, n *corev1.Node) (*corev1.Node, error) {
	if _, changed := taintsFor(n, metav1.Time{}); !changed {
		return n, nil
	}
	nodes := c.deps.Client.CoreV1().Nodes()
	cur := n
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		// Decide from the latest Node, not from the informer's copy,
		// which may lag behind this controller's own writes.
		fresh, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints, changed := taintsFor(fresh, metav1.NewTime(c.clock.Now()))
		if !changed {
			cur = fresh
			return nil
		}
		before := fresh.Spec.Taints
		fresh = fresh.DeepCopy()
		fresh.Spec.Taints = taints
		out, err := nodes.Update(ctx, fresh, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		c.recordTaintChange(out, before)
		cur = out
		return nil
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// recordTaintChange logs and records on the Node what happened to its
// lifecycle taints.
func (c *Controller) recordTaintChange(n *corev1.Node, before []corev1.Taint) {
	had := map[string]bool{}
	for _, t := range before {
		if isLifecycleTaint(&t) {
			had[t.Key] = true
		}
	}
	var now []string
	for _, t := range n.Spec.Taints {
		if isLifecycleTaint(&t) {
			if !had[t.Key] {
				now = append(now, t.Key)
			}
			delete(had, t.Key)
		}
	}
	for _, key := range now {
		c.deps.Logger.Warn("node tainted: pods without a toleration will be evicted", "node", n.Name, "taint", key+":NoExecute")
		c.recorder.Eventf(n, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: %s; added taint %s:NoExecute", n.Name, statusWord(n), key)
	}
	for key := range had {
		c.deps.Logger.Info("node taint removed", "node", n.Name, "taint", key+":NoExecute")
		if len(now) == 0 {
			c.recorder.Eventf(n, corev1.EventTypeNormal, "NodeReady", "Node %s status is now: NodeReady; removed taint %s:NoExecute", n.Name, key)
		}
	}
}

// statusWord says a node's readiness the way Kubernetes' node events do.
func statusWord(n *corev1.Node) string {
	switch readyStatus(n) {
	case corev1.ConditionTrue:
		return "NodeReady"
	case corev1.ConditionFalse:
		return "NodeNotReady"
	}
	return "NodeUnreachable"
}
