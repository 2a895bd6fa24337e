package statefulset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"orch.dev/orch/server/controller"
)

// updateStatus writes the set's status when it changed, counting from the
// pods the sync started with; observedGeneration advances only when the
// sync could act on this generation (observe). It returns how soon a ready
// pod becomes available, for minReadySeconds.
func (c *Controller) updateStatus(ctx context.Context, s *state, observe bool) (time.Duration, error) {
	set := s.set
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Status.ObservedGeneration,
		CurrentRevision:    s.current,
		UpdateRevision:     s.update,
		CollisionCount:     set.Status.CollisionCount,
		Conditions:         set.Status.Conditions,
	}
	if observe {
		st.ObservedGeneration = set.Generation
	}
	var recheck time.Duration
	for _, p := range s.pods {
		st.Replicas++
		if isRunningAndReady(p) {
			st.ReadyReplicas++
			if controller.IsPodAvailable(p, set.Spec.MinReadySeconds, s.now) {
				st.AvailableReplicas++
			} else {
				recheck = sooner(recheck, s.availableIn(p))
			}
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		if revisionLabel(p) == s.current {
			st.CurrentReplicas++
		}
		if revisionLabel(p) == s.update {
			st.UpdatedReplicas++
		}
	}
	// A rollout is complete once every pod runs the new revision and is
	// ready: the new revision becomes the current one (with OnDelete too,
	// once every old pod has been deleted and replaced).
	if st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentRevision = st.UpdateRevision
		st.CurrentReplicas = st.UpdatedReplicas
	}
	if apiequality.Semantic.DeepEqual(st, set.Status) {
		return recheck, nil
	}
	err := controller.UpdateStatus(ctx, c.deps.Client.AppsV1().StatefulSets(set.Namespace), set.DeepCopy(), func(next *appsv1.StatefulSet) { next.Status = st })
	return recheck, err
}
