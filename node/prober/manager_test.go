package prober

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"orch.dev/orch/internal/testutil"
)

// recorder collects a prober's callbacks.
type recorder struct {
	changes atomic.Int32
	mu      sync.Mutex
	events  []string
}

func (r *recorder) changed() { r.changes.Add(1) }

func (r *recorder) event(typ, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, typ+" "+reason+" "+msg)
}

func (r *recorder) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func execProbe(cmd string, period, failure int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
		PeriodSeconds: period, SuccessThreshold: 1, FailureThreshold: failure, TimeoutSeconds: 1}
}

func TestManager(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	var healthy atomic.Bool
	healthy.Store(true)
	fe := &fakeExec{run: func(ctx context.Context, cmd []string, out func(string)) (int, error) {
		if healthy.Load() {
			return 0, nil
		}
		out("sick\n")
		return 1, nil
	}}
	m := NewManager(NewRunner(fe, clk), clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("readiness flips are reported once each", func(t *testing.T) {
		rec := &recorder{}
		c := &corev1.Container{Name: "app", ReadinessProbe: execProbe("ready", 1, 1)}
		m.Ensure(ctx, Spec{PodUID: "p1", ContainerID: "c1", Container: c, StartedAt: clk.Now(), Changed: rec.changed, Event: rec.event})
		m.Ensure(ctx, Spec{PodUID: "p1", ContainerID: "c1", Container: c, StartedAt: clk.Now(), Changed: rec.changed, Event: rec.event}) // again: no second prober
		if m.Len() != 1 {
			t.Fatalf("got %d probers, want 1", m.Len())
		}
		waitStatus(t, m, "c1", func(st Status) bool { return st.Ready })
		if n := rec.changes.Load(); n != 1 {
			t.Fatalf("got %d changes, want 1", n)
		}
		healthy.Store(false)
		stepUntil(t, clk, func() bool { st, _ := m.Status("c1"); return !st.Ready })
		testutil.Eventually(t, 5*time.Second, func() string {
			if n := rec.changes.Load(); n != 2 {
				return fmt.Sprintf("got %d changes, want 2", n)
			}
			return ""
		})
		if ev := rec.eventList(); len(ev) != 1 || ev[0] != "Warning Unhealthy Readiness probe failed: sick" {
			t.Fatalf("got events %q, want one Unhealthy readiness event", ev)
		}
		m.Stop("c1")
		if _, ok := m.Status("c1"); ok || m.Len() != 0 {
			t.Fatalf("prober still there after Stop")
		}
		before := len(fe.commands())
		clk.Step(10 * time.Second)
		if after := len(fe.commands()); after != before {
			t.Fatalf("got %d probes after Stop, want none", after-before)
		}
		healthy.Store(true)
	})

	t.Run("liveness kill stops probing", func(t *testing.T) {
		rec := &recorder{}
		healthy.Store(false)
		c := &corev1.Container{Name: "app", LivenessProbe: execProbe("live", 1, 2)}
		m.Ensure(ctx, Spec{PodUID: "p2", ContainerID: "c2", Container: c, StartedAt: clk.Now(), Changed: rec.changed, Event: rec.event})
		stepUntil(t, clk, func() bool { st, _ := m.Status("c2"); return st.Kill != nil })
		st, _ := m.Status("c2")
		if st.Kill.Kind != Liveness || st.Kill.Message != "sick" {
			t.Fatalf("got kill %+v, want liveness with the command's output", st.Kill)
		}
		testutil.Eventually(t, 5*time.Second, func() string {
			if n := rec.changes.Load(); n != 1 {
				return fmt.Sprintf("got %d changes, want 1", n)
			}
			return ""
		})
		before := len(fe.commands())
		clk.Step(10 * time.Second)
		if after := len(fe.commands()); after != before {
			t.Fatalf("got %d probes after the kill decision, want none", after-before)
		}
		for _, e := range rec.eventList() {
			if !strings.HasPrefix(e, "Warning Unhealthy Liveness probe failed: sick") {
				t.Fatalf("got event %q, want liveness failures", e)
			}
		}
		m.StopPod("p2")
		if m.Len() != 0 {
			t.Fatalf("got %d probers after StopPod, want 0", m.Len())
		}
	})

	t.Run("retain keeps only the running containers", func(t *testing.T) {
		healthy.Store(true)
		c := &corev1.Container{Name: "app", ReadinessProbe: execProbe("ready", 1, 1)}
		for _, id := range []string{"a", "b"} {
			m.Ensure(ctx, Spec{PodUID: "p3", ContainerID: id, Container: c, StartedAt: clk.Now()})
		}
		m.Ensure(ctx, Spec{PodUID: "p4", ContainerID: "x", Container: c, StartedAt: clk.Now()})
		m.Ensure(ctx, Spec{PodUID: "p4", ContainerID: "none", Container: &corev1.Container{Name: "plain"}, StartedAt: clk.Now()})
		m.Retain("p3", map[string]bool{"b": true})
		for id, want := range map[string]bool{"a": false, "b": true, "x": true, "none": false} {
			if _, ok := m.Status(id); ok != want {
				t.Fatalf("container %s: got probed=%v, want %v", id, ok, want)
			}
		}
		m.StopPod("p3")
		m.StopPod("p4")
	})
}

func waitStatus(t *testing.T, m *Manager, id string, ok func(Status) bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() string {
		st, found := m.Status(id)
		if !found || !ok(st) {
			return fmt.Sprintf("container %s: status %+v (probed=%v)", id, st, found)
		}
		return ""
	})
}

// stepUntil moves the fake clock a second at a time until done.
func stepUntil(t *testing.T, clk *clocktesting.FakeClock, done func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() string {
		if done() {
			return ""
		}
		if clk.HasWaiters() {
			clk.Step(time.Second)
		}
		return "not there yet at " + clk.Now().Format(time.TimeOnly)
	})
}
