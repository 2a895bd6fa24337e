package deployment

import (
	"context"
	"fmt"
	"math"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rolloutRolling moves one step of a rolling update: scale the new
// ReplicaSet up within maxSurge, else the old ones down within
// maxUnavailable; when nothing is left to move, clean up old revisions.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.replicaSets(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := withNew(old, newRS)
	scaledUp, err := c.reconcileNewReplicaSet(ctx, d, all, newRS)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, d, all, newRS, old)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, d, all, activeOnly(old), newRS)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, all, newRS, old)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupOldReplicaSets(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS, old)
}

// reconcileNewReplicaSet scales the new ReplicaSet toward the Deployment's
// replicas, up only as far as maxSurge allows.
func (c *Controller) reconcileNewReplicaSet(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	want := replicasOf(d.Spec.Replicas)
	have := replicasOf(newRS.Spec.Replicas)
	if have == want {
		return false, nil
	}
	if have > want {
		scaled, _, err := c.scaleReplicaSetAndRecord(ctx, d, newRS, want)
		return scaled, err
	}
	scaled, _, err := c.scaleReplicaSetAndRecord(ctx, d, newRS, newRSReplicas(d, all, newRS))
	return scaled, err
}

// newRSReplicas is how many replicas the new ReplicaSet may have now.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	want := replicasOf(d.Spec.Replicas)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return want
	}
	have := replicasOf(newRS.Spec.Replicas)
	maxTotal := want + maxSurge(d)
	current := specReplicas(all)
	if current >= maxTotal {
		return have
	}
	up := min(maxTotal-current, want-have)
	return have + up
}

// availableOf counts the available pods of a ReplicaSet, never more than
// it is scaled to: a ReplicaSet just scaled down still reports the pods it
// is about to delete, which must not be counted on.
func availableOf(rs *appsv1.ReplicaSet) int32 {
	return min(rs.Status.AvailableReplicas, replicasOf(rs.Spec.Replicas))
}

func availableReplicas(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += availableOf(rs)
		}
	}
	return n
}

