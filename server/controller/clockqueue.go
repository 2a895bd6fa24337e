package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// NewClockedQueue is NewQueue whose AddAfter (and so a Sync returning
// RequeueAfter) counts time on clk instead of the wall clock, so a loop that
// acts at deadlines (a toleration running out, a progress deadline) can be
// tested by stepping a fake clock. Retries after failures (AddRateLimited)
// still back off in real time: a failing sync is retried even while a test
// holds its fake clock still.
func NewClockedQueue(name string, clk clock.Clock) workqueue.TypedRateLimitingInterface[string] {
	return &clockedQueue{
		TypedRateLimitingInterface: NewQueue(name),
		clock:                      clk,
		due:                        map[string]time.Time{},
		stop:                       make(chan struct{}),
	}
}

type clockedQueue struct {
	workqueue.TypedRateLimitingInterface[string]
	clock clock.Clock

	mu   sync.Mutex
	due  map[string]time.Time // the earliest pending AddAfter of each key
	stop chan struct{}
	once sync.Once
}

// AddAfter adds key once d has passed on the queue's clock. A key already
// due no later than that is not scheduled twice.
func (q *clockedQueue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	at := q.clock.Now().Add(d)
	q.mu.Lock()
	if cur, ok := q.due[key]; ok && !cur.After(at) {
		q.mu.Unlock()
		return
	}
	q.due[key] = at
	q.mu.Unlock()
	t := q.clock.NewTimer(d)
	go func() {
		select {
		case <-t.C():
		case <-q.stop:
			t.Stop()
			return
		}
		q.mu.Lock()
		if q.due[key].Equal(at) {
			delete(q.due, key)
		}
		q.mu.Unlock()
		q.Add(key)
	}()
}

// ShutDown stops the pending timers and the queue.
func (q *clockedQueue) ShutDown() {
	q.once.Do(func() { close(q.stop) })
	q.TypedRateLimitingInterface.ShutDown()
}

// ShutDownWithDrain stops the pending timers, then drains and stops the
// queue.
func (q *clockedQueue) ShutDownWithDrain() {
	q.once.Do(func() { close(q.stop) })
	q.TypedRateLimitingInterface.ShutDownWithDrain()
}
