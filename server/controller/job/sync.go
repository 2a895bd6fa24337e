package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"orch.dev/orch/server/controller"
)

// Condition reasons and messages, as Kubernetes writes them.
const (
	msgBackoffLimit     = "Job has reached the specified backoff limit"
	msgDeadline         = "Job was active longer than specified deadline"
	msgCompletions      = "Reached expected number of succeeded pods"
	reasonSuspended     = "JobSuspended"
	reasonResumed       = "JobResumed"
	eventCompleted      = "Completed"
	eventSuspended      = "Suspended"
	eventResumed        = "Resumed"
	defaultBackoffLimit = 6
)

// state is what one sync knows and decides about a Job.
type state struct {
	key  string
	job  *batchv1.Job // the working copy; its status is what gets written
	now  time.Time
	pods []*corev1.Pod // the pods the Job controls
	// active are the pods running or about to; terminating are being
	// deleted before they finished, including those this sync deleted.
	active      []*corev1.Pod
	terminating int32
	deleted     map[types.UID]bool
	// removed are pods whose finalizer this controller removed and whose
	// removal the informer has not shown yet.
	removed map[types.UID]bool
	// uncounted mirror status.uncountedTerminatedPods.
	uncSucceeded, uncFailed map[types.UID]bool
	indexed                 bool
	completions             int
	// done are the succeeded indexes of an Indexed Job, including those
	// of pods not counted yet.
	done intervals
	// final is the Complete or Failed condition the Job gets once every
	// pod is counted and none is still stopping.
	final *batchv1.JobCondition
}

// tracked reports whether pod still carries the finalizer that says its
// outcome is not counted yet.
func (st *state) tracked(pod *corev1.Pod) bool {
	return hasTrackingFinalizer(pod) && !st.removed[pod.UID]
}

