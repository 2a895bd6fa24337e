package deployment

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RollbackTo makes rs's revision current again, as `rollout undo` does:
// d's pod template becomes rs's without the pod-template-hash label, and
// d's annotations become rs's (the change-cause of that revision, say),
// except those that describe d's own state, which d keeps. The record of an
// earlier automatic rollback is dropped. The controller then finds rs as
// the ReplicaSet of the current template and gives it a new revision.
func RollbackTo(d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, PodTemplateHashLabel)
	if len(tmpl.Labels) == 0 {
		tmpl.Labels = nil
	}
	d.Spec.Template = *tmpl
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if skipAnnotation(k) {
			annotations[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !skipAnnotation(k) {
			annotations[k] = v
		}
	}
	clearAutoRollback(annotations)
	d.Annotations = annotations
}

// markAvailable marks the new ReplicaSet once the Deployment is complete
// with it: every replica updated and available. Marked revisions are the
// ones automatic rollback goes back to.
func (c *Controller) markAvailable(ctx context.Context, d *appsv1.Deployment, st *appsv1.DeploymentStatus, newRS *appsv1.ReplicaSet) error {
	if newRS == nil || newRS.Annotations[AvailableAnnotation] == "true" || replicasOf(d.Spec.Replicas) == 0 || !deploymentComplete(d, st) {
		return nil
	}
	cp := newRS.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[AvailableAnnotation] = "true"
	if _, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark replica set %s available: %w", cp.Name, err)
	}
	c.log.Debug("revision fully available", "ns", d.Namespace, "deployment", d.Name, "replicaset", cp.Name, "rev", Revision(cp))
	return nil
}

// lastAvailable is the newest old ReplicaSet that was ever fully
// available, or nil.
func lastAvailable(d *appsv1.Deployment, old []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	var best *appsv1.ReplicaSet
	for _, rs := range old {
		if rs.Annotations[AvailableAnnotation] != "true" || rs.DeletionTimestamp != nil || EqualIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			continue
		}
		if best == nil || Revision(rs) > Revision(best) {
			best = rs
		}
	}
	return best
}

// autoRollbackEnabled says whether a rollout of d that passes its progress
// deadline is rolled back.
func (c *Controller) autoRollbackEnabled(d *appsv1.Deployment) bool {
	return !c.deps.DisableAutoRollback && d.Annotations[AutoRollbackAnnotation] != "false"
}

// autoRollback rolls a Deployment whose rollout passed its progress
// deadline back to the last revision that was fully available. Nothing
// happens when the failing revision was itself fully available once (its
// trouble is not its template; and a revision restored by a rollback is
// such a revision, so rollbacks cannot loop), when no earlier revision was
// available, or when the Deployment opted out.
func (c *Controller) autoRollback(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	if newRS == nil || d.Spec.Paused || !c.autoRollbackEnabled(d) || newRS.Annotations[AvailableAnnotation] == "true" {
		return nil
	}
	target := lastAvailable(d, old)
	if target == nil {
		return nil
	}
	from, to := newRS.Annotations[RevisionAnnotation], target.Annotations[RevisionAnnotation]
	reason := fmt.Sprintf("progress deadline %s exceeded: %d of %d new pods available",
		progressDeadline(d), availableOf(newRS), replicasOf(d.Spec.Replicas))
	cp := d.DeepCopy()
	RollbackTo(cp, target)
	cp.Annotations[AutoRolledBackFromAnnotation] = from
	cp.Annotations[AutoRolledBackToAnnotation] = to
	cp.Annotations[AutoRollbackReasonAnnotation] = reason
	if err := c.writeDeployment(ctx, cp); err != nil {
		return fmt.Errorf("roll back from revision %s to %s: %w", from, to, err)
	}
	*d = *cp
	c.recorder.Eventf(d, corev1.EventTypeWarning, ReasonAutoRollback, "Rolled back from revision %s to revision %s: %s", from, to, reason)
	c.log.Info("rolled back a rollout that passed its progress deadline", "ns", d.Namespace, "deployment", d.Name,
		"from", from, "to", to, "replicaset", target.Name, "reason", reason)
	return nil
}
