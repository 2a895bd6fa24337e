package daemonset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/controller"
)

// daemonTolerations are the tolerations every daemon pod gets, as in
// Kubernetes: a daemon stays on a node that is not ready, unreachable,
// under resource pressure or cordoned.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added to daemons on the host network, which do
// not need the pod network.
var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// addDaemonTolerations adds the daemon tolerations to spec; one the
// template already has with the same key, operator, value and effect is
// replaced, so that the daemon's stays without a time limit.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := daemonTolerations
	if spec.HostNetwork {
		add = append(add[:len(add):len(add)], hostNetworkToleration)
	}
	for _, t := range add {
		replaced := false
		for i := range spec.Tolerations {
			o := &spec.Tolerations[i]
			if o.Key == t.Key && o.Operator == t.Operator && o.Value == t.Value && o.Effect == t.Effect {
				*o = t
				replaced = true
			}
		}
		if !replaced {
			spec.Tolerations = append(spec.Tolerations, t)
		}
	}
}

// daemonPod is the pod ds runs on node ("" for the node-less pod that
// placement decisions are made with).
func daemonPod(ds *appsv1.DaemonSet, hash, node string) *corev1.Pod {
	pod := controller.PodFromTemplate(&ds.Spec.Template, ds, daemonSetKind)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	addDaemonTolerations(&pod.Spec)
	if node != "" {
		pod.Spec.NodeName = node
	}
	return pod
}

// placement says whether a daemon pod with spec should be started on node
// (run) and whether one already there may stay (keep). The pod must match
// the node by name (when the template names one), nodeSelector and
// required affinity, and tolerate its NoExecute taints to stay; to be
// started it must also tolerate the NoSchedule ones.
func placement(spec *corev1.PodSpec, node *corev1.Node) (run, keep bool) {
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return false, false
	}
	if !controller.NodeSelectionMatches(spec, node) {
		return false, false
	}
	if _, ok := controller.UntoleratedTaint(spec.Tolerations, node, corev1.TaintEffectNoExecute); ok {
		return false, false
	}
	if _, ok := controller.UntoleratedTaint(spec.Tolerations, node, corev1.TaintEffectNoSchedule); ok {
		return false, true
	}
	return true, true
}

// manage starts the pods missing on eligible nodes and deletes the ones
// that must go: on ineligible or missing nodes, failed ones, and extras. It
// returns how soon to look again for a node in failure back-off, and
// whether it asked for any change.
func (c *Controller) manage(ctx context.Context, s *state) (retry time.Duration, acted bool, err error) {
	surge := s.ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType && maxSurgeOf(s.ds) > 0
	var createOn []string
	var remove []*corev1.Pod
	known := make(map[string]bool, len(s.nodes))
	for _, node := range s.nodes {
		known[node.Name] = true
		run, keep := placement(&s.template.Spec, node)
		pods := s.byNode[node.Name]
		switch {
		case run && len(pods) == 0:
			createOn = append(createOn, node.Name)
		case keep:
			var live []*corev1.Pod
			for _, p := range pods {
				switch {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase == corev1.PodFailed:
					// An agent that refuses a pod fails it at once; back
					// off rather than fight it in a hot loop.
					id := string(s.ds.UID) + "/" + node.Name
					if c.backoff.IsInBackOffSinceUpdate(id, s.now) {
						retry = sooner(retry, c.backoff.Get(id))
						continue
					}
					c.backoff.Next(id, s.now)
					c.recorder.Eventf(s.ds, corev1.EventTypeWarning, reasonFailedDaemonPod,
						"Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
					remove = append(remove, p)
				case p.Status.Phase == corev1.PodSucceeded:
					remove = append(remove, p)
				default:
					live = append(live, p)
				}
			}
			remove = append(remove, extraPods(live, s, surge)...)
		default:
			for _, p := range pods {
				if p.DeletionTimestamp == nil {
					remove = append(remove, p)
				}
			}
		}
	}
	// Pods no agent can run: bound to a Node object that is gone, or to no
	// node at all (adopted; a daemon is never left to the scheduler).
	var orphaned []*corev1.Pod
	for name, pods := range s.byNode {
		if known[name] {
			continue
		}
		if name == "" {
			for _, p := range pods {
				if p.DeletionTimestamp == nil {
					remove = append(remove, p)
				}
			}
			continue
		}
		gone, err := c.nodeGone(ctx, name)
		if err != nil {
			return retry, false, err
		}
		if gone {
			orphaned = append(orphaned, pods...)
		}
	}
	if len(createOn) > 0 {
		var wait time.Duration
		if createOn, wait, err = c.fitting(s, createOn); err != nil {
			return retry, false, err
		}
		retry = sooner(retry, wait)
	}
	acted = len(remove)+len(orphaned)+len(createOn) > 0
	return retry, acted, c.syncNodes(ctx, s, remove, orphaned, createOn)
}

// nodeGone reports whether the Node name no longer exists. The cache may
// lag behind the API; the API has the last word before pods are deleted
// without a grace period.
func (c *Controller) nodeGone(ctx context.Context, name string) (bool, error) {
	if _, err := c.nodes.Get(name); err == nil {
		return false, nil
	}
	_, err := c.deps.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up node %s: %w", name, err)
	}
	return false, nil
}

