package nodelifecycle

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// watchMembership marks Nodes Unknown when their agents leave gossip: at
// every membership change and Node change, and every second, once the grace
// period after start is over.
func (c *Controller) watchMembership(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), c.nodesSynced) {
		return
	}
	start := c.clock.Now()
	never := make(chan struct{})
	for {
		changed := (<-chan struct{})(never)
		if c.deps.Changed != nil {
			changed = c.deps.Changed()
		}
		if c.clock.Since(start) >= c.deps.Grace {
			c.check(ctx)
		}
		t := c.clock.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-c.kick:
		case <-t.C():
		}
		t.Stop()
	}
}

// check marks every Ready node whose agent is not a gossip member.
func (c *Controller) check(ctx context.Context) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		c.deps.Logger.Warn("list nodes", "err", err)
		return
	}
	alive := c.deps.Alive()
	for _, n := range nodes {
		if alive[n.Name] || readyStatus(n) == corev1.ConditionUnknown {
			continue
		}
		if err := c.markUnknown(ctx, n); err != nil && !apierrors.IsNotFound(err) {
			c.deps.Logger.Warn("mark node unreachable", "node", n.Name, "err", err)
		}
	}
}

// readyStatus is the status of the node's Ready condition; Unknown when it
// has none.
func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	s, _ := readyCondition(n)
	return s
}

func (c *Controller) markUnknown(ctx context.Context, n *corev1.Node) error {
	n = n.DeepCopy()
	now := metav1.NewTime(c.clock.Now())
	cond := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
		Message:           "the node's agent is no longer a member of the cluster's gossip pool (stopped, crashed or unreachable)",
		LastHeartbeatTime: now, LastTransitionTime: now}
	found := false
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			cond.LastHeartbeatTime = n.Status.Conditions[i].LastHeartbeatTime
			n.Status.Conditions[i] = cond
			found = true
		}
	}
	if !found {
		n.Status.Conditions = append(n.Status.Conditions, cond)
	}
	if _, err := c.deps.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.deps.Logger.Warn("node unreachable: Ready is now Unknown", "node", n.Name)
	return nil
}
