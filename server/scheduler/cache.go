package scheduler

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cache is the scheduler's view of the cluster: every node and every pod
// placed on one. Pods enter it when the informer shows them bound, or
// earlier, when the scheduler chooses a node for them (assumed): the next
// decision must see that choice although the binding is still in flight.
type cache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo
	// candidates are the nodes that exist, in no particular order.
	candidates []*nodeInfo
	pods       map[types.UID]*placedPod
}

type placedPod struct {
	info *podInfo
	node string
	// assumed is true from the scheduler's choice until the informer
	// shows the pod bound.
	assumed bool
}

func newCache() *cache {
	return &cache{nodes: make(map[string]*nodeInfo), pods: make(map[types.UID]*placedPod)}
}

func (c *cache) nodeLocked(name string) *nodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = newNodeInfo(name)
		c.nodes[name] = n
	}
	return n
}

// setNode adds or updates a node.
func (c *cache) setNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	n.setNode(node)
	if n.index < 0 {
		n.index = len(c.candidates)
		c.candidates = append(c.candidates, n)
	}
}

// removeNode drops a node from the candidates; its account stays while
// pods still name it.
func (c *cache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return
	}
	n.node = nil
	if i := n.index; i >= 0 {
		last := len(c.candidates) - 1
		c.candidates[i] = c.candidates[last]
		c.candidates[i].index = i
		c.candidates[last] = nil
		c.candidates = c.candidates[:last]
		n.index = -1
	}
	if n.pods == 0 {
		delete(c.nodes, name)
	}
}

// has reports whether the pod is placed, bound or assumed.
func (c *cache) has(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pods[uid]
	return ok
}

// setPod records a pod the informer shows bound to a node: it confirms an
// assumed pod, or adds, moves or updates it. A pod that has terminated
// no longer holds anything and is removed. It reports whether resources
// may have been freed, which can make waiting pods fit.
func (c *cache) setPod(pod *corev1.Pod) (freed bool) {
	if terminated(pod) {
		return c.removePod(pod.UID)
	}
	info := newPodInfo(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pods[pod.UID]
	if old != nil {
		c.unplaceLocked(old)
		freed = old.node != pod.Spec.NodeName || !fitsWithin(old.info.req, info.req) || len(info.ports) < len(old.info.ports)
	}
	c.placeLocked(&placedPod{info: info, node: pod.Spec.NodeName})
	return freed
}

// fitsWithin reports whether a holds no more of anything than b.
func fitsWithin(a, b amounts) bool {
	if a.MilliCPU > b.MilliCPU || a.Memory > b.Memory || a.EphemeralStorage > b.EphemeralStorage {
		return false
	}
	for name, v := range a.Scalar {
		if v > b.Scalar[name] {
			return false
		}
	}
	return true
}

// removePod forgets a pod, bound or assumed; it reports whether the pod
// was there.
func (c *cache) removePod(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pods[uid]
	if p == nil {
		return false
	}
	c.unplaceLocked(p)
	return true
}

// forget undoes an assumption whose binding failed. A pod the informer
// has meanwhile shown bound stays. It reports whether anything changed.
func (c *cache) forget(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pods[uid]
	if p == nil || !p.assumed {
		return false
	}
	c.unplaceLocked(p)
	return true
}

// assumeLocked counts pod on node from now on.
func (c *cache) assumeLocked(info *podInfo, node string) {
	c.placeLocked(&placedPod{info: info, node: node, assumed: true})
}

func (c *cache) placeLocked(p *placedPod) {
	c.pods[p.info.pod.UID] = p
	c.nodeLocked(p.node).addPod(p.info)
}

func (c *cache) unplaceLocked(p *placedPod) {
	delete(c.pods, p.info.pod.UID)
	n := c.nodes[p.node]
	if n == nil {
		return
	}
	n.removePod(p.info)
	if n.node == nil && n.pods == 0 {
		delete(c.nodes, p.node)
	}
}

// terminated reports whether a pod has finished for good and holds no
// resources any more.
func terminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
