package scheduler

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// tryPop returns a pod that is ready now, without waiting.
func tryPop(q *schedulingQueue) (*corev1.Pod, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return q.Pop(ctx)
}

func newTestQueue() (*schedulingQueue, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return newSchedulingQueue(clk), clk
}

func TestBackoffFor(t *testing.T) {
	cases := []struct {
		attempts int
		want     time.Duration
	}{
		{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second},
		{7, 60 * time.Second}, {8, 60 * time.Second}, {1000, 60 * time.Second},
	}
	for _, tc := range cases {
		t.Run(time.Duration(tc.attempts).String(), func(t *testing.T) {
			if got := backoffFor(tc.attempts); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueueOrder(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("first"))
	q.Add(makePod("second"))
	q.Add(makePod("urgent", func(p *corev1.Pod) { p.Spec.Priority = ptr.To(int32(1000)) }))
	q.Add(makePod("third"))
	q.Add(makePod("first")) // a refresh, not a second entry
	var got []string
	for {
		p, ok := tryPop(q)
		if !ok {
			break
		}
		got = append(got, p.Name)
	}
	want := []string{"urgent", "first", "second", "third"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestQueueBackoff(t *testing.T) {
	cases := []struct {
		name string
		// fail makes the attempt fail.
		fail func(q *schedulingQueue, p *corev1.Pod)
	}{
		{name: "unschedulable", fail: func(q *schedulingQueue, p *corev1.Pod) { q.Unschedulable(p, failResources, "m") }},
		{name: "binding failed", fail: func(q *schedulingQueue, p *corev1.Pod) { q.BindFailed(p.UID) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, clk := newTestQueue()
			q.Add(makePod("p"))
			for attempt := 1; attempt <= 9; attempt++ {
				p, ok := tryPop(q)
				if !ok {
					t.Fatalf("attempt %d: got no pod, want p ready", attempt)
				}
				tc.fail(q, p)
				wait := backoffFor(attempt)
				clk.Step(wait - time.Millisecond)
				if p, ok := tryPop(q); ok {
					t.Fatalf("attempt %d: got %s ready %v early, want a back-off of %v", attempt, p.Name, time.Millisecond, wait)
				}
				clk.Step(time.Millisecond)
			}
		})
	}
}

func TestQueuePopWaitsForBackoff(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("p"))
	p, _ := tryPop(q)
	q.Unschedulable(p, failResources, "m")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 1)
	go func() {
		p, ok := q.Pop(ctx)
		if !ok {
			got <- "nothing"
			return
		}
		got <- p.Name
	}()
	// Pop waits on a timer of the clock; move the clock once it does.
	for !clk.HasWaiters() {
		select {
		case g := <-got:
			t.Fatalf("got %s before the back-off ended, want a wait", g)
		case <-time.After(time.Millisecond):
		}
	}
	clk.Step(time.Second)
	if g := <-got; g != "p" {
		t.Fatalf("got %s, want p", g)
	}
}

func TestQueueMove(t *testing.T) {
	cases := []struct {
		name string
		// failures is how many attempts failed before the move.
		failures  int
		kinds     failureKind
		move      failureKind
		wantAfter time.Duration // since the last attempt; 0: not moved
	}{
		{name: "matching change cuts a long back-off to a second", failures: 5, kinds: failResources, move: failResources | failPorts, wantAfter: time.Second},
		{name: "unrelated change does not", failures: 5, kinds: failTaint, move: failResources, wantAfter: 0},
		{name: "after the first failure it changes nothing", failures: 1, kinds: failResources, move: failResources, wantAfter: time.Second},
		{name: "a failed binding waits its back-off", failures: 5, kinds: 0, move: failAll, wantAfter: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, clk := newTestQueue()
			q.Add(makePod("p"))
			var last time.Time
			for i := 0; i < tc.failures; i++ {
				p, ok := tryPop(q)
				if !ok {
					t.Fatalf("failure %d: got no pod, want p", i)
				}
				last = clk.Now()
				if tc.kinds == 0 {
					q.BindFailed(p.UID)
				} else {
					q.Unschedulable(p, tc.kinds, "m")
				}
				if i < tc.failures-1 {
					clk.Step(backoffFor(i + 1))
				}
			}
			q.Move(tc.move)
			full := backoffFor(tc.failures)
			want := tc.wantAfter
			if want == 0 {
				want = full
			}
			clk.SetTime(last.Add(want - time.Millisecond))
			if _, ok := tryPop(q); ok {
				t.Fatalf("got the pod before %v, want it after", want)
			}
			clk.SetTime(last.Add(want))
			if _, ok := tryPop(q); !ok {
				t.Fatalf("got no pod %v after the last attempt, want it ready", want)
			}
		})
	}
}

func TestQueueMoveDuringAttempt(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("p"))
	for i := range 4 {
		p, _ := tryPop(q)
		q.Unschedulable(p, failNotReady, "m")
		clk.Step(backoffFor(i + 1))
	}
	p, _ := tryPop(q)
	// The node becomes Ready while the attempt is under way.
	q.Move(failNotReady)
	q.Unschedulable(p, failNotReady, "m")
	clk.Step(time.Second)
	if _, ok := tryPop(q); !ok {
		t.Fatalf("got no pod a second after an attempt that missed a change, want it ready (back-off was %v)", backoffFor(5))
	}
}

func TestQueueSpecChangeRetriesSoon(t *testing.T) {
	q, clk := newTestQueue()
	old := makePod("p")
	q.Add(old)
	for i := range 4 {
		p, _ := tryPop(q)
		q.Unschedulable(p, failTaint, "m")
		clk.Step(backoffFor(i + 1))
	}
	p, _ := tryPop(q)
	q.Unschedulable(p, failTaint, "m")
	// A label change leaves the generation: no early retry.
	relabelled := old.DeepCopy()
	relabelled.Labels = map[string]string{"a": "b"}
	q.Update(old, relabelled)
	clk.Step(time.Second)
	if _, ok := tryPop(q); ok {
		t.Fatal("got the pod back after a metadata change, want it backing off")
	}
	tolerating := relabelled.DeepCopy()
	tolerating.Generation++
	tolerating.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	q.Update(relabelled, tolerating)
	got, ok := tryPop(q)
	if !ok || len(got.Spec.Tolerations) != 1 {
		t.Fatalf("got %v (%v), want the updated pod ready", got, ok)
	}
}

func TestQueueEventDedupe(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("p"))
	early := func() { q.Move(failResources); clk.Step(time.Second) }
	attempts := []struct {
		before  func()
		message string
		want    bool
	}{
		{before: func() {}, message: "a", want: true},
		// Back after its back-off (1s), same answer: posted again.
		{before: func() { clk.Step(time.Second) }, message: "a", want: true},
		// Brought back a second into a 2s back-off by a change, same
		// answer: not again.
		{before: early, message: "a", want: false},
		// A different answer is news.
		{before: early, message: "b", want: true},
		// After the full back-off step the same answer is posted again.
		{before: func() { clk.Step(backoffFor(4)) }, message: "b", want: true},
	}
	for i, a := range attempts {
		a.before()
		p, ok := tryPop(q)
		if !ok {
			t.Fatalf("attempt %d: got no pod, want p", i)
		}
		if got := q.Unschedulable(p, failResources, a.message); got != a.want {
			t.Fatalf("attempt %d (%q): got post %v, want %v", i, a.message, got, a.want)
		}
	}
}

func TestQueueDelete(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("a"))
	q.Add(makePod("b"))
	q.Delete("uid-a")
	p, _ := tryPop(q)
	q.Unschedulable(p, failResources, "m")
	q.Delete("uid-b")
	if n := q.Len(); n != 0 {
		t.Fatalf("got %d pods queued, want 0", n)
	}
	if p, ok := tryPop(q); ok {
		t.Fatalf("got %s, want nothing", p.Name)
	}
}
