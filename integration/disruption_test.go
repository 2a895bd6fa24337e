package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// TestDrainHonoursDisruptionBudget: two replicas pinned to one node and a
// budget of minAvailable 1. Draining the node evicts one pod, and the
// second eviction is refused (429) for as long as the first has no ready
// replacement, which it cannot get (the node is cordoned and the pods may
// run nowhere else): the drain times out with one pod still running.
func TestDrainHonoursDisruptionBudget(t *testing.T) {
	nc := startNodes(t, 2)
	ctx := context.Background()
	node := nc.agents[0].name
	d := deployment("guarded", 2)
	d.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: node}
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	if _, err := nc.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nc.waitRunning(t, "guarded", 2, 90*time.Second)
	testutil.Eventually(t, 30*time.Second, func() string {
		b, err := nc.cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "guarded", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if b.Status.CurrentHealthy != 2 || b.Status.DesiredHealthy != 1 || b.Status.DisruptionsAllowed != 1 {
			return fmt.Sprintf("budget status %+v, want 2 healthy, 1 desired, 1 disruption allowed", b.Status)
		}
		return ""
	})
	if out, code := ctlOut(t, nc.kc, "", 30*time.Second, "get", "pdb"); code != 0 || !strings.Contains(out, "guarded") || !strings.Contains(out, "ALLOWED DISRUPTIONS") {
		t.Fatalf("orchctl get pdb (exit %d):\n%s", code, out)
	}

	out, code := ctlOut(t, nc.kc, "", 60*time.Second, "drain", node, "--timeout", "8s")
	if code == 0 {
		t.Fatalf("drain succeeded, want it held back by the budget:\n%s", out)
	}
	for _, want := range []string{"Cannot evict pod as it would violate the pod's disruption budget", "timed out after --timeout 8s"} {
		if !strings.Contains(out, want) {
			t.Errorf("drain output lacks %q:\n%s", want, out)
		}
	}
	var running int
	pods, err := nc.podsOf("guarded")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if running != 1 {
		t.Fatalf("%d guarded pods still running on %s, want exactly 1 (the budget's minimum)", running, node)
	}
}
