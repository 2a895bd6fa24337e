package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeInfo is the scheduler's running account of one node: what it offers
// and what the pods placed on it (bound or assumed) request. It is kept up
// to date pod by pod, so a scheduling decision never sums over all pods.
type nodeInfo struct {
	name string
	// node is nil while pods name a node the scheduler has not seen (or
	// no longer sees); such a node is not a candidate.
	node *corev1.Node
	// index is the position in the cache's candidate list, -1 if none.
	index int

	alloc       amounts
	allowedPods int64
	// notReady is the FailedScheduling reason while the node is not
	// Ready, "" when it is.
	notReady string
	// taints are the node's NoSchedule and NoExecute taints, the only
	// ones that keep pods off.
	taints []corev1.Taint

	req                   amounts
	scoreCPU, scoreMemory int64
	pods                  int64
	// ports counts the claims on each host port by address.
	ports map[protoPort]map[string]int
	// owners counts the pods here per controller owner, for spreading.
	owners map[types.UID]int
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, index: -1}
}

// setNode takes what the filters need from the Node object.
func (n *nodeInfo) setNode(node *corev1.Node) {
	n.node = node
	n.alloc = resourcesOf(node.Status.Allocatable)
	n.allowedPods = 0
	if q, ok := node.Status.Allocatable[corev1.ResourcePods]; ok {
		n.allowedPods = q.Value()
	}
	n.notReady = notReadyReason(node)
	n.taints = n.taints[:0]
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			n.taints = append(n.taints, t)
		}
	}
}

// notReadyReason is "" for a node whose Ready condition is True, else the
// FailedScheduling reason for it.
func notReadyReason(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return ""
		case corev1.ConditionFalse, corev1.ConditionUnknown:
			return "node(s) had condition Ready=" + string(c.Status)
		}
		return reasonNotReady
	}
	return reasonNotReady
}

func (n *nodeInfo) addPod(p *podInfo) {
	n.req.add(p.req)
	n.scoreCPU += p.scoreCPU
	n.scoreMemory += p.scoreMemory
	n.pods++
	for _, hp := range p.ports {
		if n.ports == nil {
			n.ports = make(map[protoPort]map[string]int)
		}
		ips := n.ports[hp.protoPort]
		if ips == nil {
			ips = make(map[string]int, 1)
			n.ports[hp.protoPort] = ips
		}
		ips[hp.ip]++
	}
	if p.owner != "" {
		if n.owners == nil {
			n.owners = make(map[types.UID]int)
		}
		n.owners[p.owner]++
	}
}

func (n *nodeInfo) removePod(p *podInfo) {
	n.req.sub(p.req)
	n.scoreCPU -= p.scoreCPU
	n.scoreMemory -= p.scoreMemory
	n.pods--
	for _, hp := range p.ports {
		ips := n.ports[hp.protoPort]
		if ips[hp.ip]--; ips[hp.ip] <= 0 {
			delete(ips, hp.ip)
		}
		if len(ips) == 0 {
			delete(n.ports, hp.protoPort)
		}
	}
	if p.owner != "" {
		if n.owners[p.owner]--; n.owners[p.owner] <= 0 {
			delete(n.owners, p.owner)
		}
	}
}
