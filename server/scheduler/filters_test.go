package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

type filterCase struct {
	name string
	pod  *corev1.Pod
	node *nodeInfo
	want []string
}

func runFilterCases(t *testing.T, f func(*podInfo, *nodeInfo) []string, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := f(newPodInfo(tc.pod), tc.node)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilterReady(t *testing.T) {
	runFilterCases(t, filterReady, []filterCase{
		{name: "ready", pod: makePod("p"), node: nodeInfoOf(makeNode("n"))},
		{name: "ready false", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withReady(corev1.ConditionFalse))),
			want: []string{"node(s) had condition Ready=False"}},
		{name: "ready unknown", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withReady(corev1.ConditionUnknown))),
			want: []string{"node(s) had condition Ready=Unknown"}},
		{name: "no ready condition", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withoutConditions)),
			want: []string{"node(s) were not ready"}},
	})
}

func TestFilterUnschedulable(t *testing.T) {
	runFilterCases(t, filterUnschedulable, []filterCase{
		{name: "schedulable", pod: makePod("p"), node: nodeInfoOf(makeNode("n"))},
		{name: "cordoned", pod: makePod("p"), node: nodeInfoOf(makeNode("n", cordoned)),
			want: []string{"node(s) were unschedulable"}},
		{name: "cordoned, pod tolerates the unschedulable taint",
			pod:  makePod("p", withTolerations(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			node: nodeInfoOf(makeNode("n", cordoned))},
		{name: "cordoned, pod tolerates everything",
			pod:  makePod("p", withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			node: nodeInfoOf(makeNode("n", cordoned))},
		{name: "cordoned, toleration for another effect",
			pod:  makePod("p", withTolerations(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})),
			node: nodeInfoOf(makeNode("n", cordoned)), want: []string{"node(s) were unschedulable"}},
	})
}

func TestFilterTaints(t *testing.T) {
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	gpuExec := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute}
	soft := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectPreferNoSchedule}
	noValue := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoSchedule}
	untolerated := []string{"node(s) had untolerated taint {dedicated: gpu}"}
	tol := func(key string, op corev1.TolerationOperator, value string, effect corev1.TaintEffect) func(*corev1.Pod) {
		return withTolerations(corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
	runFilterCases(t, filterTaints, []filterCase{
		{name: "no taints", pod: makePod("p"), node: nodeInfoOf(makeNode("n"))},
		{name: "NoSchedule untolerated", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withTaints(gpu))), want: untolerated},
		{name: "NoExecute untolerated", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withTaints(gpuExec))), want: untolerated},
		{name: "PreferNoSchedule does not keep pods off", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withTaints(soft)))},
		{name: "taint without value", pod: makePod("p"), node: nodeInfoOf(makeNode("n", withTaints(noValue))),
			want: []string{"node(s) had untolerated taint {maintenance: }"}},
		{name: "Equal with key, value and effect", pod: makePod("p", tol("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoSchedule)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu)))},
		{name: "empty operator means Equal", pod: makePod("p", tol("dedicated", "", "gpu", corev1.TaintEffectNoSchedule)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu)))},
		{name: "Equal with another value", pod: makePod("p", tol("dedicated", corev1.TolerationOpEqual, "cpu", corev1.TaintEffectNoSchedule)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu))), want: untolerated},
		{name: "Equal with another key", pod: makePod("p", tol("team", corev1.TolerationOpEqual, "gpu", "")),
			node: nodeInfoOf(makeNode("n", withTaints(gpu))), want: untolerated},
		{name: "Exists with key matches any value", pod: makePod("p", tol("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu)))},
		{name: "Exists with empty key matches every taint", pod: makePod("p", tol("", corev1.TolerationOpExists, "", "")),
			node: nodeInfoOf(makeNode("n", withTaints(gpu, gpuExec, noValue)))},
		{name: "Exists with empty key but an effect", pod: makePod("p", tol("", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu, gpuExec))), want: untolerated},
		{name: "empty effect matches NoExecute", pod: makePod("p", tol("dedicated", corev1.TolerationOpEqual, "gpu", "")),
			node: nodeInfoOf(makeNode("n", withTaints(gpuExec)))},
		{name: "NoExecute toleration does not cover NoSchedule", pod: makePod("p", tol("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoExecute)),
			node: nodeInfoOf(makeNode("n", withTaints(gpu))), want: untolerated},
		{name: "first untolerated of several is the reason", pod: makePod("p", tol("maintenance", corev1.TolerationOpExists, "", "")),
			node: nodeInfoOf(makeNode("n", withTaints(noValue, gpu))), want: untolerated},
	})
}

func TestFilterNodeAffinity(t *testing.T) {
	node := nodeInfoOf(makeNode("n1", withLabels("zone", "a", "disk", "ssd", "cores", "16")))
	no := []string{"node(s) didn't match Pod's node affinity/selector"}
	term := func(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: reqs}
	}
	fields := func(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchFields: reqs}
	}
	runFilterCases(t, filterNodeAffinity, []filterCase{
		{name: "nothing required", pod: makePod("p"), node: node},
		{name: "nodeSelector matches", pod: makePod("p", withNodeSelector("zone", "a", "disk", "ssd")), node: node},
		{name: "nodeSelector value differs", pod: makePod("p", withNodeSelector("zone", "b")), node: node, want: no},
		{name: "nodeSelector label missing", pod: makePod("p", withNodeSelector("gpu", "true")), node: node, want: no},
		{name: "In", pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b", "a")))), node: node},
		{name: "In, no value matches", pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b", "c")))), node: node, want: no},
		{name: "In, label missing", pod: makePod("p", withAffinity(term(expr("gpu", corev1.NodeSelectorOpIn, "true")))), node: node, want: no},
		{name: "NotIn", pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpNotIn, "b")))), node: node},
		{name: "NotIn, value listed", pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpNotIn, "a")))), node: node, want: no},
		{name: "NotIn, label missing", pod: makePod("p", withAffinity(term(expr("gpu", corev1.NodeSelectorOpNotIn, "true")))), node: node},
		{name: "Exists", pod: makePod("p", withAffinity(term(expr("disk", corev1.NodeSelectorOpExists)))), node: node},
		{name: "Exists, label missing", pod: makePod("p", withAffinity(term(expr("gpu", corev1.NodeSelectorOpExists)))), node: node, want: no},
		{name: "DoesNotExist", pod: makePod("p", withAffinity(term(expr("gpu", corev1.NodeSelectorOpDoesNotExist)))), node: node},
		{name: "DoesNotExist, label present", pod: makePod("p", withAffinity(term(expr("disk", corev1.NodeSelectorOpDoesNotExist)))), node: node, want: no},
		{name: "Gt", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "8")))), node: node},
		{name: "Gt, equal", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "16")))), node: node, want: no},
		{name: "Lt", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpLt, "32")))), node: node},
		{name: "Lt, larger", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpLt, "4")))), node: node, want: no},
		{name: "Gt, label not an integer", pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpGt, "1")))), node: node, want: no},
		{name: "Gt, value not an integer", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "eight")))), node: node, want: no},
		{name: "Gt, two values", pod: makePod("p", withAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "1", "2")))), node: node, want: no},
		{name: "Lt, label missing", pod: makePod("p", withAffinity(term(expr("gpus", corev1.NodeSelectorOpLt, "2")))), node: node, want: no},
		{name: "unknown operator", pod: makePod("p", withAffinity(term(expr("zone", "Near", "a")))), node: node, want: no},
		{name: "expressions of a term are ANDed",
			pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "a"), expr("disk", corev1.NodeSelectorOpIn, "hdd")))), node: node, want: no},
		{name: "terms are ORed",
			pod: makePod("p", withAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b")), term(expr("disk", corev1.NodeSelectorOpIn, "ssd")))), node: node},
		{name: "no terms match nothing", pod: makePod("p", withAffinity()), node: node, want: no},
		{name: "an empty term matches nothing", pod: makePod("p", withAffinity(corev1.NodeSelectorTerm{})), node: node, want: no},
		{name: "matchFields metadata.name In", pod: makePod("p", withAffinity(fields(expr("metadata.name", corev1.NodeSelectorOpIn, "n1")))), node: node},
		{name: "matchFields metadata.name In, other node", pod: makePod("p", withAffinity(fields(expr("metadata.name", corev1.NodeSelectorOpIn, "n2")))), node: node, want: no},
		{name: "matchFields metadata.name NotIn", pod: makePod("p", withAffinity(fields(expr("metadata.name", corev1.NodeSelectorOpNotIn, "n1")))), node: node, want: no},
		{name: "matchFields on an unknown field", pod: makePod("p", withAffinity(fields(expr("metadata.uid", corev1.NodeSelectorOpIn, "n1")))), node: node, want: no},
		{name: "matchFields and matchExpressions together",
			pod: makePod("p", withAffinity(corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "a")},
				MatchFields:      []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n1")},
			})), node: node},
		{name: "nodeSelector and affinity must both match",
			pod: makePod("p", withNodeSelector("zone", "b"), withAffinity(term(expr("zone", corev1.NodeSelectorOpExists)))), node: node, want: no},
	})
}

