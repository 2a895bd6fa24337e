package agent

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"orch.dev/orch/internal/logging"
)

func TestStatusManagerPutsItsStatusBack(t *testing.T) {
	ready := func(s corev1.ConditionStatus) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: s}}}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1", ResourceVersion: "5"}}
	client := fake.NewSimpleClientset(pod)
	m := newStatusManager(client, logging.Discard)
	ctx := context.Background()
	writes := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	copyAt := func(rv string, st corev1.PodStatus) *corev1.Pod {
		p := pod.DeepCopy()
		p.ResourceVersion, p.Status = rv, st
		return p
	}

	for _, step := range []struct {
		name   string
		copy   *corev1.Pod
		want   corev1.PodStatus
		writes int // total status writes after the step
	}{
		{name: "the first status is written", copy: copyAt("5", corev1.PodStatus{}), want: ready(corev1.ConditionTrue), writes: 1},
		{name: "a copy older than the write is not taken for a change", copy: copyAt("5", corev1.PodStatus{}), want: ready(corev1.ConditionTrue), writes: 1},
		{name: "the same status again costs nothing", copy: copyAt("5", ready(corev1.ConditionTrue)), want: ready(corev1.ConditionTrue), writes: 1},
		{name: "someone else marked the pod not ready: the agent writes its status back", copy: copyAt("9", ready(corev1.ConditionFalse)),
			want: ready(corev1.ConditionTrue), writes: 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			m.set(step.copy, step.want)
			m.flush(ctx)
			if got := writes(); got != step.writes {
				t.Fatalf("%d status writes, want %d", got, step.writes)
			}
		})
	}
}
