package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Requests a container states no cpu or memory for count as these amounts
// when scoring (never when filtering), so that pods without requests still
// spread by load instead of all landing on whichever node scores first.
const (
	defaultMilliCPURequest int64 = 100               // 0.1 core
	defaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// amounts is a quantity of each resource in the integer units the
// filters compare: millicores, bytes, and plain counts for other
// (extended) resources. Scalar is nil unless some such resource is set.
type amounts struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	Scalar           map[corev1.ResourceName]int64
}

// resourcesOf converts a ResourceList; "pods" is not a request and is
// left out (the pod count is kept apart).
func resourcesOf(rl corev1.ResourceList) amounts {
	var r amounts
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case corev1.ResourcePods:
		default:
			if r.Scalar == nil {
				r.Scalar = make(map[corev1.ResourceName]int64, 1)
			}
			r.Scalar[name] = q.Value()
		}
	}
	return r
}

func (r *amounts) add(o amounts) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[corev1.ResourceName]int64, len(o.Scalar))
		}
		r.Scalar[name] += v
	}
}

func (r *amounts) sub(o amounts) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[corev1.ResourceName]int64, len(o.Scalar))
		}
		r.Scalar[name] -= v
	}
}

// setMax raises each amount of r to o's where o's is larger.
func (r *amounts) setMax(o amounts) {
	r.MilliCPU = max(r.MilliCPU, o.MilliCPU)
	r.Memory = max(r.Memory, o.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, o.EphemeralStorage)
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[corev1.ResourceName]int64, len(o.Scalar))
		}
		if v > r.Scalar[name] {
			r.Scalar[name] = v
		}
	}
}

// isSidecar reports whether an init container keeps running beside the
// app containers (restartPolicy Always), so its requests add to theirs.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// effectiveRequests is what a pod needs of a node at its peak: the app
// containers and sidecars run together, while each ordinary init container
// runs alone (beside the sidecars started before it), so the peak is the
// larger of the two. per gives one container's requests.
func effectiveRequests(spec *corev1.PodSpec, per func(*corev1.Container) amounts) amounts {
	var sum amounts
	for i := range spec.Containers {
		sum.add(per(&spec.Containers[i]))
	}
	var sidecars, initPeak amounts
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		r := per(c)
		if isSidecar(c) {
			sidecars.add(r)
			initPeak.setMax(sidecars)
			continue
		}
		r.add(sidecars)
		initPeak.setMax(r)
	}
	sum.add(sidecars)
	sum.setMax(initPeak)
	return sum
}

func containerRequests(c *corev1.Container) amounts {
	return resourcesOf(c.Resources.Requests)
}

// containerScoringRequests is containerRequests with the defaults for cpu
// and memory that are not stated at all (a stated zero stays zero).
func containerScoringRequests(c *corev1.Container) amounts {
	var r amounts
	r.MilliCPU = defaultMilliCPURequest
	r.Memory = defaultMemoryRequest
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	return r
}

// podInfo is what filtering, scoring and the node accounting need of a
// pod, worked out once from its spec.
type podInfo struct {
	pod *corev1.Pod
	// req is the pod's effective requests (with its overhead), what must
	// fit in a node's free allocatable.
	req amounts
	// scoreCPU and scoreMemory are the requests with the scoring defaults.
	scoreCPU, scoreMemory int64
	ports                 []hostPort
	// owner is the UID of the controller owning the pod, "" if none.
	owner types.UID
	// volumeAffinity are the node selectors of the volumes the pod uses:
	// a node must match each.
	volumeAffinity []*corev1.NodeSelector
}

func newPodInfo(pod *corev1.Pod) *podInfo {
	spec := &pod.Spec
	req := effectiveRequests(spec, containerRequests)
	score := effectiveRequests(spec, containerScoringRequests)
	// Pod-level requests, when stated, replace the containers' sum.
	if spec.Resources != nil {
		if q, ok := spec.Resources.Requests[corev1.ResourceCPU]; ok {
			req.MilliCPU = q.MilliValue()
			score.MilliCPU = req.MilliCPU
		}
		if q, ok := spec.Resources.Requests[corev1.ResourceMemory]; ok {
			req.Memory = q.Value()
			score.Memory = req.Memory
		}
	}
	if spec.Overhead != nil {
		o := resourcesOf(spec.Overhead)
		req.add(o)
		score.MilliCPU += o.MilliCPU
		score.Memory += o.Memory
	}
	p := &podInfo{pod: pod, req: req, scoreCPU: score.MilliCPU, scoreMemory: score.Memory, ports: hostPortsOf(spec)}
	for i := range pod.OwnerReferences {
		if ref := &pod.OwnerReferences[i]; ref.Controller != nil && *ref.Controller {
			p.owner = ref.UID
			break
		}
	}
	return p
}

// protoPort is a host port on one protocol.
type protoPort struct {
	protocol corev1.Protocol
	port     int32
}

// hostPort is a host port a pod claims; ip "0.0.0.0" claims every address.
type hostPort struct {
	ip string
	protoPort
}

const anyIP = "0.0.0.0"

func hostPortsOf(spec *corev1.PodSpec) []hostPort {
	var out []hostPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protoPort: protoPort{protocol: p.Protocol, port: p.HostPort}}
			if hp.ip == "" {
				hp.ip = anyIP
			}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			out = append(out, hp)
		}
	}
	for i := range spec.Containers {
		add(&spec.Containers[i])
	}
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) {
			add(&spec.InitContainers[i])
		}
	}
	return out
}
