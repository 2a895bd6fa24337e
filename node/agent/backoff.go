package agent

import (
	"strings"
	"sync"
	"time"
)

// Back-off for restarting containers, as Kubernetes does it: the first
// restart is immediate, later ones wait 10 s, 20 s, 40 s, ... up to 5 min,
// each counted from when the container last stopped; a container that ran
// for 10 minutes starts over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// backoff remembers, per pod container, how long its next restart waits.
type backoff struct {
	mu      sync.Mutex
	initial time.Duration
	max     time.Duration
	reset   time.Duration
	delay   map[string]time.Duration
}

func newBackoff() *backoff {
	return &backoff{initial: backoffInitial, max: backoffMax, reset: backoffReset, delay: map[string]time.Duration{}}
}

func backoffKey(podUID, container string) string { return podUID + "/" + container }

// restart decides about restarting a container that stopped at finished
// after running for ran: it returns 0 to restart now (and lengthens the
// next wait), or how long is left to wait. Asking again while waiting
// changes nothing.
func (b *backoff) restart(key string, now, finished time.Time, ran time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.delay[key]
	if ran >= b.reset {
		d = 0
	}
	if ready := finished.Add(d); now.Before(ready) {
		return ready.Sub(now)
	}
	switch {
	case d == 0:
		d = b.initial
	case 2*d > b.max:
		d = b.max
	default:
		d *= 2
	}
	b.delay[key] = d
	return 0
}

// current returns the wait that the next failure of the container will get.
func (b *backoff) current(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delay[key]
}

// forgetKey drops what is remembered for one key.
func (b *backoff) forgetKey(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.delay, key)
}

// forget drops what is remembered for a pod.
func (b *backoff) forget(podUID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.delay {
		if strings.HasPrefix(k, podUID+"/") {
			delete(b.delay, k)
		}
	}
}
