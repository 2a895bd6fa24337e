package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// account is what a test checks of a node's account.
type account struct {
	cpu, pods int64
	owners    int
}

func accountOf(c *cache, name string) (account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return account{}, false
	}
	return account{cpu: n.req.MilliCPU, pods: n.pods, owners: n.owners["rs"]}, true
}

func TestCacheAccounts(t *testing.T) {
	pod := func(opts ...func(*corev1.Pod)) *corev1.Pod {
		return makePod("p", append([]func(*corev1.Pod){withRequests("cpu", "500m"), ownedBy("rs")}, opts...)...)
	}
	assume := func(c *cache, p *corev1.Pod, node string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.assumeLocked(newPodInfo(p), node)
	}
	cases := []struct {
		name  string
		steps func(c *cache) (freed bool)
		// want per node; a node not listed must have no account.
		want      map[string]account
		wantFreed bool
	}{
		{name: "assumed pod counts", steps: func(c *cache) bool { assume(c, pod(), "a"); return false },
			want: map[string]account{"a": {cpu: 500, pods: 1, owners: 1}}},
		{name: "the bound pod confirms the assumption without counting twice", steps: func(c *cache) bool {
			assume(c, pod(), "a")
			return c.setPod(pod(onNode("a")))
		}, want: map[string]account{"a": {cpu: 500, pods: 1, owners: 1}}},
		{name: "bound elsewhere than assumed moves it", steps: func(c *cache) bool {
			assume(c, pod(), "a")
			return c.setPod(pod(onNode("b")))
		}, want: map[string]account{"b": {cpu: 500, pods: 1, owners: 1}}, wantFreed: true},
		{name: "forget frees an assumption", steps: func(c *cache) bool {
			assume(c, pod(), "a")
			return c.forget("uid-p")
		}, want: map[string]account{}, wantFreed: true},
		{name: "forget keeps a pod the informer showed bound", steps: func(c *cache) bool {
			assume(c, pod(), "a")
			c.setPod(pod(onNode("a")))
			return c.forget("uid-p")
		}, want: map[string]account{"a": {cpu: 500, pods: 1, owners: 1}}},
		{name: "a finished pod holds nothing", steps: func(c *cache) bool {
			c.setPod(pod(onNode("a")))
			return c.setPod(pod(onNode("a"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))
		}, want: map[string]account{}, wantFreed: true},
		{name: "smaller requests free resources", steps: func(c *cache) bool {
			c.setPod(pod(onNode("a")))
			return c.setPod(pod(onNode("a"), withRequests("cpu", "100m")))
		}, want: map[string]account{"a": {cpu: 100, pods: 1, owners: 1}}, wantFreed: true},
		{name: "a deleted pod is removed", steps: func(c *cache) bool {
			c.setPod(pod(onNode("a")))
			return c.removePod("uid-p")
		}, want: map[string]account{}, wantFreed: true},
		{name: "a removed node keeps its pods' account until they go", steps: func(c *cache) bool {
			c.setNode(makeNode("a"))
			c.setPod(pod(onNode("a")))
			c.removeNode("a")
			return false
		}, want: map[string]account{"a": {cpu: 500, pods: 1, owners: 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			if freed := tc.steps(c); freed != tc.wantFreed {
				t.Fatalf("got freed %v, want %v", freed, tc.wantFreed)
			}
			for _, name := range []string{"a", "b"} {
				got, ok := accountOf(c, name)
				want, wantOK := tc.want[name]
				if ok != wantOK || got != want {
					t.Fatalf("node %s: got %+v (present %v), want %+v (present %v)", name, got, ok, want, wantOK)
				}
			}
		})
	}
}

func TestCacheCandidates(t *testing.T) {
	c := newCache()
	for _, name := range []string{"a", "b", "c"} {
		c.setNode(makeNode(name))
	}
	c.setNode(makeNode("b", cordoned)) // an update, not another candidate
	c.removeNode("a")
	c.removeNode("x")
	got := map[string]bool{}
	for i, n := range c.candidates {
		if n.index != i {
			t.Fatalf("got %s at %d with index %d, want them equal", n.name, i, n.index)
		}
		got[n.name] = true
	}
	if len(got) != 2 || !got["b"] || !got["c"] {
		t.Fatalf("got candidates %v, want b and c", got)
	}
	if !c.nodes["b"].node.Spec.Unschedulable {
		t.Fatal("got the old b, want the update")
	}
}

func TestNodeChanges(t *testing.T) {
	base := makeNode("n")
	cases := []struct {
		name   string
		change func(*corev1.Node)
		want   failureKind
	}{
		{name: "heartbeat", change: func(n *corev1.Node) { n.Status.Conditions[0].Message = "kubelet is posting ready status" }, want: 0},
		{name: "becomes ready", change: func(n *corev1.Node) {}, want: failNotReady},
		{name: "uncordoned", change: func(n *corev1.Node) {}, want: failUnschedulable},
		{name: "taint removed", change: func(n *corev1.Node) { n.Spec.Taints = nil }, want: failTaint},
		{name: "relabelled", change: func(n *corev1.Node) { n.Labels["zone"] = "b" }, want: failAffinity},
		{name: "more allocatable", change: func(n *corev1.Node) { withAllocatable("cpu", "8")(n) }, want: failResources},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := base.DeepCopy()
			switch tc.want {
			case failNotReady:
				withReady(corev1.ConditionFalse)(old)
			case failUnschedulable:
				cordoned(old)
			case failTaint:
				old.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
			}
			node := old.DeepCopy()
			switch tc.want {
			case failNotReady:
				withReady(corev1.ConditionTrue)(node)
			case failUnschedulable:
				node.Spec.Unschedulable = false
			}
			tc.change(node)
			if got := nodeChanges(old, node); got != tc.want {
				t.Fatalf("got %b, want %b", got, tc.want)
			}
		})
	}
}
