package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// fitError says why a pod fits on no node: how many nodes were considered
// and, per reason, on how many nodes it applied. One node may count under
// several reasons (short of both cpu and memory).
type fitError struct {
	nodes   int
	reasons map[string]int
	// kinds are the filters that rejected some node.
	kinds failureKind
}

// diagnose works out why no node is feasible for p. It reruns the filters
// rather than keep their results on the fast path, where most nodes pass.
func diagnose(p *podInfo, nodes []*nodeInfo) *fitError {
	fe := &fitError{nodes: len(nodes), reasons: make(map[string]int)}
	if len(nodes) == 0 {
		fe.kinds = failNoNodes
		return fe
	}
	for _, n := range nodes {
		reasons, kind := feasible(p, n)
		fe.kinds |= kind
		for _, r := range reasons {
			fe.reasons[r]++
		}
	}
	return fe
}

// Error is the FailedScheduling message, as Kubernetes words it:
// "0/3 nodes are available: 2 Insufficient memory, 1 node(s) were
// unschedulable." with the reasons in sorted order.
func (e *fitError) Error() string {
	if e.nodes == 0 {
		return "0/0 nodes are available: no nodes registered."
	}
	keys := make([]string, 0, len(e.reasons))
	for r := range e.reasons {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, r := range keys {
		parts[i] = fmt.Sprintf("%d %s", e.reasons[r], r)
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", e.nodes, strings.Join(parts, ", "))
}