func TestFilterResources(t *testing.T) {
	// makeNode: 4 cpu, 8Gi, 110 pods.
	node := makeNode("n", withAllocatable("ephemeral-storage", "10Gi", "example.com/gpu", "2"))
	busy := makePod("busy", onNode("n"), withRequests("cpu", "3", "memory", "6Gi", "example.com/gpu", "1"))
	runFilterCases(t, filterResources, []filterCase{
		{name: "fits an empty node", pod: makePod("p", withRequests("cpu", "4", "memory", "8Gi")), node: nodeInfoOf(node)},
		{name: "fits beside a pod", pod: makePod("p", withRequests("cpu", "1", "memory", "2Gi")), node: nodeInfoOf(node, busy)},
		{name: "insufficient cpu", pod: makePod("p", withRequests("cpu", "1500m")), node: nodeInfoOf(node, busy),
			want: []string{"Insufficient cpu"}},
		{name: "insufficient memory", pod: makePod("p", withRequests("memory", "3Gi")), node: nodeInfoOf(node, busy),
			want: []string{"Insufficient memory"}},
		{name: "insufficient cpu and memory", pod: makePod("p", withRequests("cpu", "2", "memory", "3Gi")), node: nodeInfoOf(node, busy),
			want: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "insufficient ephemeral-storage", pod: makePod("p", withRequests("ephemeral-storage", "11Gi")), node: nodeInfoOf(node),
			want: []string{"Insufficient ephemeral-storage"}},
		{name: "extended resource fits", pod: makePod("p", withRequests("example.com/gpu", "1")), node: nodeInfoOf(node, busy)},
		{name: "extended resource used up", pod: makePod("p", withRequests("example.com/gpu", "2")), node: nodeInfoOf(node, busy),
			want: []string{"Insufficient example.com/gpu"}},
		{name: "extended resource the node lacks", pod: makePod("p", withRequests("example.com/fpga", "1")), node: nodeInfoOf(node),
			want: []string{"Insufficient example.com/fpga"}},
		{name: "sum of containers", pod: makePod("p", withRequests("cpu", "500m"), withContainer("cpu", "600m")), node: nodeInfoOf(node, busy),
			want: []string{"Insufficient cpu"}},
		{name: "an init container larger than the app containers", pod: makePod("p", withRequests("memory", "1Gi"), withInit(false, "memory", "3Gi")),
			node: nodeInfoOf(node, busy), want: []string{"Insufficient memory"}},
		{name: "init containers smaller than the app containers", pod: makePod("p", withRequests("memory", "2Gi"), withInit(false, "memory", "1Gi"), withInit(false, "memory", "2Gi")),
			node: nodeInfoOf(node, busy)},
		{name: "a sidecar adds to the app containers", pod: makePod("p", withRequests("memory", "1500Mi"), withInit(true, "memory", "1Gi")),
			node: nodeInfoOf(node, busy), want: []string{"Insufficient memory"}},
		{name: "no requests fit an overcommitted node", pod: makePod("p"),
			node: nodeInfoOf(node, busy, makePod("more", onNode("n"), withRequests("cpu", "3", "memory", "6Gi")))},
		{name: "too many pods", pod: makePod("p"),
			node: nodeInfoOf(makeNode("n", withAllocatable("pods", "2")), makePod("a", onNode("n")), makePod("b", onNode("n"))),
			want: []string{"Too many pods"}},
		{name: "too many pods and insufficient cpu", pod: makePod("p", withRequests("cpu", "2")),
			node: nodeInfoOf(makeNode("n", withAllocatable("pods", "1")), busy), want: []string{"Too many pods", "Insufficient cpu"}},
		{name: "node without a pods allocatable", pod: makePod("p"),
			node: nodeInfoOf(makeNode("n", func(n *corev1.Node) { delete(n.Status.Allocatable, corev1.ResourcePods) })), want: []string{"Too many pods"}},
	})
}

