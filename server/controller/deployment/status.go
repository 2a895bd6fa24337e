package deployment

import (
	"context"
	"fmt"
	"math"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/controller"
)

// Condition reasons, as in Kubernetes.
const (
	ReasonNewRSCreated       = "NewReplicaSetCreated"
	ReasonFoundNewRS         = "FoundNewReplicaSet"
	ReasonRSUpdated          = "ReplicaSetUpdated"
	ReasonNewRSAvailable     = "NewReplicaSetAvailable"
	ReasonTimedOut           = "ProgressDeadlineExceeded"
	ReasonPaused             = "DeploymentPaused"
	ReasonResumed            = "DeploymentResumed"
	ReasonFailedRSCreate     = "ReplicaSetCreateError"
	ReasonMinimumAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable = "MinimumReplicasUnavailable"
)

func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: ts, LastTransitionTime: ts}
}

func getCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets a condition, keeping the one present when status and
// reason are the same, and its transition time when only the reason
// changes.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(*st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var keep []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			keep = append(keep, c)
		}
	}
	st.Conditions = keep
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

func progressDeadline(d *appsv1.Deployment) time.Duration {
	return time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
}

// calculateStatus counts the replicas of the Deployment's ReplicaSets and
// sets the Available condition; other conditions are carried over.
func (c *Controller) calculateStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	var replicas, ready, available int32
	for _, rs := range all {
		if rs == nil {
			continue
		}
		replicas += rs.Status.Replicas
		ready += rs.Status.ReadyReplicas
		available += rs.Status.AvailableReplicas
	}
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            replicas,
		ReadyReplicas:       ready,
		AvailableReplicas:   available,
		UnavailableReplicas: max(specReplicas(all)-available, 0),
		CollisionCount:      d.Status.CollisionCount,
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.Conditions = append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...)
	now := c.clock.Now()
	if available >= replicasOf(d.Spec.Replicas)-maxUnavailable(d) {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumUnavailable, "Deployment does not have minimum availability.", now))
	}
	// A ReplicaSet that cannot create or delete pods makes the
	// Deployment's ReplicaFailure condition.
	var failure *appsv1.ReplicaSetCondition
	for _, rs := range all {
		if rs == nil {
			continue
		}
		for i := range rs.Status.Conditions {
			if rc := &rs.Status.Conditions[i]; rc.Type == appsv1.ReplicaSetReplicaFailure && rc.Status == corev1.ConditionTrue {
				failure = rc
			}
		}
	}
	if failure != nil {
		setCondition(&st, newCondition(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, failure.Reason, failure.Message, now))
	} else {
		removeCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	return st
}

// deploymentComplete reports whether every replica runs the current
// template and is available, and the status is of the current spec.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	want := replicasOf(d.Spec.Replicas)
	return st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want && st.ObservedGeneration >= d.Generation
}

// deploymentProgressing reports whether st moved forward from the
// Deployment's stored status: more updated, ready or available replicas,
// or fewer old ones.
func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// deploymentTimedOut reports whether the rollout has made no progress for
// the progress deadline.
func (c *Controller) deploymentTimedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	cond := getCondition(*st, appsv1.DeploymentProgressing)
	if cond == nil {
		return false
	}
	switch cond.Reason {
	case ReasonNewRSAvailable:
		return false
	case ReasonTimedOut:
		return true
	}
	return cond.LastUpdateTime.Add(progressDeadline(d)).Before(c.clock.Now())
}

// syncStatusOnly writes the replica counts and Available condition.
func (c *Controller) syncStatusOnly(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet) error {
	var newRS *appsv1.ReplicaSet
	if len(all) > 0 {
		newRS = findNewReplicaSet(d, all)
	}
	st := c.calculateStatus(d, all, newRS)
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	d.Status = st
	return c.writeStatus(ctx, d)
}

// checkPausedConditions records pausing and resuming in the Progressing
// condition; a resume restarts the progress deadline.
func (c *Controller) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == ReasonTimedOut {
		return nil
	}
	pausedShown := cond != nil && cond.Reason == ReasonPaused
	switch {
	case d.Spec.Paused && !pausedShown:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", c.clock.Now()))
	case !d.Spec.Paused && pausedShown:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", c.clock.Now()))
	default:
		return nil
	}
	return c.writeStatus(ctx, d)
}

// syncRolloutStatus writes the status of a rollout with its Progressing
// condition, marks a new ReplicaSet that became fully available, rolls a
// rollout that passed its progress deadline back when it should, and
// returns a RequeueAfter for the moment the deadline passes.
func (c *Controller) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	st := c.calculateStatus(d, all, newRS)
	if !hasProgressDeadline(d) {
		removeCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := getCondition(st, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewRSAvailable
	if hasProgressDeadline(d) && !complete {
		now := c.clock.Now()
		switch {
		case deploymentComplete(d, &st):
			msg := fmt.Sprintf("Deployment %q has successfully progressed.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
			}
			setCondition(&st, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSAvailable, msg, now))
		case deploymentProgressing(d, &st):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			cond := newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, msg, now)
			// Progress moves the deadline: the update time changes even
			// though the condition stays True.
			if cur != nil && cur.Status == corev1.ConditionTrue {
				cond.LastTransitionTime = cur.LastTransitionTime
			}
			removeCondition(&st, appsv1.DeploymentProgressing)
			setCondition(&st, cond)
		case c.deploymentTimedOut(d, &st):
			msg := fmt.Sprintf("Deployment %q has timed out progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
			}
			setCondition(&st, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonTimedOut, msg, now))
		}
	}

	if err := c.markAvailable(ctx, d, &st, newRS); err != nil {
		return err
	}
	// Only the sync that finds the deadline passed rolls back: a
	// Deployment already marked timed out was judged before (and a
	// revision the user went back to meanwhile gets no automatic
	// rollback from an older verdict). The rollback goes first so that
	// whoever watches the Deployment sees it no later than the condition
	// that caused it, and a failed rollback is retried.
	before := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cond := getCondition(st, appsv1.DeploymentProgressing); cond != nil && cond.Reason == ReasonTimedOut && (before == nil || before.Reason != ReasonTimedOut) {
		if err := c.autoRollback(ctx, d, newRS, old); err != nil {
			return err
		}
	}
	if !apiequality.Semantic.DeepEqual(d.Status, st) {
		d.Status = st
		if err := c.writeStatus(ctx, d); err != nil {
			return err
		}
	}
	if after, ok := c.untilDeadline(d, &st); ok {
		return controller.RequeueAfter(after)
	}
	return nil
}

// untilDeadline is how long until a rollout in progress passes its
// progress deadline, measured on the controller's clock.
func (c *Controller) untilDeadline(d *appsv1.Deployment, st *appsv1.DeploymentStatus) (time.Duration, bool) {
	cond := getCondition(*st, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cond == nil || cond.Reason == ReasonTimedOut || cond.Reason == ReasonNewRSAvailable || deploymentComplete(d, st) {
		return 0, false
	}
	after := cond.LastUpdateTime.Add(progressDeadline(d)).Sub(c.clock.Now())
	// Condition times are stored to the second; look a little after the
	// deadline so that it has passed when the sync runs.
	return max(after, 0) + 500*time.Millisecond, true
}