// extraPods are the pods to delete from a node that has more than one
// live daemon pod. Without surge the oldest stays. With surge a node may
// have one pod of the current template and one older one: the oldest of
// each stays, and the old one goes once it is not ready or the new one is
// available.
func extraPods(live []*corev1.Pod, s *state, surge bool) []*corev1.Pod {
	if len(live) <= 1 {
		return nil
	}
	sortOldestFirst(live)
	if !surge {
		return live[1:]
	}
	var extra []*corev1.Pod
	var newest, oldest *corev1.Pod
	for _, p := range live {
		switch {
		case p.Labels[appsv1.ControllerRevisionHashLabelKey] == s.hash && newest == nil:
			newest = p
		case p.Labels[appsv1.ControllerRevisionHashLabelKey] != s.hash && oldest == nil:
			oldest = p
		default:
			extra = append(extra, p)
		}
	}
	if newest != nil && oldest != nil &&
		(!controller.IsPodReady(oldest) || controller.IsPodAvailable(newest, s.ds.Spec.MinReadySeconds, s.now)) {
		extra = append(extra, oldest)
	}
	return extra
}

// sortOldestFirst orders pods by creation, bound pods first.
func sortOldestFirst(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName != ""
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// syncNodes deletes remove (with their grace period) and orphaned (at
// once: their nodes are gone) and creates a pod on each node of createOn,
// telling the expectations first.
func (c *Controller) syncNodes(ctx context.Context, s *state, remove, orphaned []*corev1.Pod, createOn []string) error {
	var errs []error
	if len(remove)+len(orphaned) > 0 {
		c.expectDeletions(s.key, remove, orphaned)
		for _, p := range remove {
			if err := c.podCtl.Delete(ctx, p, s.ds); err != nil {
				c.expect.DeletionObserved(s.key, p.UID)
				errs = append(errs, fmt.Errorf("delete pod %s: %w", p.Name, err))
				continue
			}
			c.expect.DeletionObservedIfGone(c.pods, s.key, p)
		}
		for _, p := range orphaned {
			if err := c.podCtl.DeleteOnMissingNode(ctx, p, s.ds); err != nil {
				c.expect.DeletionObserved(s.key, p.UID)
				errs = append(errs, fmt.Errorf("delete pod %s: %w", p.Name, err))
				continue
			}
			c.expect.DeletionObservedIfGone(c.pods, s.key, p)
		}
	}
	if len(createOn) > 0 {
		c.expect.ExpectCreations(s.key, len(createOn))
		for i, node := range createOn {
			if _, err := c.podCtl.Create(ctx, daemonPod(s.ds, s.hash, node), s.ds); err != nil {
				// This creation and the ones not attempted will never be
				// observed.
				for range createOn[i:] {
					c.expect.CreationObserved(s.key)
				}
				errs = append(errs, fmt.Errorf("create pod on node %s: %w", node, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) expectDeletions(key string, lists ...[]*corev1.Pod) {
	for _, l := range lists {
		for _, p := range l {
			c.expect.ExpectDeletions(key, p.UID)
		}
	}
}