func TestFilterHostPorts(t *testing.T) {
	used := func(ip string, protocol corev1.Protocol, port int32) *nodeInfo {
		return nodeInfoOf(makeNode("n"), makePod("other", onNode("n"), withHostPort(ip, protocol, port)))
	}
	conflict := []string{"node(s) didn't have free ports for the requested pod ports"}
	runFilterCases(t, filterHostPorts, []filterCase{
		{name: "no host ports", pod: makePod("p"), node: used("", "", 80)},
		{name: "port free", pod: makePod("p", withHostPort("", "", 81)), node: used("", "", 80)},
		{name: "same port, both on all addresses", pod: makePod("p", withHostPort("", "", 80)), node: used("", "", 80), want: conflict},
		{name: "same port, other protocol", pod: makePod("p", withHostPort("", corev1.ProtocolUDP, 80)), node: used("", "", 80)},
		{name: "same port, TCP stated and defaulted", pod: makePod("p", withHostPort("0.0.0.0", corev1.ProtocolTCP, 80)), node: used("", "", 80), want: conflict},
		{name: "same port, different addresses", pod: makePod("p", withHostPort("10.0.0.2", "", 80)), node: used("10.0.0.1", "", 80)},
		{name: "same port and address", pod: makePod("p", withHostPort("10.0.0.1", "", 80)), node: used("10.0.0.1", "", 80), want: conflict},
		{name: "all addresses wanted, one taken", pod: makePod("p", withHostPort("0.0.0.0", "", 80)), node: used("10.0.0.1", "", 80), want: conflict},
		{name: "one address wanted, all taken", pod: makePod("p", withHostPort("10.0.0.1", "", 80)), node: used("", "", 80), want: conflict},
		{name: "second of two ports taken", pod: makePod("p", withHostPort("", "", 81), withHostPort("", "", 80)), node: used("", "", 80), want: conflict},
	})
}

func TestFeasibleStopsAtFirstRejection(t *testing.T) {
	node := nodeInfoOf(makeNode("n", cordoned, withReady(corev1.ConditionFalse)))
	reasons, kind := feasible(newPodInfo(makePod("p")), node)
	if want := []string{"node(s) had condition Ready=False"}; !slices.Equal(reasons, want) || kind != failNotReady {
		t.Fatalf("got %q (kind %b), want %q (kind %b)", reasons, kind, want, failNotReady)
	}
}
