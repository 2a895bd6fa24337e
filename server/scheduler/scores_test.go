package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func testRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestScoreLeastRequested(t *testing.T) {
	// makeNode: 4 cpu, 8Gi.
	cases := []struct {
		name string
		pod  *corev1.Pod
		node *nodeInfo
		want int64
	}{
		{name: "empty node, pod takes a quarter of cpu and half the memory",
			pod: makePod("p", withRequests("cpu", "1", "memory", "4Gi")), node: nodeInfoOf(makeNode("n")), want: (75 + 50) / 2},
		{name: "pods already there count",
			pod:  makePod("p", withRequests("cpu", "1", "memory", "1Gi")),
			node: nodeInfoOf(makeNode("n"), makePod("a", onNode("n"), withRequests("cpu", "2", "memory", "3Gi"))), want: (25 + 50) / 2},
		{name: "a pod without requests weighs the defaults",
			pod: makePod("p"), node: nodeInfoOf(makeNode("n")), want: (97 + 97) / 2},
		{name: "full node scores 0",
			pod: makePod("p", withRequests("cpu", "4", "memory", "8Gi")), node: nodeInfoOf(makeNode("n")), want: 0},
		{name: "overcommitted resource scores 0",
			pod: makePod("p", withRequests("cpu", "5", "memory", "4Gi")), node: nodeInfoOf(makeNode("n")), want: (0 + 50) / 2},
		{name: "node without allocatable scores 0",
			pod: makePod("p", withRequests("cpu", "1")), node: nodeInfoOf(makeNode("n", func(n *corev1.Node) { n.Status.Allocatable = nil })), want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := scoreLeastRequested(newPodInfo(tc.pod), tc.node); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestScoreSpread(t *testing.T) {
	cases := []struct {
		name   string
		counts []int64
		want   []int64
	}{
		{name: "none anywhere", counts: []int64{0, 0, 0}, want: []int64{100, 100, 100}},
		{name: "fewer scores higher", counts: []int64{0, 1, 2}, want: []int64{100, 50, 0}},
		{name: "equal counts", counts: []int64{3, 3}, want: []int64{0, 0}},
		{name: "rounding down", counts: []int64{1, 3}, want: []int64{66, 0}},
		{name: "empty", counts: []int64{}, want: []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Clone(tc.counts)
			scoreSpread(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnerCount(t *testing.T) {
	node := nodeInfoOf(makeNode("n"),
		makePod("a", onNode("n"), ownedBy("rs-1")), makePod("b", onNode("n"), ownedBy("rs-1")), makePod("c", onNode("n"), ownedBy("rs-2")), makePod("d", onNode("n")))
	cases := []struct {
		name string
		pod  *corev1.Pod
		want int64
	}{
		{name: "same owner", pod: makePod("p", ownedBy("rs-1")), want: 2},
		{name: "other owner", pod: makePod("p", ownedBy("rs-3")), want: 0},
		{name: "no owner", pod: makePod("p"), want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownerCount(newPodInfo(tc.pod), node); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSelectBest(t *testing.T) {
	cases := []struct {
		name   string
		scores []int64
		// want are the indexes that may be chosen.
		want []int
	}{
		{name: "empty", scores: nil, want: []int{-1}},
		{name: "one best", scores: []int64{10, 90, 50}, want: []int{1}},
		{name: "ties", scores: []int64{90, 10, 90, 90}, want: []int{0, 2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := testRand()
			seen := map[int]int{}
			const rounds = 3000
			for range rounds {
				seen[selectBest(tc.scores, rng)]++
			}
			for i, n := range seen {
				if !slices.Contains(tc.want, i) {
					t.Fatalf("got index %d chosen, want one of %v", i, tc.want)
				}
				// Equal candidates are chosen about equally often.
				if share := float64(n) / rounds; share < 0.8/float64(len(tc.want)) {
					t.Fatalf("got index %d chosen %d of %d times, want about 1/%d", i, n, rounds, len(tc.want))
				}
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("got %v chosen, want each of %v", seen, tc.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	t.Run("spread outweighs a little load", func(t *testing.T) {
		// a already runs two replicas; b is busier but has none.
		big := func(n *corev1.Node) { withAllocatable("cpu", "10", "memory", "10Gi")(n) }
		a := nodeInfoOf(makeNode("a", big),
			makePod("r1", onNode("a"), ownedBy("rs"), withRequests("cpu", "100m", "memory", "100Mi")),
			makePod("r2", onNode("a"), ownedBy("rs"), withRequests("cpu", "100m", "memory", "100Mi")))
		b := nodeInfoOf(makeNode("b", big), makePod("x", onNode("b"), withRequests("cpu", "3", "memory", "3Gi")))
		pk := picker{rng: testRand()}
		got, fitErr := pk.pick(newPodInfo(makePod("r3", ownedBy("rs"), withRequests("cpu", "100m", "memory", "100Mi"))), []*nodeInfo{a, b})
		if fitErr != nil || got.name != "b" {
			t.Fatalf("got %v (%v), want b", got, fitErr)
		}
	})
	t.Run("least requested without an owner", func(t *testing.T) {
		a := nodeInfoOf(makeNode("a"), makePod("x", onNode("a"), withRequests("cpu", "1")))
		b := nodeInfoOf(makeNode("b"))
		pk := picker{rng: testRand()}
		got, fitErr := pk.pick(newPodInfo(makePod("p", withRequests("cpu", "1"))), []*nodeInfo{a, b})
		if fitErr != nil || got.name != "b" {
			t.Fatalf("got %v (%v), want b", got, fitErr)
		}
	})
	t.Run("replicas spread evenly over equal nodes", func(t *testing.T) {
		nodes := []*nodeInfo{nodeInfoOf(makeNode("a")), nodeInfoOf(makeNode("b")), nodeInfoOf(makeNode("c"))}
		pk := picker{rng: testRand()}
		for i := range 9 {
			p := newPodInfo(makePod(fmt.Sprintf("r%d", i), ownedBy("rs")))
			n, fitErr := pk.pick(p, nodes)
			if fitErr != nil {
				t.Fatal(fitErr)
			}
			n.addPod(p)
		}
		for _, n := range nodes {
			if n.pods != 3 {
				t.Fatalf("got %d pods on %s, want 3 on each", n.pods, n.name)
			}
		}
	})
	t.Run("only feasible nodes", func(t *testing.T) {
		nodes := []*nodeInfo{nodeInfoOf(makeNode("a", cordoned)), nodeInfoOf(makeNode("b")), nodeInfoOf(makeNode("c", withReady(corev1.ConditionFalse)))}
		pk := picker{rng: testRand()}
		for range 20 {
			if n, fitErr := pk.pick(newPodInfo(makePod("p")), nodes); fitErr != nil || n.name != "b" {
				t.Fatalf("got %v (%v), want b", n, fitErr)
			}
		}
	})
}
