package controller

import (
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"orch.dev/orch/internal/testutil"
)

func TestClockedQueueAddsWhenItsClockSaysSo(t *testing.T) {
	cases := []struct {
		name        string
		after       []time.Duration // AddAfter calls for one key, in order
		wantTimers  int
		step        time.Duration // the clock moves this far: nothing is due yet
		thenStep    time.Duration // and then this far: the key is due
		immediately bool          // the key is queued without any step
	}{
		{name: "one delay", after: []time.Duration{10 * time.Second}, wantTimers: 1, step: 9 * time.Second, thenStep: time.Second},
		{name: "a later deadline waits for the earlier one", after: []time.Duration{5 * time.Second, 10 * time.Second}, wantTimers: 1,
			step: 4 * time.Second, thenStep: time.Second},
		{name: "an earlier deadline gets its own timer", after: []time.Duration{10 * time.Second, 2 * time.Second}, wantTimers: 2,
			step: time.Second, thenStep: time.Second},
		{name: "no delay", after: []time.Duration{0}, immediately: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			q := NewClockedQueue("test", clk)
			defer q.ShutDown()
			for _, d := range tc.after {
				q.AddAfter("k", d)
			}
			if tc.immediately {
				if q.Len() != 1 {
					t.Fatalf("got %d queued, want 1", q.Len())
				}
				return
			}
			testutil.Eventually(t, 5*time.Second, func() string {
				if n := clk.Waiters(); n != tc.wantTimers {
					return fmt.Sprintf("got %d timers, want %d", n, tc.wantTimers)
				}
				return ""
			})
			clk.Step(tc.step)
			if q.Len() != 0 {
				t.Fatalf("%s on: got %d queued, want none yet", tc.step, q.Len())
			}
			clk.Step(tc.thenStep)
			testutil.Eventually(t, 5*time.Second, func() string {
				if q.Len() != 1 {
					return fmt.Sprintf("got %d queued, want 1", q.Len())
				}
				return ""
			})
		})
	}
}

func TestClockedQueueShutDownStopsTimers(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewClockedQueue("test", clk)
	q.AddAfter("a", time.Minute)
	q.AddAfter("b", time.Hour)
	q.ShutDown()
	q.ShutDown() // twice, as Loop does
	testutil.Eventually(t, 5*time.Second, func() string {
		if n := clk.Waiters(); n != 0 {
			return fmt.Sprintf("got %d timers after ShutDown, want 0", n)
		}
		return ""
	})
}