func (st *state) validIndex(pod *corev1.Pod) bool {
	ix := completionIndex(pod)
	return ix >= 0 && ix < st.completions
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a malformed key never becomes valid
	}
	shared, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Forget(key)
		c.removed.forget(key)
		c.written.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if c.written.Stale(key, shared) {
		return nil // the informer brings the newer copy, and this key with it
	}
	if isFinished(shared) {
		return c.expire(ctx, key, shared)
	}
	sel, err := metav1.LabelSelectorAsSelector(shared.Spec.Selector)
	if err != nil || shared.Spec.Selector == nil || sel.Empty() {
		c.deps.Logger.Warn("job has no usable selector; not running it", "job", key, "err", err)
		return nil
	}
	// Expectations first: a pod created after this check is then either
	// in the list below or the sync after it.
	satisfied := c.expect.Satisfied(key)
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := controller.ClaimPods(ctx, c.deps.Client, shared, jobKind, sel, all)
	if err != nil {
		return err
	}
	st := c.newState(key, shared.DeepCopy(), pods)
	job := st.job
	succeeded, failed := st.counts()
	suspended := ptr.Deref(job.Spec.Suspend, false)
	if job.Status.StartTime == nil && !suspended {
		job.Status.StartTime = ptr.To(metav1.NewTime(st.now))
	}

	var requeue []time.Duration
	var interim *batchv1.JobCondition
	switch {
	case trueCondition(job, batchv1.JobFailureTarget) != nil:
		t := trueCondition(job, batchv1.JobFailureTarget)
		st.final = newCondition(batchv1.JobFailed, corev1.ConditionTrue, t.Reason, t.Message, st.now)
	case trueCondition(job, batchv1.JobSuccessCriteriaMet) != nil:
		t := trueCondition(job, batchv1.JobSuccessCriteriaMet)
		st.final = newCondition(batchv1.JobComplete, corev1.ConditionTrue, t.Reason, t.Message, st.now)
	case failed > ptr.Deref(job.Spec.BackoffLimit, defaultBackoffLimit) || pastBackoffLimitOnFailure(job, st.pods):
		interim = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit, st.now)
	default:
		if left, ok := deadlineLeft(job, st.now); ok {
			if left <= 0 {
				interim = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonDeadlineExceeded, msgDeadline, st.now)
			} else {
				requeue = append(requeue, left)
			}
		}
	}

	var manageErr error
	active := int32(len(st.active))
	if interim != nil || st.final != nil {
		// The Job is finishing: nothing of it may keep running.
		deleted, err := c.deletePods(ctx, st, st.active)
		manageErr = err
		if deleted != active || !satisfied {
			// Pods may remain that the informer has not shown yet.
			interim, st.final = nil, nil
		}
		active -= deleted
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			var wait time.Duration
			active, wait, manageErr = c.manage(ctx, st, succeeded)
			managed = true
			if wait > 0 {
				requeue = append(requeue, wait)
			}
		}
		complete := active == 0 && succeeded > 0
		if job.Spec.Completions != nil {
			complete = active == 0 && succeeded >= *job.Spec.Completions
		}
		switch {
		case complete:
			interim = newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, msgCompletions, st.now)
		case managed && suspended:
			if ensureCondition(job, batchv1.JobSuspended, corev1.ConditionTrue, reasonSuspended, "Job suspended", st.now) {
				c.recorder.Event(job, corev1.EventTypeNormal, eventSuspended, "Job suspended")
			}
		case managed:
			if ensureCondition(job, batchv1.JobSuspended, corev1.ConditionFalse, reasonResumed, "Job resumed", st.now) {
				c.recorder.Event(job, corev1.EventTypeNormal, eventResumed, "Job resumed")
				// activeDeadlineSeconds counts the time the Job runs
				// without a break.
				job.Status.StartTime = ptr.To(metav1.NewTime(st.now))
			}
		}
	}
	if interim != nil {
		ensureCondition(job, interim.Type, interim.Status, interim.Reason, interim.Message, st.now)
		final := batchv1.JobFailed
		if interim.Type == batchv1.JobSuccessCriteriaMet {
			final = batchv1.JobComplete
		}
		st.final = newCondition(final, corev1.ConditionTrue, interim.Reason, interim.Message, st.now)
	}
	job.Status.Active = active
	var ready int32
	for _, p := range st.active {
		if !st.deleted[p.UID] && controller.IsPodReady(p) {
			ready++
		}
	}
	job.Status.Ready = ptr.To(ready)
	job.Status.Terminating = ptr.To(st.terminating)

	more, trackErr := c.track(ctx, st, shared)
	if err := errors.Join(manageErr, trackErr); err != nil {
		return err
	}
	if more {
		requeue = append(requeue, time.Nanosecond)
	}
	if len(requeue) > 0 {
		return controller.RequeueAfter(slices.Min(requeue))
	}
	return nil
}

func (c *Controller) newState(key string, job *batchv1.Job, pods []*corev1.Pod) *state {
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	st := &state{
		key: key, job: job, now: c.deps.Clock.Now(), pods: pods,
		deleted: map[types.UID]bool{}, removed: c.removed.snapshot(key),
		uncSucceeded: map[types.UID]bool{}, uncFailed: map[types.UID]bool{},
	}
	for _, uid := range job.Status.UncountedTerminatedPods.Succeeded {
		st.uncSucceeded[uid] = true
	}
	for _, uid := range job.Status.UncountedTerminatedPods.Failed {
		st.uncFailed[uid] = true
	}
	for _, p := range pods {
		if controller.IsPodActive(p) {
			st.active = append(st.active, p)
		}
		if isTerminating(p) {
			st.terminating++
		}
	}
	if job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion && job.Spec.Completions != nil {
		st.indexed = true
		st.completions = int(*job.Spec.Completions)
		st.done = parseIntervals(job.Status.CompletedIndexes, st.completions)
	}
	return st
}

