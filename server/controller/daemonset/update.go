package daemonset

import (
	"context"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"orch.dev/orch/server/controller"
)

// maxSurgeOf is the DaemonSet's maxSurge as a number of nodes, counted
// against its eligible nodes when a percentage; 0 unless it rolls out with
// a surge budget.
func maxSurgeOf(ds *appsv1.DaemonSet) int {
	surge, _ := budgets(ds, 1)
	return surge
}

// budgets are the DaemonSet's maxSurge and maxUnavailable as numbers of
// nodes out of desired (percentages round up). Values validation would
// refuse fall back to the defaults, and a rollout always has a budget: with
// both at 0, one node at a time may be unavailable.
func budgets(ds *appsv1.DaemonSet, desired int) (surge, unavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil {
		return 0, 1
	}
	unavailable = 1
	if ru.MaxUnavailable != nil {
		if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true); err == nil && n >= 0 {
			unavailable = n
		}
	}
	if ru.MaxSurge != nil {
		if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true); err == nil && n >= 0 {
			surge = n
		}
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// updatedPods finds the live pod of the current template and the live
// older one on a node; ok is false when there is more than one of either,
// which manage cleans up first.
func updatedPods(pods []*corev1.Pod, hash string) (cur, old *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || isFinished(p) {
			continue
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == hash {
			if cur != nil {
				return nil, nil, false
			}
			cur = p
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = p
		}
	}
	return cur, old, true
}

// rollingUpdate replaces the pods of older templates on the eligible
// nodes within the DaemonSet's budget.
func (c *Controller) rollingUpdate(ctx context.Context, s *state) error {
	var eligible []string
	for _, node := range s.nodes {
		if run, _ := placement(&s.template.Spec, node); run {
			eligible = append(eligible, node.Name)
		}
	}
	sort.Strings(eligible)
	surge, unavailable := budgets(s.ds, len(eligible))
	if surge > 0 {
		return c.surgeUpdate(ctx, s, eligible, surge)
	}
	return c.inPlaceUpdate(ctx, s, eligible, unavailable)
}

func (c *Controller) available(s *state, p *corev1.Pod) bool {
	return controller.IsPodAvailable(p, s.ds.Spec.MinReadySeconds, s.now)
}

// inPlaceUpdate deletes old pods so that at most maxUnavailable eligible
// nodes are without an available pod; manage then starts the new pods.
// Old pods that are not available anyway are replaced at once.
func (c *Controller) inPlaceUpdate(ctx context.Context, s *state, eligible []string, maxUnavailable int) error {
	unavailable := 0
	var replace, candidates []*corev1.Pod
	for _, name := range eligible {
		cur, old, ok := updatedPods(s.byNode[name], s.hash)
		switch {
		case !ok, cur == nil && old == nil, cur != nil && old != nil:
			// Being cleaned up or started by manage.
			unavailable++
		case cur != nil:
			if !c.available(s, cur) {
				unavailable++
			}
		case !c.available(s, old):
			unavailable++
			replace = append(replace, old)
		default:
			candidates = append(candidates, old)
		}
	}
	n := min(max(maxUnavailable-unavailable, 0), len(candidates))
	victims := append(replace, candidates[:n]...)
	if len(victims) == 0 {
		return nil
	}
	return c.syncNodes(ctx, s, victims, nil, nil)
}

// surgeUpdate starts new pods next to old ones on at most maxSurge nodes
// at a time, and deletes each old pod once the new one beside it is
// available. A node whose old pod is not available gets its new pod at
// once.
func (c *Controller) surgeUpdate(ctx context.Context, s *state, eligible []string, maxSurge int) error {
	surging := 0
	var replace, candidates []string
	var done []*corev1.Pod
	for _, name := range eligible {
		cur, old, ok := updatedPods(s.byNode[name], s.hash)
		switch {
		case !ok:
			surging++
		case old == nil:
			// Up to date, or manage starts the pod.
		case cur == nil && !c.available(s, old):
			replace = append(replace, name)
		case cur == nil:
			candidates = append(candidates, name)
		case !c.available(s, cur):
			surging++
		default:
			done = append(done, old)
		}
	}
	n := min(max(maxSurge-surging, 0), len(candidates))
	createOn := append(replace, candidates[:n]...)
	if len(createOn) == 0 && len(done) == 0 {
		return nil
	}
	return c.syncNodes(ctx, s, done, nil, createOn)
}
