package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeSelectionMatches(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a", "cores": "8"}}}
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	expr := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	cases := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{name: "nothing asked", want: true},
		{name: "nodeSelector matches", spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}}, want: true},
		{name: "nodeSelector value differs", spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"}}},
		{name: "nodeSelector label missing", spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}},
		{name: "In", spec: corev1.PodSpec{Affinity: required(expr("zone", corev1.NodeSelectorOpIn, "a", "b"))}, want: true},
		{name: "NotIn", spec: corev1.PodSpec{Affinity: required(expr("zone", corev1.NodeSelectorOpNotIn, "a"))}},
		{name: "NotIn a missing label", spec: corev1.PodSpec{Affinity: required(expr("disk", corev1.NodeSelectorOpNotIn, "ssd"))}, want: true},
		{name: "Exists", spec: corev1.PodSpec{Affinity: required(expr("zone", corev1.NodeSelectorOpExists))}, want: true},
		{name: "DoesNotExist", spec: corev1.PodSpec{Affinity: required(expr("zone", corev1.NodeSelectorOpDoesNotExist))}},
		{name: "Gt", spec: corev1.PodSpec{Affinity: required(expr("cores", corev1.NodeSelectorOpGt, "4"))}, want: true},
		{name: "Lt", spec: corev1.PodSpec{Affinity: required(expr("cores", corev1.NodeSelectorOpLt, "4"))}},
		{name: "Gt without a number", spec: corev1.PodSpec{Affinity: required(expr("cores", corev1.NodeSelectorOpGt, "many"))}},
		{name: "Gt with two values", spec: corev1.PodSpec{Affinity: required(expr("cores", corev1.NodeSelectorOpGt, "1", "2"))}},
		{name: "unknown operator", spec: corev1.PodSpec{Affinity: required(expr("zone", "Like", "a"))}},
		{name: "one of two terms", spec: corev1.PodSpec{Affinity: required(expr("zone", corev1.NodeSelectorOpIn, "b"), expr("zone", corev1.NodeSelectorOpIn, "a"))}, want: true},
		{name: "no terms", spec: corev1.PodSpec{Affinity: required()}},
		{name: "an empty term", spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{})}},
		{name: "metadata.name field", spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}})}, want: true},
		{name: "another field", spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.uid", Operator: corev1.NodeSelectorOpExists}}})}},
		{name: "selector and affinity both needed", spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"},
			Affinity: required(expr("zone", corev1.NodeSelectorOpIn, "a"))}},
		{name: "affinity without node affinity", spec: corev1.PodSpec{Affinity: &corev1.Affinity{}}, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NodeSelectionMatches(&tc.spec, node); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUntoleratedTaint(t *testing.T) {
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	evict := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}
	cases := []struct {
		name        string
		unscheduled bool
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		effect      corev1.TaintEffect
		want        string // the untolerated taint's key, "" for none
	}{
		{name: "no taints", effect: corev1.TaintEffectNoSchedule},
		{name: "untolerated", taints: []corev1.Taint{gpu}, effect: corev1.TaintEffectNoSchedule, want: "dedicated"},
		{name: "other effect not asked", taints: []corev1.Taint{gpu}, effect: corev1.TaintEffectNoExecute},
		{name: "Equal toleration", taints: []corev1.Taint{gpu}, effect: corev1.TaintEffectNoSchedule,
			tolerations: []corev1.Toleration{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
		{name: "Equal toleration of another value", taints: []corev1.Taint{gpu}, effect: corev1.TaintEffectNoSchedule, want: "dedicated",
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db"}}},
		{name: "Exists without a key tolerates all", taints: []corev1.Taint{gpu, evict}, effect: corev1.TaintEffectNoExecute,
			tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		{name: "toleration of another effect", taints: []corev1.Taint{evict}, effect: corev1.TaintEffectNoExecute, want: "maintenance",
			tolerations: []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}},
		{name: "cordoned", unscheduled: true, effect: corev1.TaintEffectNoSchedule, want: corev1.TaintNodeUnschedulable},
		{name: "cordoned, tolerated", unscheduled: true, effect: corev1.TaintEffectNoSchedule,
			tolerations: []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: tc.unscheduled, Taints: tc.taints}}
			taint, ok := UntoleratedTaint(tc.tolerations, node, tc.effect)
			if got := taint.Key; ok != (tc.want != "") || got != tc.want {
				t.Errorf("got %q (%v), want %q", got, ok, tc.want)
			}
		})
	}
}

func TestRevisionHash(t *testing.T) {
	a := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x", "tier": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x:1"}}},
	}
	b := a.DeepCopy()
	b.Labels = map[string]string{"tier": "web", "app": "x"}
	if RevisionHash(a) != RevisionHash(b) {
		t.Errorf("equal templates hash to %s and %s", RevisionHash(a), RevisionHash(b))
	}
	b.Spec.Containers[0].Image = "x:2"
	if RevisionHash(a) == RevisionHash(b) {
		t.Errorf("templates with different images both hash to %s", RevisionHash(a))
	}
}