// counts are the Job's successes and failures: those in its status, those
// recorded as uncounted, and finished pods not recorded yet. For an
// Indexed Job, successes are succeeded indexes.
func (st *state) counts() (succeeded, failed int32) {
	status := st.job.Status
	succeeded = status.Succeeded + int32(len(st.uncSucceeded))
	failed = status.Failed + int32(len(st.uncFailed))
	for _, p := range st.pods {
		if !st.tracked(p) || st.uncSucceeded[p.UID] || st.uncFailed[p.UID] {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded && st.indexed:
			if st.validIndex(p) {
				st.done = st.done.add(completionIndex(p))
			}
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded++
		case countsAsFailed(p) && (!st.indexed || st.validIndex(p)):
			failed++
		}
	}
	if st.indexed {
		succeeded = int32(st.done.total())
	}
	return succeeded, failed
}

// manage creates or deletes pods toward what the Job wants active now. It
// returns the active count after its writes and, when replacements wait
// for the failure back-off, how long.
func (c *Controller) manage(ctx context.Context, st *state, succeeded int32) (int32, time.Duration, error) {
	job := st.job
	active := int32(len(st.active))
	if ptr.Deref(job.Spec.Suspend, false) {
		deleted, err := c.deletePods(ctx, st, st.active)
		return active - deleted, 0, err
	}
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	var want int32
	switch {
	case job.Spec.Completions != nil:
		want = max(0, min(*job.Spec.Completions-succeeded, parallelism))
	case succeeded > 0:
		// A work queue: once a pod succeeded, the rest only finish.
		want = active
	default:
		want = parallelism
	}
	if rm := st.podsToDelete(int(max(0, active-want))); len(rm) > 0 {
		if len(rm) > maxPodsPerSync {
			rm = rm[:maxPodsPerSync]
		}
		deleted, err := c.deletePods(ctx, st, rm)
		return active - deleted, 0, err
	}
	if active >= want {
		return active, 0, nil
	}
	if wait := c.failureBackoff(st); wait > 0 {
		return active, wait, nil
	}
	onlyFailed := ptr.Deref(job.Spec.PodReplacementPolicy, batchv1.TerminatingOrFailed) == batchv1.Failed
	diff := want - active
	if onlyFailed {
		diff -= st.terminating
	}
	diff = min(diff, maxPodsPerSync)
	if diff <= 0 {
		return active, 0, nil
	}
	var indexes []int
	if st.indexed {
		held := map[int]bool{}
		for _, p := range st.pods {
			if controller.IsPodActive(p) || (onlyFailed && isTerminating(p)) {
				held[completionIndex(p)] = true
			}
		}
		if indexes = pendingIndexes(int(diff), st.completions, st.done, held); len(indexes) == 0 {
			return active, 0, nil
		}
	}
	created, err := c.createPods(ctx, job, st.key, int(diff), indexes)
	return active + created, 0, err
}

// podsToDelete picks at least n active pods to delete: for an Indexed Job
// first those with an index that is invalid, done, or held by another
// pod; then the ones Kubernetes would delete first.
func (st *state) podsToDelete(n int) []*corev1.Pod {
	var rm, rest []*corev1.Pod
	if st.indexed {
		byIndex := map[int][]*corev1.Pod{}
		for _, p := range st.active {
			ix := completionIndex(p)
			if !st.validIndex(p) || st.done.has(ix) {
				rm = append(rm, p)
				continue
			}
			byIndex[ix] = append(byIndex[ix], p)
		}
		ixs := make([]int, 0, len(byIndex))
		for ix := range byIndex {
			ixs = append(ixs, ix)
		}
		sort.Ints(ixs)
		for _, ix := range ixs {
			ps := byIndex[ix]
			controller.SortForDeletion(ps)
			rm = append(rm, ps[:len(ps)-1]...)
			rest = append(rest, ps[len(ps)-1])
		}
	} else {
		rest = slices.Clone(st.active)
	}
	if len(rm) < n {
		controller.SortForDeletion(rest)
		rm = append(rm, rest[:min(len(rest), n-len(rm))]...)
	}
	return rm
}

