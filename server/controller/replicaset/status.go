package replicaset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"orch.dev/orch/server/controller"
)

// counts is the replica status the two kinds share.
type counts struct {
	replicas, fullyLabeled, ready, available int32
	observedGeneration                       int64
	// failure is the ReplicaFailure condition's message; empty when the
	// last sync could create and delete what it had to.
	failure string
}

func (c *Controller) countsOf(o *owner, owned []*corev1.Pod, manageErr error) counts {
	now := c.deps.Clock.Now()
	out := counts{replicas: int32(len(owned)), observedGeneration: o.meta.GetGeneration()}
	var templateLabels labels.Selector = labels.Everything()
	if o.template != nil {
		templateLabels = labels.SelectorFromSet(o.template.Labels)
	}
	for _, p := range owned {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			out.fullyLabeled++
		}
		if controller.IsPodReady(p) {
			out.ready++
		}
		if controller.IsPodAvailable(p, o.minReadySeconds, now) {
			out.available++
		}
	}
	if manageErr != nil && !apierrors.IsConflict(manageErr) {
		out.failure = manageErr.Error()
	}
	return out
}

// updateStatus writes the owner's status when it changed.
func (c *Controller) updateStatus(ctx context.Context, o *owner, owned []*corev1.Pod, manageErr error) error {
	n := c.countsOf(o, owned, manageErr)
	now := metav1.NewTime(c.deps.Clock.Now())
	switch obj := o.obj.(type) {
	case *appsv1.ReplicaSet:
		st := appsv1.ReplicaSetStatus{Replicas: n.replicas, FullyLabeledReplicas: n.fullyLabeled, ReadyReplicas: n.ready,
			AvailableReplicas: n.available, ObservedGeneration: n.observedGeneration}
		st.Conditions = failureCondition(obj.Status.Conditions, n.failure, now,
			func(c appsv1.ReplicaSetCondition) (string, corev1.ConditionStatus, string, string) {
				return string(c.Type), c.Status, c.Reason, c.Message
			},
			func(status corev1.ConditionStatus, reason, msg string, t metav1.Time) appsv1.ReplicaSetCondition {
				return appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: status, Reason: reason, Message: msg, LastTransitionTime: t}
			})
		if equalRSStatus(obj.Status, st) {
			return nil
		}
		next := obj.DeepCopy()
		next.Status = st
		_, err := c.deps.Client.AppsV1().ReplicaSets(obj.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return ignoreGone(err)
	case *corev1.ReplicationController:
		st := corev1.ReplicationControllerStatus{Replicas: n.replicas, FullyLabeledReplicas: n.fullyLabeled, ReadyReplicas: n.ready,
			AvailableReplicas: n.available, ObservedGeneration: n.observedGeneration}
		st.Conditions = failureCondition(obj.Status.Conditions, n.failure, now,
			func(c corev1.ReplicationControllerCondition) (string, corev1.ConditionStatus, string, string) {
				return string(c.Type), c.Status, c.Reason, c.Message
			},
			func(status corev1.ConditionStatus, reason, msg string, t metav1.Time) corev1.ReplicationControllerCondition {
				return corev1.ReplicationControllerCondition{Type: corev1.ReplicationControllerReplicaFailure, Status: status, Reason: reason, Message: msg, LastTransitionTime: t}
			})
		if equalRCStatus(obj.Status, st) {
			return nil
		}
		next := obj.DeepCopy()
		next.Status = st
		_, err := c.deps.Client.CoreV1().ReplicationControllers(obj.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return ignoreGone(err)
	}
	return nil
}

// failureCondition keeps the ReplicaFailure condition in step with the last
// sync: set (reason FailedCreate) while creating or deleting pods fails,
// dropped once it works again. Other conditions are kept.
func failureCondition[C any](cur []C, failure string, now metav1.Time,
	get func(C) (string, corev1.ConditionStatus, string, string),
	mk func(corev1.ConditionStatus, string, string, metav1.Time) C) []C {
	var out []C
	var had *C
	for i := range cur {
		if t, _, _, _ := get(cur[i]); t == "ReplicaFailure" {
			had = &cur[i]
			continue
		}
		out = append(out, cur[i])
	}
	if failure == "" {
		return out
	}
	if had != nil {
		if _, status, _, msg := get(*had); status == corev1.ConditionTrue && msg == failure {
			return append(out, *had)
		}
	}
	return append(out, mk(corev1.ConditionTrue, controller.ReasonFailedCreate, failure, now))
}

func equalRSStatus(a, b appsv1.ReplicaSetStatus) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i] != b.Conditions[i] {
			return false
		}
	}
	return true
}

func equalRCStatus(a, b corev1.ReplicationControllerStatus) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i] != b.Conditions[i] {
			return false
		}
	}
	return true
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
