package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFitErrorMessage(t *testing.T) {
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	busy := func(name string) *corev1.Pod {
		return makePod("busy-"+name, onNode(name), withRequests("cpu", "4", "memory", "8Gi"))
	}
	cases := []struct {
		name      string
		pod       *corev1.Pod
		nodes     []*nodeInfo
		want      string
		wantKinds failureKind
	}{
		{name: "no nodes", pod: makePod("p"), want: "0/0 nodes are available: no nodes registered.", wantKinds: failNoNodes},
		{name: "the example of the issue",
			pod:       makePod("p", withRequests("memory", "16Gi")),
			nodes:     []*nodeInfo{nodeInfoOf(makeNode("a")), nodeInfoOf(makeNode("b")), nodeInfoOf(makeNode("c", withTaints(gpu)))},
			want:      "0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}.",
			wantKinds: failResources | failTaint},
		{name: "a node short of two resources counts under both",
			pod:       makePod("p", withRequests("cpu", "1", "memory", "1Gi")),
			nodes:     []*nodeInfo{nodeInfoOf(makeNode("a"), busy("a")), nodeInfoOf(makeNode("b", cordoned))},
			want:      "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) were unschedulable.",
			wantKinds: failResources | failUnschedulable},
		{name: "reasons sorted, not counts",
			pod: makePod("p", withNodeSelector("zone", "a"), withHostPort("", "", 80)),
			nodes: []*nodeInfo{
				nodeInfoOf(makeNode("a", withReady(corev1.ConditionFalse))),
				nodeInfoOf(makeNode("b", withReady(corev1.ConditionFalse))),
				nodeInfoOf(makeNode("c", withoutConditions)),
				nodeInfoOf(makeNode("d")),
				nodeInfoOf(makeNode("e", withLabels("zone", "a")), makePod("x", onNode("e"), withHostPort("", "", 80))),
				nodeInfoOf(makeNode("f", withAllocatable("pods", "0"), withLabels("zone", "a"))),
			},
			want: "0/6 nodes are available: 1 Too many pods, 1 node(s) didn't have free ports for the requested pod ports, " +
				"1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had condition Ready=False, 1 node(s) were not ready.",
			wantKinds: failNotReady | failAffinity | failPorts | failResources},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fe := diagnose(newPodInfo(tc.pod), tc.nodes)
			if got := fe.Error(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if fe.kinds != tc.wantKinds {
				t.Fatalf("got kinds %b, want %b", fe.kinds, tc.wantKinds)
			}
			pk := picker{rng: testRand()}
			if n, fitErr := pk.pick(newPodInfo(tc.pod), tc.nodes); n != nil || fitErr == nil || fitErr.Error() != tc.want {
				t.Fatalf("pick: got %v, %v; want no node and %q", n, fitErr, tc.want)
			}
		})
	}
}
