package nodelifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReasonNodeNotReady is the reason of the Ready and ContainersReady
// conditions of pods on a failed node, and of the event recorded on them.
const ReasonNodeNotReady = "NodeNotReady"

// markPodsNotReady sets the Ready and ContainersReady conditions of the
// pods on a node that is not ready to False, so that Services stop sending
// them traffic. Pods that have not reported readiness yet, finished pods
// and pods already marked are left as they are.
func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, pods []*corev1.Pod) error {
	why := fmt.Sprintf("Node %s is %s", node.Name, describeStatus(readyStatus(node)))
	var errs []error
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		st, changed := notReadyStatus(pod.Status, metav1.NewTime(c.clock.Now()), why)
		if !changed {
			continue
		}
		p := pod.DeepCopy()
		p.Status = st
		_, err := c.deps.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case apierrors.IsConflict(err):
			// The pod changed meanwhile; its update event brings the
			// node back to this queue.
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("mark pod %s not ready: %w", podKey(pod), err))
			continue
		}
		c.deps.Logger.Info("pod marked not ready: its node is not ready", "pod", podKey(pod), "node", node.Name)
		c.recorder.Event(pod, corev1.EventTypeWarning, ReasonNodeNotReady, why)
	}
	return joinErrs(errs)
}

// notReadyStatus is st with Ready and ContainersReady False, and whether
// that changed anything. Only a pod that has a Ready condition (its agent
// reported on it) gets them.
func notReadyStatus(st corev1.PodStatus, now metav1.Time, msg string) (corev1.PodStatus, bool) {
	hasReady := false
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			hasReady = true
		}
	}
	if !hasReady {
		return st, false
	}
	out := *st.DeepCopy()
	changed := false
	for _, typ := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		want := corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: ReasonNodeNotReady, Message: msg, LastTransitionTime: now}
		i := -1
		for j := range out.Conditions {
			if out.Conditions[j].Type == typ {
				i = j
			}
		}
		switch {
		case i < 0:
			out.Conditions = append(out.Conditions, want)
			changed = true
		case out.Conditions[i].Status != corev1.ConditionFalse:
			want.LastProbeTime = out.Conditions[i].LastProbeTime
			out.Conditions[i] = want
			changed = true
		}
	}
	return out, changed
}

// describeStatus says what a node's Ready status means.
func describeStatus(s corev1.ConditionStatus) string {
	switch s {
	case corev1.ConditionTrue:
		return "ready"
	case corev1.ConditionFalse:
		return "not ready"
	}
	return "unreachable"
}
