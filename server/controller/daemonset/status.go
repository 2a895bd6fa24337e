package daemonset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"orch.dev/orch/server/controller"
)

// updateStatus writes the DaemonSet's status when it changed, counting
// from the pods the sync started with; observedGeneration advances only
// when the sync could act on this generation (observe). It returns how
// soon a ready pod becomes available, for minReadySeconds.
func (c *Controller) updateStatus(ctx context.Context, s *state, observe bool) (time.Duration, error) {
	ds := s.ds
	st := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Status.ObservedGeneration,
		CollisionCount:     ds.Status.CollisionCount,
		Conditions:         ds.Status.Conditions,
	}
	if observe {
		st.ObservedGeneration = ds.Generation
	}
	var recheck time.Duration
	for _, node := range s.nodes {
		run, _ := placement(&s.template.Spec, node)
		pods := append([]*corev1.Pod(nil), s.byNode[node.Name]...)
		switch {
		case run && len(pods) > 0:
			st.DesiredNumberScheduled++
			st.CurrentNumberScheduled++
			p := representative(pods)
			if controller.IsPodReady(p) {
				st.NumberReady++
				if controller.IsPodAvailable(p, ds.Spec.MinReadySeconds, s.now) {
					st.NumberAvailable++
				} else if cond := controller.PodReadyCondition(p); cond != nil {
					at := cond.LastTransitionTime.Add(time.Duration(ds.Spec.MinReadySeconds) * time.Second)
					recheck = sooner(recheck, max(at.Sub(s.now), time.Second))
				}
			}
			if p.Labels[appsv1.ControllerRevisionHashLabelKey] == s.hash {
				st.UpdatedNumberScheduled++
			}
		case run:
			st.DesiredNumberScheduled++
		case len(pods) > 0:
			st.NumberMisscheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	if apiequality.Semantic.DeepEqual(st, ds.Status) {
		return recheck, nil
	}
	err := controller.UpdateStatus(ctx, c.deps.Client.AppsV1().DaemonSets(ds.Namespace), ds.DeepCopy(), func(next *appsv1.DaemonSet) { next.Status = st })
	return recheck, err
}

// representative is the pod a node's status counts: the oldest that is
// not being deleted, else the oldest.
func representative(pods []*corev1.Pod) *corev1.Pod {
	sortOldestFirst(pods)
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			return p
		}
	}
	return pods[0]
}
