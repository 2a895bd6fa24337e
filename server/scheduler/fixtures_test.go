package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// The fixtures: a test states only what differs from a Ready node with
// 4 cpu, 8Gi and room for 110 pods, and a pod with one container
// requesting nothing.

func makeNode(name string, opts ...func(*corev1.Node)) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res.DeepCopy(),
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// withAllocatable sets allocatable (and capacity) entries, "name=qty".
func withAllocatable(kv ...string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			q := resource.MustParse(kv[i+1])
			n.Status.Allocatable[corev1.ResourceName(kv[i])] = q
			n.Status.Capacity[corev1.ResourceName(kv[i])] = q
		}
	}
}

func withTaints(taints ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = taints }
}

func withLabels(kv ...string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

func withReady(status corev1.ConditionStatus) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Status.Conditions[0].Status = status }
}

func withoutConditions(n *corev1.Node) { n.Status.Conditions = nil }

func makePod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func resourceList(kv ...string) corev1.ResourceList {
	rl := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return rl
}

// withRequests sets the first container's requests, "name=qty" pairs.
func withRequests(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = resourceList(kv...) }
}

// withContainer adds an app container with the given requests.
func withContainer(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: "c" + string(rune('a'+len(p.Spec.Containers))), Image: "x",
			Resources: corev1.ResourceRequirements{Requests: resourceList(kv...)},
		})
	}
}

// withInit adds an init container with the given requests; sidecar makes
// it restartPolicy Always.
func withInit(sidecar bool, kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := corev1.Container{
			Name: "init" + string(rune('a'+len(p.Spec.InitContainers))), Image: "x",
			Resources: corev1.ResourceRequirements{Requests: resourceList(kv...)},
		}
		if sidecar {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

func withTolerations(tols ...corev1.Toleration) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Tolerations = tols }
}

func withNodeSelector(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// withAffinity sets the required node affinity to the given terms.
func withAffinity(terms ...corev1.NodeSelectorTerm) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// withHostPort adds a container port; ip and protocol may be "".
func withHostPort(ip string, protocol corev1.Protocol, port int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 8080, HostPort: port, HostIP: ip, Protocol: protocol})
	}
}

func ownedBy(uid types.UID) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: uid, Controller: ptr.To(true)}}
	}
}

func onNode(node string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.NodeName = node }
}

// nodeInfoOf is the account of node with pods placed on it.
func nodeInfoOf(node *corev1.Node, pods ...*corev1.Pod) *nodeInfo {
	n := newNodeInfo(node.Name)
	n.setNode(node)
	for _, p := range pods {
		n.addPod(newPodInfo(p))
	}
	return n
}
