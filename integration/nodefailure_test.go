package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/internal/testutil"
)

func TestAgentRestartAndFailure(t *testing.T) {
	nc := startNodes(t, 2)
	ctx := context.Background()
	a := nc.agents[0]

	t.Run("an agent killed and restarted adopts its containers", func(t *testing.T) {
		p := helloPod("adopted")
		p.Spec.NodeName = a.name
		got := nc.createPod(t, p)
		nc.waitPod(t, "default", "adopted", 60*time.Second, phaseIs(corev1.PodRunning))
		before := dockerPS(t, "orch.pod.uid="+string(got.UID))
		a.kill()
		a.start()
		testutil.Eventually(t, 30*time.Second, func() string { return nc.nodeReady(a.name) })
		// A pod started after the restart proves the agent is at work.
		p2 := helloPod("after-restart")
		p2.Spec.NodeName = a.name
		nc.createPod(t, p2)
		nc.waitPod(t, "default", "after-restart", 60*time.Second, phaseIs(corev1.PodRunning))
		after := dockerPS(t, "orch.pod.uid="+string(got.UID))
		slices.Sort(before)
		slices.Sort(after)
		if !slices.Equal(before, after) || len(before) != 2 {
			t.Fatalf("containers before the restart %v, after %v: want the same sandbox and app container", before, after)
		}
		nc.waitPod(t, "default", "adopted", 10*time.Second, phaseIs(corev1.PodRunning))
	})

	t.Run("a killed agent's node turns NotReady within 5 s", func(t *testing.T) {
		victim := nc.agents[1]
		start := time.Now()
		victim.kill()
		testutil.Eventually(t, 20*time.Second, func() string {
			n, err := nc.cs.CoreV1().Nodes().Get(ctx, victim.name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					return ""
				}
			}
			return "node " + victim.name + " is still Ready"
		})
		took := time.Since(start)
		t.Logf("node %s NotReady %v after its agent was killed", victim.name, took)
		if took > 5*time.Second {
			t.Fatalf("NotReady after %v, want within 5 s", took)
		}
	})
}
