// Package controller holds what the workload control loops share: the
// work loop over a rate-limited queue, expectations, the handling of pod
// informer events for the owners of pods, the event recorder, pod creation
// and deletion on behalf of an owner, adoption and release of pods by
// selector, status writes, and pod state helpers. Each control loop lives
// in its own package below this one.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// NewQueue is the rate-limited work queue of keys the control loops use:
// per-key exponential back-off from 5 ms to 1000 s plus an overall bucket,
// as in Kubernetes.
func NewQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// RequeueAfter is an error a sync returns to be called again for the same
// key after a delay, without counting as a failure.
type RequeueAfter time.Duration

func (r RequeueAfter) Error() string { return fmt.Sprintf("look again in %s", time.Duration(r)) }

// Loop runs Sync for the keys of Queue with Workers goroutines. Event
// handlers only add keys to the queue; Sync reconciles one key from the
// current state (level-based), so a key queued many times is synced once.
type Loop struct {
	Name    string
	Queue   workqueue.TypedRateLimitingInterface[string]
	Sync    func(ctx context.Context, key string) error
	Workers int
	Log     *slog.Logger
}

// Run waits for the informers to sync, then works the queue until ctx
// ends. It shuts the queue down on return.
func (l *Loop) Run(ctx context.Context, synced ...cache.InformerSynced) error {
	defer l.Queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		l.Queue.ShutDown()
	}()
	workers := l.Workers
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
	wg.Wait()
	return nil
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.Queue.Get()
	if quit {
		return false
	}
	defer l.Queue.Done(key)
	err := l.Sync(ctx, key)
	var again RequeueAfter
	switch {
	case err == nil:
		l.Queue.Forget(key)
	case errors.As(err, &again):
		l.Queue.Forget(key)
		l.Queue.AddAfter(key, time.Duration(again))
	case ctx.Err() != nil:
	default:
		if n := l.Queue.NumRequeues(key); n < 5 || n%20 == 0 {
			l.Log.Warn("sync failed; will retry", "key", key, "err", err, "retries", n)
		}
		l.Queue.AddRateLimited(key)
	}
	return true
}

// KeyOf is the queue key of an object ("namespace/name", or "name" for a
// cluster-scoped one); tombstones of deleted objects give the key of the
// object they stand for.
func KeyOf(obj any) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	return key, err == nil
}

// EnqueueHandler is the event handler of an informer whose objects are the
// loop's own keys: every add, update and delete queues the object's key,
// after prefix (empty for none).
func EnqueueHandler(queue workqueue.TypedInterface[string], prefix string) cache.ResourceEventHandlerFuncs {
	enqueue := func(obj any) {
		if key, ok := KeyOf(obj); ok {
			queue.Add(prefix + key)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue}
}
