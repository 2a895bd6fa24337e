package daemonset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPlacement(t *testing.T) {
	cases := []struct {
		name              string
		node              *corev1.Node
		template          func(*corev1.PodSpec)
		wantRun, wantKeep bool
	}{
		{name: "plain node", node: makeNode("n"), wantRun: true, wantKeep: true},
		{name: "cordoned", node: makeNode("n", cordoned), wantRun: true, wantKeep: true},
		{name: "not ready", node: makeNode("n", notReady), wantRun: true, wantKeep: true},
		{name: "unreachable", node: makeNode("n", tainted(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoExecute)), wantRun: true, wantKeep: true},
		{name: "memory pressure", node: makeNode("n", tainted(corev1.TaintNodeMemoryPressure, "", corev1.TaintEffectNoSchedule)), wantRun: true, wantKeep: true},
		{name: "network unavailable", node: makeNode("n", tainted(corev1.TaintNodeNetworkUnavailable, "", corev1.TaintEffectNoSchedule)), wantKeep: true},
		{name: "network unavailable, host network", node: makeNode("n", tainted(corev1.TaintNodeNetworkUnavailable, "", corev1.TaintEffectNoSchedule)),
			template: func(s *corev1.PodSpec) { s.HostNetwork = true }, wantRun: true, wantKeep: true},
		// A NoSchedule taint keeps new daemons away but does not evict.
		{name: "untolerated NoSchedule taint", node: makeNode("n", tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule)), wantKeep: true},
		{name: "untolerated NoExecute taint", node: makeNode("n", tainted("dedicated", "gpu", corev1.TaintEffectNoExecute))},
		{name: "PreferNoSchedule taint", node: makeNode("n", tainted("dedicated", "gpu", corev1.TaintEffectPreferNoSchedule)), wantRun: true, wantKeep: true},
		{name: "nodeSelector mismatch", node: makeNode("n"),
			template: func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"disk": "ssd"} }},
		{name: "template names another node", node: makeNode("n"),
			template: func(s *corev1.PodSpec) { s.NodeName = "other" }},
		{name: "template names this node", node: makeNode("n"),
			template: func(s *corev1.PodSpec) { s.NodeName = "n" }, wantRun: true, wantKeep: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := makeDaemonSet("agent")
			if tc.template != nil {
				tc.template(&ds.Spec.Template.Spec)
			}
			pod := daemonPod(ds, "h", "")
			run, keep := placement(&pod.Spec, tc.node)
			if run != tc.wantRun || keep != tc.wantKeep {
				t.Errorf("got run %v keep %v, want run %v keep %v", run, keep, tc.wantRun, tc.wantKeep)
			}
		})
	}
}

func TestDaemonTolerationsReplaceTheTemplatesOwn(t *testing.T) {
	ds := makeDaemonSet("agent")
	secs := int64(300)
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
		{Key: "dedicated", Operator: corev1.TolerationOpExists},
	}
	pod := daemonPod(ds, "h", "n1")
	if got, want := len(pod.Spec.Tolerations), len(daemonTolerations)+1; got != want {
		t.Fatalf("got %d tolerations %v, want %d", got, pod.Spec.Tolerations, want)
	}
	for _, tol := range pod.Spec.Tolerations {
		if tol.Key == corev1.TaintNodeNotReady && tol.TolerationSeconds != nil {
			t.Errorf("got not-ready toleration %v, want one without a time limit", tol)
		}
	}
	if len(ds.Spec.Template.Spec.Tolerations) != 2 || ds.Spec.Template.Spec.Tolerations[0].TolerationSeconds == nil {
		t.Errorf("the template changed: %v", ds.Spec.Template.Spec.Tolerations)
	}
	if pod.Spec.NodeName != "n1" || pod.Labels[appsv1.ControllerRevisionHashLabelKey] != "h" {
		t.Errorf("got node %q hash %q, want n1 and h", pod.Spec.NodeName, pod.Labels[appsv1.ControllerRevisionHashLabelKey])
	}
}

func TestBudgets(t *testing.T) {
	v := func(x intstr.IntOrString) *intstr.IntOrString { return &x }
	cases := []struct {
		name                       string
		strategy                   *appsv1.RollingUpdateDaemonSet
		desired                    int
		wantSurge, wantUnavailable int
	}{
		{name: "no rollingUpdate", desired: 10, wantUnavailable: 1},
		{name: "defaults", strategy: &appsv1.RollingUpdateDaemonSet{}, desired: 10, wantUnavailable: 1},
		{name: "integer", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromInt32(3))}, desired: 10, wantUnavailable: 3},
		{name: "percent rounds up", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromString("25%"))}, desired: 10, wantUnavailable: 3},
		{name: "surge", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromInt32(0)), MaxSurge: v(intstr.FromString("10%"))}, desired: 10, wantSurge: 1},
		{name: "both zero", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromInt32(0)), MaxSurge: v(intstr.FromInt32(0))}, desired: 10, wantUnavailable: 1},
		{name: "garbage", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromString("lots"))}, desired: 10, wantUnavailable: 1},
		{name: "negative", strategy: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: v(intstr.FromInt32(-2))}, desired: 10, wantUnavailable: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := makeDaemonSet("agent")
			ds.Spec.UpdateStrategy.RollingUpdate = tc.strategy
			surge, unavailable := budgets(ds, tc.desired)
			if surge != tc.wantSurge || unavailable != tc.wantUnavailable {
				t.Errorf("got surge %d unavailable %d, want %d and %d", surge, unavailable, tc.wantSurge, tc.wantUnavailable)
			}
		})
	}
}
