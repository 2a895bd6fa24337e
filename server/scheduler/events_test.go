package scheduler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	clocktesting "k8s.io/utils/clock/testing"

	"orch.dev/orch/internal/logging"
)

func TestUnschedulablePatch(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	withCondition := func(status corev1.ConditionStatus, reason, message string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionFalse},
				{Type: corev1.PodScheduled, Status: status, Reason: reason, Message: message, LastTransitionTime: earlier},
			}
		}
	}
	cases := []struct {
		name        string
		pod         *corev1.Pod
		wantChanged bool
		wantTime    metav1.Time
	}{
		{name: "no condition yet", pod: makePod("p"), wantChanged: true, wantTime: metav1.NewTime(now)},
		{name: "same condition", pod: makePod("p", withCondition(corev1.ConditionFalse, "Unschedulable", "msg"))},
		{name: "new message keeps the transition time", pod: makePod("p", withCondition(corev1.ConditionFalse, "Unschedulable", "old")),
			wantChanged: true, wantTime: earlier},
		{name: "from True", pod: makePod("p", withCondition(corev1.ConditionTrue, "", "")), wantChanged: true, wantTime: metav1.NewTime(now)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patch, changed, err := unschedulablePatch(tc.pod, "msg", now)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Fatalf("got changed %v, want %v", changed, tc.wantChanged)
			}
			if !changed {
				return
			}
			var got struct {
				Status corev1.PodStatus `json:"status"`
			}
			if err := json.Unmarshal(patch, &got); err != nil {
				t.Fatal(err)
			}
			want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "msg", LastTransitionTime: tc.wantTime}
			if len(got.Status.Conditions) != 1 || !got.Status.Conditions[0].LastTransitionTime.Equal(&want.LastTransitionTime) {
				t.Fatalf("got %s, want one condition %+v", patch, want)
			}
			c := got.Status.Conditions[0]
			if c.Type != want.Type || c.Status != want.Status || c.Reason != want.Reason || c.Message != want.Message {
				t.Fatalf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestEventName(t *testing.T) {
	cases := []struct {
		name string
		pod  string
	}{
		{name: "short", pod: "web-1"},
		{name: "longest pod name", pod: strings.Repeat("a", 253)},
		{name: "cut at a dot", pod: strings.Repeat("a", 230) + "." + strings.Repeat("b", 22)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := eventName(tc.pod, "18a0b1c2d3e4f5a60001")
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Fatalf("got %q, want a valid name: %v", got, errs)
			}
			if len(tc.pod) < 200 && got != tc.pod+".18a0b1c2d3e4f5a60001" {
				t.Fatalf("got %q, want the pod's name and the suffix", got)
			}
		})
	}
}

func TestReporterDropsWhenFull(t *testing.T) {
	r := newReporter(nil, "default-scheduler", clocktesting.NewFakeClock(time.Now()), logging.Discard, 2)
	for range 5 {
		r.event(makePod("p"), corev1.EventTypeNormal, "Scheduled", "m")
	}
	if got, want := [2]uint64{uint64(len(r.tasks)), r.dropped.Load()}, [2]uint64{2, 3}; got != want {
		t.Fatalf("got %d queued and %d dropped, want %d and %d", got[0], got[1], want[0], want[1])
	}
}
