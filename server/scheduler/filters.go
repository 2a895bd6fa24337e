package scheduler

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"orch.dev/orch/server/controller"
)

// The reasons a node is not feasible, worded as Kubernetes words them so
// that people and tools reading FailedScheduling events recognise them.
const (
	reasonNotReady      = "node(s) were not ready"
	reasonUnschedulable = "node(s) were unschedulable"
	reasonAffinity      = "node(s) didn't match Pod's node affinity/selector"
	reasonPorts         = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods   = "Too many pods"
	insufficientPrefix  = "Insufficient "
)

// failureKind says which filter rejected a node. A waiting pod remembers
// the kinds that kept it off every node, so that only a cluster change
// that can cure one of them sends it back to be tried.
type failureKind uint8

const (
	failNotReady failureKind = 1 << iota
	failUnschedulable
	failTaint
	failAffinity
	failPorts
	failResources
	// failNoNodes is the failure when there was no node at all.
	failNoNodes
	// failVolume: the pod's claims are missing, unbound or on another node.
	failVolume

	failAll failureKind = 1<<8 - 1
)

// A filter reports why a pod cannot go to a node: nil when it can. Filters
// are pure functions of the pod and the node's account, so they can be
// tested without an API server.
type filter struct {
	kind failureKind
	run  func(p *podInfo, n *nodeInfo) []string
}

// filters run in this order; the first that rejects a node is its
// reason.
var filters = []filter{
	{failNotReady, filterReady},
	{failUnschedulable, filterUnschedulable},
	{failTaint, filterTaints},
	{failAffinity, filterNodeAffinity},
	{failVolume, filterVolumeAffinity},
	{failPorts, filterHostPorts},
	{failResources, filterResources},
}

// feasible runs every filter; on the first rejection it returns the
// reasons and the filter's kind.
func feasible(p *podInfo, n *nodeInfo) ([]string, failureKind) {
	for _, f := range filters {
		if reasons := f.run(p, n); reasons != nil {
			return reasons, f.kind
		}
	}
	return nil, 0
}

func filterReady(_ *podInfo, n *nodeInfo) []string {
	if n.notReady == "" {
		return nil
	}
	return []string{n.notReady}
}

func filterUnschedulable(p *podInfo, n *nodeInfo) []string {
	if !n.node.Spec.Unschedulable || controller.ToleratesTaint(p.pod.Spec.Tolerations, &controller.UnschedulableTaint) {
		return nil
	}
	return []string{reasonUnschedulable}
}

func filterTaints(p *podInfo, n *nodeInfo) []string {
	for i := range n.taints {
		t := &n.taints[i]
		if !controller.ToleratesTaint(p.pod.Spec.Tolerations, t) {
			return []string{"node(s) had untolerated taint {" + t.Key + ": " + t.Value + "}"}
		}
	}
	return nil
}

// filterNodeAffinity checks the pod's nodeSelector and its required node
// affinity; a node must satisfy both. The DaemonSet controller places its
// pods by the same rule.
func filterNodeAffinity(p *podInfo, n *nodeInfo) []string {
	if controller.NodeSelectionMatches(&p.pod.Spec, n.node) {
		return nil
	}
	return []string{reasonAffinity}
}

// filterHostPorts rejects a node where a pod already claims one of the
// pod's host ports on the same protocol and an overlapping address.
func filterHostPorts(p *podInfo, n *nodeInfo) []string {
	for _, hp := range p.ports {
		ips := n.ports[hp.protoPort]
		if len(ips) == 0 {
			continue
		}
		if hp.ip == anyIP || ips[anyIP] > 0 || ips[hp.ip] > 0 {
			return []string{reasonPorts}
		}
	}
	return nil
}

// filterResources checks that the pod's requests fit in what the node has
// left, reporting every resource that does not. A request of zero fits
// even a node that is already overcommitted.
func filterResources(p *podInfo, n *nodeInfo) []string {
	var reasons []string
	if n.pods+1 > n.allowedPods {
		reasons = append(reasons, reasonTooManyPods)
	}
	r := &p.req
	if r.MilliCPU > 0 && r.MilliCPU > n.alloc.MilliCPU-n.req.MilliCPU {
		reasons = append(reasons, insufficientPrefix+string(corev1.ResourceCPU))
	}
	if r.Memory > 0 && r.Memory > n.alloc.Memory-n.req.Memory {
		reasons = append(reasons, insufficientPrefix+string(corev1.ResourceMemory))
	}
	if r.EphemeralStorage > 0 && r.EphemeralStorage > n.alloc.EphemeralStorage-n.req.EphemeralStorage {
		reasons = append(reasons, insufficientPrefix+string(corev1.ResourceEphemeralStorage))
	}
	if len(r.Scalar) > 0 {
		reasons = appendInsufficientScalars(reasons, r.Scalar, n)
	}
	return reasons
}

// appendInsufficientScalars adds the extended resources that do not fit,
// in name order so the reasons are stable.
func appendInsufficientScalars(reasons []string, want map[corev1.ResourceName]int64, n *nodeInfo) []string {
	var short []string
	for name, v := range want {
		if v > 0 && v > n.alloc.Scalar[name]-n.req.Scalar[name] {
			short = append(short, insufficientPrefix+string(name))
		}
	}
	slices.Sort(short)
	return append(reasons, short...)
}
