package daemonset

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// fitRetry is how soon a DaemonSet whose pod did not fit a node looks
// again: pods leaving the node bring no event to this loop.
const fitRetry = 30 * time.Second

const reasonFailedPlacement = "FailedPlacement"

// fitting keeps the nodes of createOn that have room for the daemon pod:
// its requests (cpu, memory, ephemeral storage, extended resources) and
// one more pod must fit the node's allocatable beside the unfinished pods
// already bound there, as the scheduler would check. A daemon pod is
// bound straight to its node, so this check is its scheduler's. Nodes
// without room get a FailedPlacement event and are tried again later.
func (c *Controller) fitting(s *state, createOn []string) (fit []string, retry time.Duration, err error) {
	all, err := c.pods.List(labels.Everything())
	if err != nil {
		return nil, 0, err
	}
	used := map[string]corev1.ResourceList{}
	count := map[string]int64{}
	for _, p := range all {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		count[p.Spec.NodeName]++
		addList(used, p.Spec.NodeName, podRequests(&p.Spec))
	}
	want := podRequests(&s.template.Spec)
	nodes := make(map[string]*corev1.Node, len(s.nodes))
	for _, n := range s.nodes {
		nodes[n.Name] = n
	}
	for _, name := range createOn {
		node := nodes[name]
		if node == nil {
			continue
		}
		if why := insufficient(want, used[name], count[name], node.Status.Allocatable); why != "" {
			c.recorder.Eventf(s.ds, corev1.EventTypeWarning, reasonFailedPlacement, "failed to place pod on %q: Node didn't have enough resource: %s", name, why)
			retry = fitRetry
			continue
		}
		fit = append(fit, name)
	}
	return fit, retry, nil
}

// insufficient says which resource of allocatable cannot take want beside
// used and pods pods already there ("" when all fit). Resources a node
// does not list are not checked, except extended ones the pod asks for.
func insufficient(want, used corev1.ResourceList, pods int64, allocatable corev1.ResourceList) string {
	if q, ok := allocatable[corev1.ResourcePods]; ok && pods+1 > q.Value() {
		return fmt.Sprintf("pods, requested: 1, used: %d, capacity: %d", pods, q.Value())
	}
	var short []string
	for name, req := range want {
		if req.IsZero() {
			continue
		}
		capacity, ok := allocatable[name]
		if !ok {
			if isExtended(name) {
				short = append(short, fmt.Sprintf("%s, requested: %s, capacity: 0", name, req.String()))
			}
			continue
		}
		u := used[name]
		total := u.DeepCopy()
		total.Add(req)
		if total.Cmp(capacity) > 0 {
			short = append(short, fmt.Sprintf("%s, requested: %s, used: %s, capacity: %s", name, req.String(), u.String(), capacity.String()))
		}
	}
	return strings.Join(short, "; ")
}

func isExtended(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return false
	}
	return strings.Contains(string(name), "/")
}

// podRequests is what a pod needs of a node at its peak: the app
// containers and the sidecar init containers (restartPolicy Always) run
// together, each ordinary init container alone beside the sidecars started
// before it; the peak is the larger.
func podRequests(spec *corev1.PodSpec) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for i := range spec.Containers {
		addTo(sum, spec.Containers[i].Resources.Requests)
	}
	sidecars, initPeak := corev1.ResourceList{}, corev1.ResourceList{}
	for i := range spec.InitContainers {
		ic := &spec.InitContainers[i]
		if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addTo(sidecars, ic.Resources.Requests)
			maxInto(initPeak, sidecars)
			continue
		}
		r := corev1.ResourceList{}
		addTo(r, ic.Resources.Requests)
		addTo(r, sidecars)
		maxInto(initPeak, r)
	}
	addTo(sum, sidecars)
	maxInto(sum, initPeak)
	return sum
}

func addTo(dst, src corev1.ResourceList) {
	for name, q := range src {
		cur, ok := dst[name]
		if !ok {
			dst[name] = q.DeepCopy()
			continue
		}
		cur.Add(q)
		dst[name] = cur
	}
}

func maxInto(dst, src corev1.ResourceList) {
	for name, q := range src {
		if cur, ok := dst[name]; !ok || q.Cmp(cur) > 0 {
			dst[name] = q.DeepCopy()
		}
	}
}

func addList(m map[string]corev1.ResourceList, node string, r corev1.ResourceList) {
	if m[node] == nil {
		m[node] = corev1.ResourceList{}
	}
	addTo(m[node], r)
}
