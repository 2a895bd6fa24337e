package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateNamespace(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validNamespace()},
		{name: "name must be a DNS label", obj: namespaceWith(func(ns *corev1.Namespace) { ns.Name = "team.a" }),
			want: []string{"metadata.name"}},
		{name: "cluster-scoped", obj: namespaceWith(func(ns *corev1.Namespace) { ns.Namespace = "default" }),
			want: []string{"metadata.namespace"}},
		{name: "bad finalizers", obj: namespaceWith(func(ns *corev1.Namespace) {
			ns.Spec.Finalizers = []corev1.FinalizerName{"kubernetes", "example.com/clean up", ""}
		}), want: []string{"spec.finalizers[1]", "spec.finalizers[2]"}},
		{name: "update: finalizer removed", obj: namespaceWith(func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{} }),
			old: validNamespace()},
	})
}

func TestValidateNode(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validNode()},
		{name: "no pod CIDR yet", obj: nodeWith(func(n *corev1.Node) { n.Spec = corev1.NodeSpec{} })},
		{name: "cluster-scoped", obj: nodeWith(func(n *corev1.Node) { n.Namespace = "default" }),
			want: []string{"metadata.namespace"}},
		{name: "bad CIDRs", obj: nodeWith(func(n *corev1.Node) {
			n.Spec.PodCIDR = "10.42.1.0/33"
			n.Spec.PodCIDRs = []string{"10.42.2.0/24", "fd00::/64", "10.0.0.0/8"}
		}), want: []string{"spec.podCIDR", "spec.podCIDRs", "spec.podCIDRs[0]"}},
		{name: "bad taints", obj: nodeWith(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule},
				{Key: "", Effect: corev1.TaintEffectNoSchedule},
				{Key: "bad key", Effect: "Never"},
				{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule},
			}
		}), want: []string{"spec.taints[1].key", "spec.taints[2].key", "spec.taints[2].effect", "spec.taints[3]"}},
		{name: "update: taint added", obj: nodeWith(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute}}
		}), old: validNode()},
		{name: "update: pod CIDR assigned", obj: validNode(), old: nodeWith(func(n *corev1.Node) { n.Spec = corev1.NodeSpec{} })},
		{name: "update: pod CIDR changed", obj: nodeWith(func(n *corev1.Node) {
			n.Spec.PodCIDR = "10.42.2.0/24"
			n.Spec.PodCIDRs = []string{"10.42.2.0/24"}
		}), old: validNode(), want: []string{"spec.podCIDR", "spec.podCIDRs"}},
	})
}

func TestValidateEvent(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validEvent()},
		{name: "about nothing", obj: &corev1.Event{ObjectMeta: objectMeta("e1")},
			want: []string{"involvedObject.kind"}},
		{name: "no namespace", obj: &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "e1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		}, want: []string{"metadata.namespace"}},
		{name: "update: count", obj: func() *corev1.Event { e := validEvent(); e.Count = 2; return e }(), old: validEvent()},
	})
}