// deletePods deletes pods of the Job and notes them as terminating.
func (c *Controller) deletePods(ctx context.Context, st *state, pods []*corev1.Pod) (int32, error) {
	gone, err := c.deletePodList(ctx, st.job, st.key, pods)
	for _, p := range gone {
		st.deleted[p.UID] = true
	}
	st.terminating += int32(len(gone))
	return int32(len(gone)), err
}

// failureBackoff is how long replacements must still wait after the
// failures since the Job's last success: 10s after one, doubling per
// further failure, at most 6 minutes (the Deps knobs). It is computed from
// the failed pods, which stay, so it survives restarts.
func (c *Controller) failureBackoff(st *state) time.Duration {
	var lastSuccess, lastFailure time.Time
	for _, p := range st.pods {
		if t := finishTime(p); p.Status.Phase == corev1.PodSucceeded && t.After(lastSuccess) {
			lastSuccess = t
		}
	}
	n := 0
	for _, p := range st.pods {
		if !countsAsFailed(p) {
			continue
		}
		if t := finishTime(p); t.After(lastSuccess) {
			n++
			if t.After(lastFailure) {
				lastFailure = t
			}
		}
	}
	if n == 0 {
		return 0
	}
	delay := c.deps.PodFailureBackoff
	for i := 1; i < n && delay < c.deps.MaxPodFailureBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, c.deps.MaxPodFailureBackoff)
	return max(0, min(delay, lastFailure.Add(delay).Sub(st.now)))
}

// pastBackoffLimitOnFailure reports whether the container restarts of a
// Job whose pods restart in place reached its backoffLimit.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var n int32
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending {
			n += restartsOf(p)
		}
	}
	limit := ptr.Deref(job.Spec.BackoffLimit, defaultBackoffLimit)
	if limit == 0 {
		return n > 0
	}
	return n >= limit
}

// deadlineLeft is the time left before activeDeadlineSeconds, when it
// applies (set, started, not suspended).
func deadlineLeft(job *batchv1.Job, now time.Time) (time.Duration, bool) {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || ptr.Deref(job.Spec.Suspend, false) {
		return 0, false
	}
	return job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second).Sub(now), true
}

// track counts the finished pods exactly once and removes their tracking
// finalizers: first the status records them as uncounted, then the
// finalizers go, then the counters take them. It sets the final condition
// once nothing is left to count or stop. It reports whether pods remain
// for another sync.
func (c *Controller) track(ctx context.Context, st *state, orig *batchv1.Job) (bool, error) {
	job := st.job
	finishing := st.final != nil
	var toRemove []*corev1.Pod
	more := false
	for _, p := range st.pods {
		if !st.tracked(p) {
			continue
		}
		if !isTerminal(p) && p.DeletionTimestamp == nil && !finishing {
			continue // still running: nothing to count yet
		}
		if len(toRemove) == maxPodsPerSync {
			more = true
			break
		}
		uid := p.UID
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !st.uncFailed[uid]:
			if !st.indexed {
				st.uncSucceeded[uid] = true
			} // an Indexed Job's success is its index, in st.done already
		case countsAsFailed(p) || (finishing && !isTerminal(p)):
			if !st.indexed || st.validIndex(p) {
				st.uncFailed[uid] = true
			}
		}
		// Anything else is a lost pod (deleted before it finished, or
		// disrupted): it is replaced, not counted.
		toRemove = append(toRemove, p)
	}
	setUncounted(job, st)
	if st.indexed {
		job.Status.CompletedIndexes = st.done.String()
	}
	written := orig
	if len(toRemove) > 0 && !equalStatus(job, written) {
		updated, err := c.updateStatus(ctx, st.key, job)
		if err != nil {
			return false, err
		}
		written = updated
		job = updated.DeepCopy()
		st.job = job
	}
	stillHeld, rmErr := c.removeFinalizers(ctx, st.key, toRemove)
	removedNow := map[types.UID]bool{}
	for _, p := range toRemove {
		if !stillHeld[p.UID] {
			removedNow[p.UID] = true
		}
	}
	held := map[types.UID]bool{}
	for _, p := range st.pods {
		if st.tracked(p) && !removedNow[p.UID] {
			held[p.UID] = true
		}
	}
	for uid := range st.uncSucceeded {
		if !held[uid] {
			job.Status.Succeeded++
			delete(st.uncSucceeded, uid)
		}
	}
	for uid := range st.uncFailed {
		if !held[uid] {
			job.Status.Failed++
			delete(st.uncFailed, uid)
		}
	}
	if st.indexed {
		job.Status.Succeeded = int32(st.done.total())
	}
	setUncounted(job, st)
	finished := false
	if st.final != nil && rmErr == nil && !more && len(st.uncSucceeded)+len(st.uncFailed) == 0 && st.terminating == 0 {
		ensureCondition(job, st.final.Type, st.final.Status, st.final.Reason, st.final.Message, st.now)
		if st.final.Type == batchv1.JobComplete {
			job.Status.CompletionTime = ptr.To(metav1.NewTime(st.now))
		}
		job.Status.Active, job.Status.Ready = 0, ptr.To[int32](0)
		finished = true
	}
	if !equalStatus(job, written) {
		if _, err := c.updateStatus(ctx, st.key, job); err != nil {
			return false, errors.Join(err, rmErr)
		}
	}
	if finished {
		if st.final.Type == batchv1.JobComplete {
			c.recorder.Event(job, corev1.EventTypeNormal, eventCompleted, "Job completed")
		} else {
			c.recorder.Event(job, corev1.EventTypeWarning, st.final.Reason, st.final.Message)
		}
	}
	return more, rmErr
}

