package prober

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	"orch.dev/orch/internal/testutil"
)

func TestHook(t *testing.T) {
	var hits []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		http.Error(w, "whatever", http.StatusInternalServerError)
	}))
	defer srv.Close()
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	fe := &fakeExec{run: shell}
	r := NewRunner(fe, nil)
	target := Target{PodIP: host, ContainerID: "c"}
	cases := []struct {
		name    string
		h       *corev1.LifecycleHandler
		wantErr string
	}{
		{name: "exec exit 0", h: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
		{name: "exec failing", h: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"say", "nope"}}}, wantErr: "exited with 3: nope"},
		{name: "http-get: any answer will do", h: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt32(int32(port))}}},
		{name: "http-get: no answer", h: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(closedPort(t)))}}, wantErr: "refused"},
		{name: "sleep 0", h: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 0}}},
		{name: "no action", h: &corev1.LifecycleHandler{}, wantErr: "no action"},
		{name: "nil handler", h: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Hook(context.Background(), tc.h, target)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != 1 || hits[0] != "/hook" {
		t.Fatalf("got requests %v, want one to /hook", hits)
	}
}

// TestPreStopGrace checks that a preStop hook's time counts against the
// grace period: the container gets what is left, at least MinStopGrace.
func TestPreStopGrace(t *testing.T) {
	cases := []struct {
		name      string
		grace     time.Duration
		hook      *corev1.LifecycleHandler
		hookTakes time.Duration // for exec hooks: how long the command runs (on the fake clock)
		wantLeft  time.Duration
		wantErr   string
		wantRan   bool
		step      time.Duration // for sleep hooks: how far the clock moves while they wait
	}{
		{name: "no hook: all the grace", grace: 30 * time.Second, wantLeft: 30 * time.Second},
		{name: "zero grace: the hook is skipped", grace: 0, hook: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"bye"}}}, wantLeft: 0},
		{name: "exec of 5s leaves 25s", grace: 30 * time.Second, hook: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"bye"}}},
			hookTakes: 5 * time.Second, wantLeft: 25 * time.Second, wantRan: true},
		{name: "sleep of 4s leaves 6s", grace: 10 * time.Second, hook: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 4}},
			step: 4 * time.Second, wantLeft: 6 * time.Second},
		{name: "sleep past the grace is cut short; the minimum is left", grace: 3 * time.Second, hook: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 60}},
			step: 3 * time.Second, wantLeft: MinStopGrace, wantErr: "did not finish within the grace period"},
		{name: "a failing hook still leaves the rest", grace: 10 * time.Second, hook: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"fail"}}},
			hookTakes: time.Second, wantLeft: 9 * time.Second, wantErr: "exited with 1", wantRan: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			var ran []string
			var mu sync.Mutex
			fe := &fakeExec{run: func(ctx context.Context, cmd []string, out func(string)) (int, error) {
				mu.Lock()
				ran = append(ran, fmt.Sprintf("%s at +%s", cmd[0], clk.Since(t0)))
				mu.Unlock()
				clk.Step(tc.hookTakes)
				if cmd[0] == "fail" {
					return 1, nil
				}
				return 0, nil
			}}
			r := NewRunner(fe, clk)
			type res struct {
				left time.Duration
				err  error
			}
			done := make(chan res, 1)
			go func() {
				left, err := r.PreStop(context.Background(), tc.hook, Target{ContainerID: "c"}, tc.grace)
				done <- res{left, err}
			}()
			// A sleep hook waits on the fake clock next to the grace
			// timer: once both wait, time moves on in one step.
			if tc.step > 0 {
				testutil.Eventually(t, 5*time.Second, func() string {
					if n := clk.Waiters(); n != 2 {
						return fmt.Sprintf("%d timers wait, want the hook's and the grace period's", n)
					}
					return ""
				})
				clk.Step(tc.step)
			}
			got := <-done
			if got.left != tc.wantLeft {
				t.Fatalf("got %s left, want %s", got.left, tc.wantLeft)
			}
			switch {
			case tc.wantErr == "" && got.err != nil:
				t.Fatalf("got %v, want no error", got.err)
			case tc.wantErr != "" && (got.err == nil || !strings.Contains(got.err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", got.err, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.wantRan != (len(ran) == 1) {
				t.Fatalf("got commands %v, want ran=%v", ran, tc.wantRan)
			}
			if tc.wantRan && ran[0] != tc.hook.Exec.Command[0]+" at +0s" {
				t.Fatalf("got %q, want the hook to run first thing", ran[0])
			}
		})
	}
}