// reconcileOldReplicaSets scales the old ReplicaSets down as far as
// maxUnavailable allows, unhealthy replicas first.
func (c *Controller) reconcileOldReplicaSets(ctx context.Context, d *appsv1.Deployment, all, oldActive []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if specReplicas(oldActive) == 0 {
		return false, nil
	}
	allPods := specReplicas(all)
	minAvailable := replicasOf(d.Spec.Replicas) - maxUnavailable(d)
	newUnavailable := replicasOf(newRS.Spec.Replicas) - availableOf(newRS)
	// Scaling down must not go below minAvailable, counting the new
	// replicas that are not available yet as unavailable: a crash-looping
	// new ReplicaSet must not eat the old pods.
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	oldActive, cleaned, err := c.cleanupUnhealthyReplicas(ctx, d, oldActive, maxScaledDown)
	if err != nil {
		return false, err
	}
	scaled, err := c.scaleDownOldForRollingUpdate(ctx, d, withNew(oldActive, newRS), oldActive)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

// cleanupUnhealthyReplicas scales old ReplicaSets down by their
// unavailable replicas, which costs no availability (the ReplicaSet
// deletes pods that are not ready first).
func (c *Controller) cleanupUnhealthyReplicas(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	old = append([]*appsv1.ReplicaSet(nil), old...)
	byCreation(old)
	var total int32
	for i, rs := range old {
		if total >= maxCleanup {
			break
		}
		have := replicasOf(rs.Spec.Replicas)
		if have == 0 || have <= rs.Status.AvailableReplicas {
			continue
		}
		down := min(maxCleanup-total, have-rs.Status.AvailableReplicas)
		_, updated, err := c.scaleReplicaSetAndRecord(ctx, d, rs, have-down)
		if err != nil {
			return nil, total, err
		}
		total += down
		old[i] = updated
	}
	return old, total, nil
}

// scaleDownOldForRollingUpdate scales old ReplicaSets down, oldest first,
// by as many replicas as are available beyond replicas-maxUnavailable.
func (c *Controller) scaleDownOldForRollingUpdate(ctx context.Context, d *appsv1.Deployment, all, old []*appsv1.ReplicaSet) (int32, error) {
	minAvailable := replicasOf(d.Spec.Replicas) - maxUnavailable(d)
	available := availableReplicas(all)
	if available <= minAvailable {
		return 0, nil
	}
	old = append([]*appsv1.ReplicaSet(nil), old...)
	byCreation(old)
	budget := available - minAvailable
	var total int32
	for _, rs := range old {
		if total >= budget {
			break
		}
		have := replicasOf(rs.Spec.Replicas)
		if have == 0 {
			continue
		}
		down := min(have, budget-total)
		if _, _, err := c.scaleReplicaSetAndRecord(ctx, d, rs, have-down); err != nil {
			return total, err
		}
		total += down
	}
	return total, nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until none of
// their pods runs, then creates or scales up the new one.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, podsByRS map[types.UID][]*corev1.Pod) error {
	newRS, old, err := c.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := withNew(old, newRS)
	scaledDown := false
	for _, rs := range activeOnly(old) {
		scaled, _, err := c.scaleReplicaSetAndRecord(ctx, d, rs, 0)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown || oldPodsRunning(newRS, old, podsByRS) {
		return c.syncRolloutStatus(ctx, d, all, newRS, old)
	}
	if newRS == nil {
		if newRS, old, err = c.replicaSets(ctx, d, rsList, true); err != nil {
			return err
		}
		all = withNew(old, newRS)
	}
	if _, _, err := c.scaleReplicaSetAndRecord(ctx, d, newRS, replicasOf(d.Spec.Replicas)); err != nil {
		return err
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupOldReplicaSets(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS, old)
}

// oldPodsRunning reports whether an old ReplicaSet still has pods that may
// be running.
func oldPodsRunning(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, podsByRS map[types.UID][]*corev1.Pod) bool {
	for _, rs := range old {
		if rs.Status.Replicas > 0 {
			return true
		}
	}
	for uid, pods := range podsByRS {
		if newRS != nil && newRS.UID == uid {
			continue
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				return true
			}
		}
	}
	return false
}

// isScalingEvent reports whether the Deployment's replicas changed since
// its active ReplicaSets were last scaled for it, with no new template.
func (c *Controller) isScalingEvent(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (bool, error) {
	newRS, old, err := c.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return false, err
	}
	for _, rs := range activeOnly(withNew(old, newRS)) {
		if desired, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && desired != replicasOf(d.Spec.Replicas) {
			return true, nil
		}
	}
	return false, nil
}

// syncScale scales without rolling out (a paused Deployment, or a change of
// replicas alone) and writes the status.
func (c *Controller) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := c.scale(ctx, d, newRS, old); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanupOldReplicaSets(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncStatusOnly(ctx, d, withNew(old, newRS))
}

// scale brings the ReplicaSets to the Deployment's size. With one active
// ReplicaSet (or none), that one takes the whole change; in the middle of
// a rolling update the change is shared among the active ReplicaSets in
// proportion to their sizes, so the rollout's shape is kept.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	want := replicasOf(d.Spec.Replicas)
	if rs := activeOrLatest(newRS, old); rs != nil {
		_, _, err := c.scaleReplicaSetAndRecord(ctx, d, rs, want)
		return err
	}
	if saturated(d, newRS) {
		for _, rs := range activeOnly(old) {
			if _, _, err := c.scaleReplicaSetAndRecord(ctx, d, rs, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return nil
	}
	active := activeOnly(withNew(old, newRS))
	if len(active) == 0 {
		return nil
	}
	allowed := int32(0)
	if want > 0 {
		allowed = want + maxSurge(d)
	}
	toAdd := allowed - specReplicas(active)
	if toAdd == 0 {
		return nil
	}
	// Larger ReplicaSets first; among equals the newer when growing and
	// the older when shrinking.
	sort.SliceStable(active, func(i, j int) bool {
		a, b := active[i], active[j]
		if ra, rb := replicasOf(a.Spec.Replicas), replicasOf(b.Spec.Replicas); ra != rb {
			return ra > rb
		}
		if toAdd > 0 {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
	sizes := make([]int32, len(active))
	var added int32
	for i, rs := range active {
		p := proportion(d, rs, toAdd, added)
		sizes[i] = replicasOf(rs.Spec.Replicas) + p
		added += p
	}
	// What rounding left over goes to the largest ReplicaSet.
	sizes[0] += toAdd - added
	if sizes[0] < 0 {
		sizes[0] = 0
	}
	for i, rs := range active {
		if _, _, err := c.scaleReplicaSetAndRecord(ctx, d, rs, sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest is the only active ReplicaSet, or the newest one when
// none is active; nil when several are active.
func activeOrLatest(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	active := activeOnly(withNew(old, newRS))
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		sorted := append([]*appsv1.ReplicaSet(nil), old...)
		byCreation(sorted)
		return sorted[len(sorted)-1]
	case 1:
		return active[0]
	}
	return nil
}

// saturated reports whether the new ReplicaSet alone runs the Deployment.
func saturated(d *appsv1.Deployment, newRS *appsv1.ReplicaSet) bool {
	if newRS == nil {
		return false
	}
	want := replicasOf(d.Spec.Replicas)
	desired, ok := intAnnotation(newRS, DesiredReplicasAnnotation)
	return ok && desired == want && replicasOf(newRS.Spec.Replicas) == want && newRS.Status.AvailableReplicas == want
}

// proportion is the share of toAdd a ReplicaSet gets, by its size relative
// to the Deployment size it was last scaled for.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	have := replicasOf(rs.Spec.Replicas)
	if have == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	var fraction int32
	want := replicasOf(d.Spec.Replicas)
	if want == 0 {
		fraction = -have
	} else {
		total := want + maxSurge(d)
		annotated, ok := intAnnotation(rs, MaxReplicasAnnotation)
		if !ok || annotated == 0 {
			annotated = d.Status.Replicas
		}
		if annotated == 0 {
			annotated = total
		}
		fraction = int32(math.Round(float64(have)*float64(total)/float64(annotated))) - have
	}
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

// scaleReplicaSetAndRecord sets a ReplicaSet's replicas (and the replica
// annotations) and records ScalingReplicaSet on the Deployment. It
// reports whether the size changed and returns the ReplicaSet as stored.
func (c *Controller) scaleReplicaSetAndRecord(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) (bool, *appsv1.ReplicaSet, error) {
	if n < 0 {
		n = 0
	}
	have := replicasOf(rs.Spec.Replicas)
	cp := rs.DeepCopy()
	annotationsChanged := setReplicasAnnotations(cp, replicasOf(d.Spec.Replicas), replicasOf(d.Spec.Replicas)+maxSurge(d))
	if have == n && !annotationsChanged {
		return false, rs, nil
	}
	cp.Spec.Replicas = &n
	out, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, fmt.Errorf("scale replica set %s to %d: %w", rs.Name, n, err)
	}
	if have == n {
		return false, out, nil
	}
	dir := "up"
	if n < have {
		dir = "down"
	}
	c.recorder.Eventf(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, "Scaled %s replica set %s from %d to %d", dir, rs.Name, have, n)
	c.log.Debug("scaled replica set", "ns", d.Namespace, "deployment", d.Name, "replicaset", rs.Name, "from", have, "to", n)
	return true, out, nil
}

// resolveFenceposts turns maxSurge and maxUnavailable into numbers for
// desired replicas: surge rounds up, unavailable rounds down, and when
// both come out 0 one pod may be unavailable, or nothing could move.
func resolveFenceposts(surge, unavailable *intstr.IntOrString, desired int32) (int32, int32) {
	zero := intstr.FromInt32(0)
	// Malformed values are rejected by validation; should one get
	// through, it counts as 0.
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(surge, zero), int(desired), true)
	if err != nil {
		s = 0
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(unavailable, zero), int(desired), false)
	if err != nil {
		u = 0
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

// maxSurge is how many pods a rolling update may run beyond replicas.
func maxSurge(d *appsv1.Deployment) int32 {
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil {
		return 0
	}
	s, _ := resolveFenceposts(ru.MaxSurge, ru.MaxUnavailable, replicasOf(d.Spec.Replicas))
	return s
}

// maxUnavailable is how many of replicas a rolling update may have
// unavailable.
func maxUnavailable(d *appsv1.Deployment) int32 {
	ru := d.Spec.Strategy.RollingUpdate
	want := replicasOf(d.Spec.Replicas)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || want == 0 {
		return 0
	}
	_, u := resolveFenceposts(ru.MaxSurge, ru.MaxUnavailable, want)
	return min(u, want)
}