// setUncounted writes the uncounted sets into the status, sorted.
func setUncounted(job *batchv1.Job, st *state) {
	list := func(m map[types.UID]bool) []types.UID {
		if len(m) == 0 {
			return nil
		}
		out := make([]types.UID, 0, len(m))
		for uid := range m {
			out = append(out, uid)
		}
		slices.Sort(out)
		return out
	}
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: list(st.uncSucceeded), Failed: list(st.uncFailed)}
}

func (c *Controller) updateStatus(ctx context.Context, key string, job *batchv1.Job) (*batchv1.Job, error) {
	updated, err := c.deps.Client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of job %s: %w", key, err)
	}
	c.written.Record(key, updated)
	return updated, nil
}

// expire deletes a finished Job whose ttlSecondsAfterFinished ran out,
// with background propagation: the garbage collector deletes its pods.
func (c *Controller) expire(ctx context.Context, key string, job *batchv1.Job) error {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return nil
	}
	if left := c.ttlLeft(job); left > 0 {
		return controller.RequeueAfter(left)
	}
	// Check the newest version: the TTL may just have changed.
	fresh, err := c.deps.Client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fresh.UID != job.UID || !isFinished(fresh) || fresh.Spec.TTLSecondsAfterFinished == nil || fresh.DeletionTimestamp != nil {
		return nil
	}
	if left := c.ttlLeft(fresh); left > 0 {
		return controller.RequeueAfter(left)
	}
	bg := metav1.DeletePropagationBackground
	uid, rv := fresh.UID, fresh.ResourceVersion
	err = c.deps.Client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete job %s after its TTL: %w", key, err)
	}
	c.deps.Logger.Info("deleted finished job after its TTL", "job", key, "ttlSeconds", *fresh.Spec.TTLSecondsAfterFinished)
	return nil
}

// ttlLeft is the time until a finished Job's TTL runs out.
func (c *Controller) ttlLeft(job *batchv1.Job) time.Duration {
	var at time.Time
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if cond := trueCondition(job, t); cond != nil {
			at = cond.LastTransitionTime.Time
		}
	}
	if job.Status.CompletionTime != nil && at.IsZero() {
		at = job.Status.CompletionTime.Time
	}
	return at.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second).Sub(c.deps.Clock.Now())
}
