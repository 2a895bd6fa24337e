package scheduler

import "math/rand/v2"

// picker chooses a node for a pod over the node accounts. It keeps its
// buffers between decisions; one scheduling loop owns it.
type picker struct {
	rng      *rand.Rand
	feasible []*nodeInfo
	scores   []int64
	spread   []int64
}

// pick returns the best feasible node for p, or why there is none. It
// only reads the accounts.
func (pk *picker) pick(p *podInfo, nodes []*nodeInfo) (*nodeInfo, *fitError) {
	feasibleNodes := pk.feasible[:0]
	for _, n := range nodes {
		if reasons, _ := feasible(p, n); reasons == nil {
			feasibleNodes = append(feasibleNodes, n)
		}
	}
	pk.feasible = feasibleNodes
	if len(feasibleNodes) == 0 {
		return nil, diagnose(p, nodes)
	}
	if len(feasibleNodes) == 1 {
		return feasibleNodes[0], nil
	}
	scores, spread := pk.scores[:0], pk.spread[:0]
	for _, n := range feasibleNodes {
		scores = append(scores, scoreLeastRequested(p, n))
		spread = append(spread, ownerCount(p, n))
	}
	scoreSpread(spread)
	for i := range scores {
		scores[i] += spread[i]
	}
	pk.scores, pk.spread = scores, spread
	best := feasibleNodes[selectBest(scores, pk.rng)]
	// Do not keep the nodes alive through the buffer.
	clear(feasibleNodes)
	return best, nil
}
