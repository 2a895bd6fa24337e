package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// BenchmarkNodeLossRecovery measures how long a Deployment takes to be
// whole again after one of its nodes dies: one server and three agents, a
// 6-replica Deployment spread over them; one agent is killed with its
// containers, and the time runs until 6 replicas are Running on the other
// two. With the default toleration window (30 s), and with pods tolerating
// unreachable and not-ready nodes for 0 s.
func BenchmarkNodeLossRecovery(b *testing.B) {
	for _, tc := range []struct {
		name        string
		tolerations []corev1.Toleration
	}{
		{name: "default"},
		{name: "toleration=0s", tolerations: []corev1.Toleration{
			{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](0)},
			{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](0)},
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				total += nodeLoss(b, startNodes(b, 3), tc.tolerations)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-recover")
		})
	}
}

// TestNodeLossReplacesPods kills an agent and its containers under a
// Deployment whose pods tolerate a failed node for 0 s: the replicas come
// back on the surviving nodes, and the lost pods are marked not ready and
// evicted with an event. (How fast is BenchmarkNodeLossRecovery's job.)
func TestNodeLossReplacesPods(t *testing.T) {
	nc := startNodes(t, 3)
	zero := []corev1.Toleration{
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](0)},
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](0)},
	}
	nodeLoss(t, nc, zero)
	ctx := context.Background()
	victim := nc.agents[0].name
	testutil.Eventually(t, 30*time.Second, func() string {
		n, err := nc.cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute {
				return ""
			}
		}
		return fmt.Sprintf("node %s has no unreachable taint: %v", victim, n.Spec.Taints)
	})
	testutil.Eventually(t, 30*time.Second, func() string {
		ev, err := nc.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=Evicted"})
		if err != nil {
			return err.Error()
		}
		if len(ev.Items) == 0 {
			return "no Evicted event"
		}
		return ""
	})
}

func nodeLoss(t testing.TB, nc *nodeCluster, tolerations []corev1.Toleration) time.Duration {
	ctx := context.Background()
	d := deployment("loss", 6)
	d.Spec.Template.Spec.Tolerations = tolerations
	if _, err := nc.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait for all 6 Running, with at least one on the victim.
	victim := nc.agents[0]
	testutil.Eventually(t, 2*time.Minute, func() string {
		pods, err := nc.podsOf("loss")
		if err != nil {
			return err.Error()
		}
		running, onVictim := 0, 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
				if p.Spec.NodeName == victim.name {
					onVictim++
				}
			}
		}
		if running != 6 || onVictim == 0 {
			return fmt.Sprintf("%d of 6 Running, %d on %s", running, onVictim, victim.name)
		}
		return ""
	})
	start := time.Now()
	victim.kill()
	for _, id := range dockerPSNode(t, victim.name) {
		_ = runDocker("rm", "-f", id)
	}
	testutil.Eventually(t, 3*time.Minute, func() string {
		pods, err := nc.podsOf("loss")
		if err != nil {
			return err.Error()
		}
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != victim.name {
				running++
			}
		}
		if running < 6 {
			return fmt.Sprintf("%d of 6 Running on the surviving nodes", running)
		}
		return ""
	})
	took := time.Since(start)
	t.Logf("6 replicas Running again %.1f s after %s died", took.Seconds(), victim.name)
	return took
}
