package prober

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func probe(initialDelay, period, success, failure int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
		InitialDelaySeconds: initialDelay, PeriodSeconds: period, SuccessThreshold: success, FailureThreshold: failure,
	}
}

// step is one moment in a machine's life: at second at, the probes due are
// wantDue, and they return the results given (true: pass).
type step struct {
	at      int
	wantDue []Kind
	results map[Kind]bool
	// what the machine says after the results.
	wantStarted, wantReady bool
	wantKill               Kind // "" for none
	wantChange             bool // the status changed at this step
	wantEvents             int  // Unhealthy events produced at this step
}

func TestMachine(t *testing.T) {
	ok, bad := true, false
	cases := []struct {
		name   string
		probes Probes
		// before any result
		wantStarted, wantReady bool
		steps                  []step
	}{
		{
			name:        "readiness only: not ready until the first success, then flips once per threshold",
			probes:      Probes{Readiness: probe(0, 10, 1, 3)},
			wantStarted: true, wantReady: false,
			steps: []step{
				{at: 0, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true, wantReady: true, wantChange: true},
				{at: 5, wantDue: nil, wantStarted: true, wantReady: true},
				{at: 10, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true, wantReady: true},
				{at: 20, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantReady: true, wantEvents: 1},
				{at: 30, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantReady: true},
				{at: 40, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantReady: false, wantChange: true, wantEvents: 1},
				{at: 50, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantReady: false},
				{at: 60, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true, wantReady: true, wantChange: true},
			},
		},
		{
			name:        "readiness with a success threshold of 2 and an initial delay",
			probes:      Probes{Readiness: probe(5, 1, 2, 1)},
			wantStarted: true, wantReady: false,
			steps: []step{
				{at: 0, wantDue: nil, wantStarted: true},
				{at: 4, wantDue: nil, wantStarted: true},
				{at: 5, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true},
				{at: 6, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true, wantReady: true, wantChange: true},
				{at: 7, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantReady: false, wantChange: true, wantEvents: 1},
				{at: 8, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: ok}, wantStarted: true},
				{at: 9, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true},
			},
		},
		{
			name:        "liveness kills after failureThreshold consecutive failures, a success in between resets the count",
			probes:      Probes{Liveness: probe(0, 10, 1, 3)},
			wantStarted: true, wantReady: true,
			steps: []step{
				{at: 0, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: bad}, wantStarted: true, wantReady: true, wantEvents: 1},
				{at: 10, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: bad}, wantStarted: true, wantReady: true},
				{at: 20, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: ok}, wantStarted: true, wantReady: true},
				{at: 30, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: bad}, wantStarted: true, wantReady: true},
				{at: 40, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: bad}, wantStarted: true, wantReady: true},
				{at: 50, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: bad}, wantStarted: true, wantReady: false, wantKill: Liveness, wantChange: true, wantEvents: 1},
				{at: 60, wantDue: nil, wantStarted: true, wantKill: Liveness},
			},
		},
		{
			name:        "startup holds liveness and readiness back until it passes",
			probes:      Probes{Startup: probe(0, 1, 1, 10), Liveness: probe(0, 10, 1, 1), Readiness: probe(0, 10, 1, 1)},
			wantStarted: false, wantReady: false,
			steps: []step{
				{at: 0, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: bad}, wantEvents: 1},
				{at: 1, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: bad}},
				{at: 2, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: ok}, wantStarted: true, wantChange: true},
				{at: 2, wantDue: []Kind{Liveness, Readiness}, results: map[Kind]bool{Liveness: ok, Readiness: ok}, wantStarted: true, wantReady: true, wantChange: true},
				{at: 3, wantDue: nil, wantStarted: true, wantReady: true},
				{at: 12, wantDue: []Kind{Liveness, Readiness}, results: map[Kind]bool{Liveness: bad, Readiness: ok}, wantStarted: true, wantKill: Liveness, wantChange: true, wantEvents: 1},
			},
		},
		{
			name:        "startup failing failureThreshold times kills",
			probes:      Probes{Startup: probe(0, 1, 1, 2), Readiness: probe(0, 1, 1, 1)},
			wantStarted: false, wantReady: false,
			steps: []step{
				{at: 0, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: bad}, wantEvents: 1},
				{at: 1, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: bad}, wantKill: Startup, wantChange: true, wantEvents: 1},
				{at: 2, wantDue: nil, wantKill: Startup},
			},
		},
		{
			name:        "liveness initial delay counts from the container's start, not from startup passing",
			probes:      Probes{Startup: probe(0, 1, 1, 5), Liveness: probe(3, 1, 1, 1)},
			wantStarted: false, wantReady: false,
			steps: []step{
				{at: 0, wantDue: []Kind{Startup}, results: map[Kind]bool{Startup: ok}, wantStarted: true, wantReady: true, wantChange: true},
				{at: 1, wantDue: nil, wantStarted: true, wantReady: true},
				{at: 3, wantDue: []Kind{Liveness}, results: map[Kind]bool{Liveness: ok}, wantStarted: true, wantReady: true},
			},
		},
		{
			name:        "readiness failing for long emits a rate-limited event",
			probes:      Probes{Readiness: probe(0, 10, 1, 1)},
			wantStarted: true, wantReady: false,
			steps: []step{
				{at: 0, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantEvents: 1},
				{at: 10, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true},
				{at: 50, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true},
				{at: 60, wantDue: []Kind{Readiness}, results: map[Kind]bool{Readiness: bad}, wantStarted: true, wantEvents: 1},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(tc.probes, t0)
			st := m.Status()
			if st.Started != tc.wantStarted || st.Ready != tc.wantReady || st.Kill != nil {
				t.Fatalf("before any probe: got %+v, want started=%v ready=%v", st, tc.wantStarted, tc.wantReady)
			}
			for i, s := range tc.steps {
				now := t0.Add(time.Duration(s.at) * time.Second)
				due := m.Due(now)
				if !equalKinds(due, s.wantDue) {
					t.Fatalf("step %d (t=%ds): got due %v, want %v", i, s.at, due, s.wantDue)
				}
				changes, events := 0, 0
				for _, k := range due {
					r := Result{Success: s.results[k]}
					if !r.Success {
						r.Message = "boom"
					}
					ch := m.Record(now, k, r)
					if ch.Status {
						changes++
					}
					if ch.Event != "" {
						events++
						if want := string(k) + " probe failed: boom"; ch.Event != want {
							t.Fatalf("step %d: got event %q, want %q", i, ch.Event, want)
						}
					}
				}
				st := m.Status()
				gotKill := Kind("")
				if st.Kill != nil {
					gotKill = st.Kill.Kind
				}
				if st.Started != s.wantStarted || st.Ready != s.wantReady || gotKill != s.wantKill {
					t.Fatalf("step %d (t=%ds): got started=%v ready=%v kill=%q, want started=%v ready=%v kill=%q",
						i, s.at, st.Started, st.Ready, gotKill, s.wantStarted, s.wantReady, s.wantKill)
				}
				if wantChanges := map[bool]int{true: 1, false: 0}[s.wantChange]; changes != wantChanges {
					t.Fatalf("step %d (t=%ds): got %d status changes, want %d", i, s.at, changes, wantChanges)
				}
				if events != s.wantEvents {
					t.Fatalf("step %d (t=%ds): got %d events, want %d", i, s.at, events, s.wantEvents)
				}
			}
		})
	}
}

func equalKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMachineNext(t *testing.T) {
	m := NewMachine(Probes{Liveness: probe(5, 10, 1, 1)}, t0)
	if got := m.Next(); !got.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("got next %v, want the end of the initial delay", got)
	}
	m.Record(t0.Add(5*time.Second), Liveness, Result{Success: true})
	if got := m.Next(); !got.Equal(t0.Add(15 * time.Second)) {
		t.Fatalf("got next %v, want one period later", got)
	}
	m.Record(t0.Add(15*time.Second), Liveness, Result{Message: "down"})
	if got := m.Next(); !got.IsZero() {
		t.Fatalf("got next %v after a kill, want none", got)
	}
	if k := m.Status().Kill; k == nil || k.Message != "down" || k.Grace != nil {
		t.Fatalf("got kill %+v, want one with the failure's message and no probe grace", k)
	}
}

func TestMachineKillGraceAndDefaults(t *testing.T) {
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}, TerminationGracePeriodSeconds: ptr.To(int64(7))}
	m := NewMachine(Probes{Liveness: p}, t0)
	// Defaults: period 10 s, failure threshold 3.
	for i := range 3 {
		now := t0.Add(time.Duration(i*10) * time.Second)
		if due := m.Due(now); len(due) != 1 {
			t.Fatalf("at %ds: got due %v, want liveness (default period 10 s)", i*10, due)
		}
		m.Record(now, Liveness, Result{Message: "HTTP probe failed with statuscode: 500"})
	}
	k := m.Status().Kill
	if k == nil || k.Grace == nil || *k.Grace != 7*time.Second {
		t.Fatalf("got kill %+v, want one after 3 failures with a grace of 7s", k)
	}
	if !strings.Contains(k.Message, "500") {
		t.Fatalf("got message %q, want the failure's", k.Message)
	}
}
