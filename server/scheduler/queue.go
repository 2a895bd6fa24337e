package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Back-off between attempts to schedule a pod: it starts at
// initialBackoff and doubles per failed attempt up to maxBackoff.
const (
	initialBackoff = time.Second
	maxBackoff     = 60 * time.Second
)

// backoffFor is the wait after the given number of failed attempts.
func backoffFor(attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := initialBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

type queuedState uint8

const (
	stateActive queuedState = iota
	stateBackoff
	stateInFlight
)

// queuedPod is a pod waiting for a node, from the informer's add until it
// is bound or no longer the scheduler's to place.
type queuedPod struct {
	pod   *corev1.Pod
	state queuedState
	// index is the position in the heap the pod is in.
	index int
	// seq orders pods of equal priority: first come, first tried.
	seq      uint64
	readyAt  time.Time
	attempts int
	// lastAttempt is when the pod was last taken to be scheduled.
	lastAttempt time.Time
	// kinds are the filters that kept the pod off every node at the last
	// attempt; 0 after a failed binding, which only waits.
	kinds failureKind
	// moved collects the cluster changes seen while the pod was being
	// scheduled, which the attempt may have missed.
	moved failureKind
	// lastMessage and lastPosted are the last FailedScheduling message
	// posted and the attempt it was posted for.
	lastMessage string
	lastPosted  time.Time
}

// schedulingQueue holds the pods to schedule: ready ones by priority
// (then age), and those backing off after a failed attempt until their
// time comes or a cluster change may let them fit.
type schedulingQueue struct {
	clock clock.Clock

	mu       sync.Mutex
	pods     map[types.UID]*queuedPod
	active   activeHeap
	backoff  backoffHeap
	inFlight map[types.UID]*queuedPod
	seq      uint64
	// wake is signalled when Pop may have something new to return.
	wake chan struct{}
}

func newSchedulingQueue(clk clock.Clock) *schedulingQueue {
	return &schedulingQueue{
		clock:    clk,
		pods:     make(map[types.UID]*queuedPod),
		inFlight: make(map[types.UID]*queuedPod),
		wake:     make(chan struct{}, 1),
	}
}

func (q *schedulingQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Add queues a pod, or refreshes the queued copy.
func (q *schedulingQueue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp := q.pods[pod.UID]; qp != nil {
		qp.pod = pod
		return
	}
	qp := &queuedPod{pod: pod}
	q.pods[pod.UID] = qp
	q.pushActiveLocked(qp)
	q.signal()
}

// Update refreshes a queued pod. A change to its spec (its generation)
// may make a waiting pod fit, so it is tried again soon.
func (q *schedulingQueue) Update(old, pod *corev1.Pod) {
	q.mu.Lock()
	qp := q.pods[pod.UID]
	if qp == nil {
		q.mu.Unlock()
		q.Add(pod)
		return
	}
	defer q.mu.Unlock()
	qp.pod = pod
	if old.Generation != pod.Generation {
		q.moveLocked(qp, failAll)
	}
}

// Delete drops a pod: deleted, bound by someone, or no longer ours.
func (q *schedulingQueue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp := q.pods[uid]
	if qp == nil {
		return
	}
	switch qp.state {
	case stateActive:
		heap.Remove(&q.active, qp.index)
	case stateBackoff:
		heap.Remove(&q.backoff, qp.index)
	case stateInFlight:
		delete(q.inFlight, uid)
	}
	delete(q.pods, uid)
}

// Pop waits for the next pod to schedule; it returns false once ctx ends.
// The pod stays known (in flight) until Done, Unschedulable, BindFailed
// or Delete.
func (q *schedulingQueue) Pop(ctx context.Context) (*corev1.Pod, bool) {
	for {
		q.mu.Lock()
		now := q.clock.Now()
		q.flushBackoffLocked(now)
		if q.active.Len() > 0 {
			qp := heap.Pop(&q.active).(*queuedPod)
			qp.state = stateInFlight
			qp.lastAttempt = now
			qp.moved = 0
			q.inFlight[qp.pod.UID] = qp
			pod := qp.pod
			q.mu.Unlock()
			return pod, true
		}
		var timer clock.Timer
		var fire <-chan time.Time
		if q.backoff.Len() > 0 {
			timer = q.clock.NewTimer(q.backoff[0].readyAt.Sub(now))
			fire = timer.C()
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, false
		}
	}
}

// Done forgets a pod that is bound or needs no scheduling.
func (q *schedulingQueue) Done(uid types.UID) {
	q.Delete(uid)
}

// Unschedulable puts a pod that fit nowhere into back-off; kinds are the
// filters that rejected the nodes. It reports whether the message should
// be posted as an event: not when it repeats the last one within one
// back-off step, as it does when cluster changes bring the pod back
// early and it still does not fit.
func (q *schedulingQueue) Unschedulable(pod *corev1.Pod, kinds failureKind, message string) (post bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp := q.pods[pod.UID]
	if qp == nil || qp.state != stateInFlight {
		return false
	}
	step := backoffFor(qp.attempts)
	post = message != qp.lastMessage || qp.lastAttempt.Sub(qp.lastPosted) >= step
	if post {
		qp.lastMessage, qp.lastPosted = message, qp.lastAttempt
	}
	qp.kinds = kinds
	moved := qp.moved
	q.backoffLocked(qp)
	if moved&kinds != 0 {
		// Something changed during the attempt that it may not have seen.
		q.moveLocked(qp, moved)
	}
	return post
}

// BindFailed puts a pod whose binding failed into back-off.
func (q *schedulingQueue) BindFailed(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp := q.pods[uid]
	if qp == nil || qp.state != stateInFlight {
		return
	}
	qp.kinds = 0
	q.backoffLocked(qp)
}

// backoffLocked moves an in-flight pod to back-off after a failed attempt.
func (q *schedulingQueue) backoffLocked(qp *queuedPod) {
	delete(q.inFlight, qp.pod.UID)
	qp.attempts++
	qp.readyAt = qp.lastAttempt.Add(backoffFor(qp.attempts))
	qp.state = stateBackoff
	qp.moved = 0
	heap.Push(&q.backoff, qp)
	q.signal()
}

// Move tells the queue that the cluster changed in a way that can cure
// the given kinds of failure. Pods that failed for such a reason are
// tried again as soon as initialBackoff has passed since their last
// attempt, however long their back-off had grown: a new node is used
// within a second, yet a stream of changes cannot make a pod spin.
func (q *schedulingQueue) Move(kinds failureKind) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, qp := range q.inFlight {
		qp.moved |= kinds
	}
	// moveLocked only lowers readyAt and re-heaps; collect first so the
	// iteration does not see the heap change under it.
	var hit []*queuedPod
	for _, qp := range q.backoff {
		if qp.kinds&kinds != 0 {
			hit = append(hit, qp)
		}
	}
	for _, qp := range hit {
		q.moveLocked(qp, kinds)
	}
}

func (q *schedulingQueue) moveLocked(qp *queuedPod, kinds failureKind) {
	switch qp.state {
	case stateInFlight:
		qp.moved |= kinds
	case stateBackoff:
		if qp.kinds&kinds == 0 && kinds != failAll {
			return
		}
		if soon := qp.lastAttempt.Add(initialBackoff); soon.Before(qp.readyAt) {
			qp.readyAt = soon
			heap.Fix(&q.backoff, qp.index)
			q.signal()
		}
	}
}

func (q *schedulingQueue) flushBackoffLocked(now time.Time) {
	for q.backoff.Len() > 0 && !q.backoff[0].readyAt.After(now) {
		qp := heap.Pop(&q.backoff).(*queuedPod)
		q.pushActiveLocked(qp)
	}
}

func (q *schedulingQueue) pushActiveLocked(qp *queuedPod) {
	q.seq++
	qp.seq = q.seq
	qp.state = stateActive
	heap.Push(&q.active, qp)
}

// Len is the number of pods known to the queue, in any state.
func (q *schedulingQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pods)
}

// activeHeap orders pods by priority, then by when they became ready.
type activeHeap []*queuedPod

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	pi, pj := priority(h[i].pod), priority(h[j].pod)
	if pi != pj {
		return pi > pj
	}
	return h[i].seq < h[j].seq
}
func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *activeHeap) Push(x any) {
	qp := x.(*queuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *activeHeap) Pop() any {
	old := *h
	qp := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return qp
}

// backoffHeap orders pods by when their back-off ends.
type backoffHeap []*queuedPod

func (h backoffHeap) Len() int           { return len(h) }
func (h backoffHeap) Less(i, j int) bool { return h[i].readyAt.Before(h[j].readyAt) }
func (h backoffHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *backoffHeap) Push(x any) {
	qp := x.(*queuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *backoffHeap) Pop() any {
	old := *h
	qp := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return qp
}
