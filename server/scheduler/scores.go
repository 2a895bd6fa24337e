package scheduler

import "math/rand/v2"

// maxScore is the best score one scoring function gives a node.
const maxScore = 100

// scoreLeastRequested favours the node that keeps the most cpu and memory
// free once the pod is on it, which spreads load: each resource scores
// 0-100 by the share left free, and the two are averaged. Requests count
// with the scoring defaults, so pods without requests weigh something.
func scoreLeastRequested(p *podInfo, n *nodeInfo) int64 {
	cpu := leastRequested(n.scoreCPU+p.scoreCPU, n.alloc.MilliCPU)
	mem := leastRequested(n.scoreMemory+p.scoreMemory, n.alloc.Memory)
	return (cpu + mem) / 2
}

func leastRequested(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * maxScore / capacity
}

// ownerCount is how many pods of the pod's controller owner a node has
// already; the input of scoreSpread.
func ownerCount(p *podInfo, n *nodeInfo) int64 {
	if p.owner == "" {
		return 0
	}
	return int64(n.owners[p.owner])
}

// scoreSpread turns the owner counts of the feasible nodes into scores in
// place: the node with the most pods of the same owner scores 0, one with
// none scores 100, so replicas of one set spread over nodes and a node
// failure takes few of them. With no such pods anywhere all score 100.
func scoreSpread(counts []int64) {
	var most int64
	for _, c := range counts {
		most = max(most, c)
	}
	for i, c := range counts {
		if most == 0 {
			counts[i] = maxScore
			continue
		}
		counts[i] = (most - c) * maxScore / most
	}
}

// selectBest returns the index of the highest score, choosing uniformly
// among equal best ones so that equal nodes fill evenly; -1 if scores is
// empty.
func selectBest(scores []int64, rng *rand.Rand) int {
	best, ties := -1, 0
	for i, s := range scores {
		switch {
		case best < 0 || s > scores[best]:
			best, ties = i, 1
		case s == scores[best]:
			// Keep the i-th of ties equal candidates with probability
			// 1/ties: each ends up chosen equally often.
			ties++
			if rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}
