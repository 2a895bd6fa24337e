package agent

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBackoff()
	key := backoffKey("uid", "app")
	// A container that crashes after one second, again and again.
	steps := []struct {
		name     string
		now      time.Time
		finished time.Time
		ran      time.Duration
		wantWait time.Duration
	}{
		{"first crash restarts at once", t0, t0, time.Second, 0},
		{"second crash waits 10s", t0.Add(2 * time.Second), t0.Add(2 * time.Second), time.Second, 10 * time.Second},
		{"asking again mid-wait changes nothing", t0.Add(7 * time.Second), t0.Add(2 * time.Second), time.Second, 5 * time.Second},
		{"after 10s it restarts", t0.Add(12 * time.Second), t0.Add(2 * time.Second), time.Second, 0},
		{"third crash waits 20s", t0.Add(14 * time.Second), t0.Add(14 * time.Second), time.Second, 20 * time.Second},
		{"restarts after 20s", t0.Add(34 * time.Second), t0.Add(14 * time.Second), time.Second, 0},
		{"fourth crash waits 40s", t0.Add(36 * time.Second), t0.Add(36 * time.Second), time.Second, 40 * time.Second},
		{"a run of 10 minutes resets the back-off", t0.Add(time.Hour), t0.Add(time.Hour), 10 * time.Minute, 0},
		{"and the next crash waits 10s again", t0.Add(time.Hour + time.Second), t0.Add(time.Hour + time.Second), time.Second, 10 * time.Second},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if got := b.restart(key, s.now, s.finished, s.ran); got != s.wantWait {
				t.Fatalf("got wait %v, want %v", got, s.wantWait)
			}
		})
	}

	t.Run("capped at 5 minutes", func(t *testing.T) {
		b := newBackoff()
		now := t0
		for i := 0; i < 20; i++ {
			if w := b.restart(key, now, now, time.Second); w > 0 {
				now = now.Add(w)
				b.restart(key, now, now.Add(-w), time.Second)
			}
			now = now.Add(time.Second)
		}
		if got := b.current(key); got != 5*time.Minute {
			t.Fatalf("got %v, want 5m", got)
		}
	})

	t.Run("forget drops a pod", func(t *testing.T) {
		b.forget("uid")
		if got := b.current(key); got != 0 {
			t.Fatalf("got %v, want 0", got)
		}
	})
}
