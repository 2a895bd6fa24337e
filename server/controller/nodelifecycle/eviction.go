package nodelifecycle

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"orch.dev/orch/server/controller"
)

// ReasonEvicted is the reason of the event recorded on a pod deleted
// because its node has a NoExecute taint it no longer tolerates.
const ReasonEvicted = "Evicted"

// evict deletes the pods on node whose tolerations of its NoExecute taints
// have run out, and asks to be called again at the next deadline.
func (c *Controller) evict(ctx context.Context, node *corev1.Node) error {
	var taints []*corev1.Taint
	for i := range node.Spec.Taints {
		if node.Spec.Taints[i].Effect == corev1.TaintEffectNoExecute {
			taints = append(taints, &node.Spec.Taints[i])
		}
	}
	c.forgetTaints(node.Name, taints)
	if len(taints) == 0 {
		return nil
	}
	if !c.expect.Satisfied(node.Name) {
		// Deletions asked for are not in the informer yet; their events
		// bring the node back here.
		return nil
	}
	now := c.clock.Now()
	var next time.Time
	var errs []error
	for _, pod := range c.podsOn(node.Name) {
		if pod.DeletionTimestamp != nil {
			continue
		}
		d, ok := c.deadline(node, pod, taints)
		if !ok {
			continue
		}
		if d.at.After(now) {
			if next.IsZero() || d.at.Before(next) {
				next = d.at
			}
			continue
		}
		deleted, err := c.deletePod(ctx, node.Name, pod, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			msg := d.message(node.Name)
			c.deps.Logger.Warn("pod evicted", "pod", podKey(pod), "node", node.Name, "taint", taintString(d.taint))
			c.recorder.Event(pod, corev1.EventTypeWarning, ReasonEvicted, msg)
		}
	}
	if err := joinErrs(errs); err != nil {
		return err
	}
	if !next.IsZero() {
		return controller.RequeueAfter(next.Sub(now))
	}
	return nil
}

// eviction is when a pod must leave a node, and why.
type eviction struct {
	at        time.Time
	taint     *corev1.Taint
	window    time.Duration
	tolerated bool // the window is the pod's own (or the default one)
}

func (e eviction) message(node string) string {
	switch {
	case isLifecycleTaint(e.taint):
		state := "unreachable"
		if e.taint.Key == notReadyTaint.Key {
			state = "not ready"
		}
		return fmt.Sprintf("Node %s is %s (taint %s) for %s; deleting the pod", node, state, taintString(e.taint), e.window)
	case e.tolerated:
		return fmt.Sprintf("Node %s has had taint %s for %s, as long as the pod tolerates it; deleting the pod", node, taintString(e.taint), e.window)
	}
	return fmt.Sprintf("Node %s has taint %s, which the pod does not tolerate; deleting the pod", node, taintString(e.taint))
}

// deadline is the earliest time at which one of the node's NoExecute
// taints is no longer tolerated by pod. It reports false when the pod
// tolerates them all for ever.
func (c *Controller) deadline(node *corev1.Node, pod *corev1.Pod, taints []*corev1.Taint) (eviction, bool) {
	var best eviction
	found := false
	for _, t := range taints {
		window, tolerated, forever := c.window(pod, t)
		if forever {
			continue
		}
		at := c.taintAdded(node.Name, t).Add(window)
		if !found || at.Before(best.at) {
			best = eviction{at: at, taint: t, window: window, tolerated: tolerated}
			found = true
		}
	}
	return best, found
}

// window is how long pod tolerates taint, as Kubernetes counts it: the
// shortest tolerationSeconds of the matching NoExecute tolerations, for
// ever when none of them has one. Without a matching toleration a pod
// gets the default window for the not-ready and unreachable taints (the
// toleration Kubernetes' admission would have added) and none for others.
func (c *Controller) window(pod *corev1.Pod, t *corev1.Taint) (window time.Duration, tolerated, forever bool) {
	shortest := time.Duration(-1)
	for i := range pod.Spec.Tolerations {
		tol := &pod.Spec.Tolerations[i]
		if !tolerates(tol, t) {
			continue
		}
		tolerated = true
		if tol.TolerationSeconds == nil {
			continue
		}
		if d := seconds(*tol.TolerationSeconds); shortest < 0 || d < shortest {
			shortest = d
		}
	}
	switch {
	case !tolerated && isLifecycleTaint(t):
		return c.defaultWindow, true, false
	case !tolerated:
		return 0, false, false
	case shortest < 0:
		return 0, true, true
	}
	return shortest, true, false
}

// tolerates reports whether one toleration matches a taint: the effect
// must agree (an empty one agrees with all), and the key and value must
// match by the operator; Exists with an empty key matches every taint.
func tolerates(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return tol.Key == "" || tol.Key == t.Key
	case corev1.TolerationOpEqual, "":
		return tol.Key == t.Key && tol.Value == t.Value
	}
	return false
}

// taintAdded is when a taint was put on the node: its timeAdded, or for a
// taint written without one, when this controller first saw it.
func (c *Controller) taintAdded(node string, t *corev1.Taint) time.Time {
	if t.TimeAdded != nil {
		return t.TimeAdded.Time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := node + "\x00" + taintString(t)
	at, ok := c.firstSeen[key]
	if !ok {
		at = c.clock.Now()
		c.firstSeen[key] = at
	}
	return at
}

// forgetTaints drops the first-seen times of a node's taints that are no
// longer among current (all of them for nil).
func (c *Controller) forgetTaints(node string, current []*corev1.Taint) {
	keep := map[string]bool{}
	for _, t := range current {
		keep[node+"\x00"+taintString(t)] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.firstSeen {
		if len(key) > len(node) && key[:len(node)+1] == node+"\x00" && !keep[key] {
			delete(c.firstSeen, key)
		}
	}
}

// taintString shows a taint as KEY[=VALUE]:EFFECT.
func taintString(t *corev1.Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + string(t.Effect)
}
