// Package cronjob is the control loop of batch/v1 CronJobs: it creates a
// Job from a CronJob's jobTemplate at each time of its schedule, as the
// Kubernetes CronJob controller does.
//
// Schedules are read by github.com/robfig/cron/v3's standard parser (five
// fields or a descriptor such as @hourly or @every 2h) in spec.timeZone,
// UTC when unset. A Job is named after its CronJob and its schedule time
// in minutes since the epoch, so a time is never run twice however often
// the controller restarts. A time is started late when the controller
// could not start it on time (it was down, or a Forbid CronJob's previous
// Job was still running), unless spec.startingDeadlineSeconds says it is
// too late. Only the latest missed time is started.
//
// concurrencyPolicy Allow lets Jobs overlap, Forbid skips a time while a
// Job still runs, Replace deletes the running Job first. spec.suspend
// stops new Jobs. Finished Jobs beyond successfulJobsHistoryLimit and
// failedJobsHistoryLimit are deleted, oldest first.
//
// The controller keeps no timers of its own: each sync returns the time to
// the next schedule time (controller.RequeueAfter), measured on the
// injected clock.
package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"orch.dev/orch/server/controller"
)

var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// tooManyMissed is how many missed schedule times make a warning event.
const tooManyMissed = 100

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// Workers is the number of CronJobs synced at once (default 5).
	Workers int
}

// Controller is the CronJob control loop.
type Controller struct {
	deps     Deps
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	written  *controller.WrittenVersions
	recorder record.EventRecorder

	mu     sync.Mutex
	missed map[string]time.Time // the last MissSchedule reported, per key
}

// New builds the controller and registers its informers on deps.Informers.
func New(deps Deps) *Controller {
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Workers <= 0 {
		deps.Workers = 5
	}
	cjInf := deps.Informers.Batch().V1().CronJobs()
	jobInf := deps.Informers.Batch().V1().Jobs()
	c := &Controller{
		deps:     deps,
		cronJobs: cjInf.Lister(),
		jobs:     jobInf.Lister(),
		synced:   []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced},
		queue:    controller.NewClockedQueue("cronjob", deps.Clock),
		written:  controller.NewWrittenVersions(),
		missed:   map[string]time.Time{},
	}
	_, _ = cjInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, "")) // registration handles are not needed
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueOwner,
		UpdateFunc: func(oldObj, obj any) {
			c.enqueueOwner(oldObj)
			c.enqueueOwner(obj)
		},
		DeleteFunc: c.enqueueOwner,
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "cronjob-controller")
	defer stop()
	c.recorder = rec
	loop := &controller.Loop{Name: "cronjob", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

// enqueueOwner queues the CronJob that controls a Job.
func (c *Controller) enqueueOwner(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		if job, ok = tomb.Obj.(*batchv1.Job); !ok {
			return
		}
	}
	ref := metav1.GetControllerOfNoCopy(job)
	if ref == nil || ref.Kind != cronJobKind.Kind || ref.APIVersion != cronJobKind.GroupVersion().String() {
		return
	}
	c.queue.Add(job.Namespace + "/" + ref.Name)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a malformed key never becomes valid
	}
	shared, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.written.Forget(key)
		c.mu.Lock()
		delete(c.missed, key)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	if c.written.Stale(key, shared) {
		return nil // the informer brings the newer copy, and this key with it
	}
	all, err := c.jobs.Jobs(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var jobs []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.UID == shared.UID {
			jobs = append(jobs, j)
		}
	}
	cj := shared.DeepCopy()
	requeue, syncErr := c.syncCronJob(ctx, key, cj, jobs)
	if cj.DeletionTimestamp == nil {
		c.cleanupFinishedJobs(ctx, cj, jobs)
	}
	if !apiequality.Semantic.DeepEqual(cj.Status, shared.Status) {
		updated, err := c.deps.Client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update status of cronjob %s: %w", key, err)
		}
		c.written.Record(key, updated)
	}
	if syncErr != nil {
		return syncErr
	}
	if requeue > 0 {
		return controller.RequeueAfter(requeue)
	}
	return nil
}

// syncCronJob brings cj's status up to date with its Jobs and starts the
// Job of the latest schedule time that is due. It changes cj's status in
// place and returns when to look again.
func (c *Controller) syncCronJob(ctx context.Context, key string, cj *batchv1.CronJob, jobs []*batchv1.Job) (time.Duration, error) {
	now := c.deps.Clock.Now()
	children := map[types.UID]bool{}
	for _, j := range jobs {
		children[j.UID] = true
		finished, cond := finishedCondition(j)
		if !finished {
			continue
		}
		if inActive(cj, j.UID) {
			removeActive(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
		}
		if cond == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if last := cj.Status.LastSuccessfulTime; last == nil || j.Status.CompletionTime.After(last.Time) {
				cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
			}
		}
	}
	// An active Job missing from the cache may be newer than the cache:
	// only the API can say it is gone.
	for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
		if children[ref.UID] {
			continue
		}
		j, err := c.deps.Client.BatchV1().Jobs(cj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && j.UID != ref.UID):
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			removeActive(cj, ref.UID)
		case err != nil:
			return 0, err
		}
	}
	if cj.DeletionTimestamp != nil {
		return 0, nil
	}
	loc, err := time.LoadLocation(ptr.Deref(cj.Spec.TimeZone, ""))
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", ptr.Deref(cj.Spec.TimeZone, ""), err)
		return 0, nil
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return 0, nil
	}
	sched, err := parseSchedule(cj)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	slot, missed, err := mostRecent(sched, earliest, now)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	next := nextDelay(sched, earliest, now)
	if slot.IsZero() {
		return next, nil
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		deadline := time.Duration(*d) * time.Second
		if slot.Add(deadline).Before(now) {
			if c.noteMissed(key, slot) {
				c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", slot.UTC().Format(time.RFC1123Z))
			}
			return next, nil
		}
		// Only the times within the deadline count as missed.
		if from := now.Add(-deadline); from.After(earliest) {
			if _, missed, err = mostRecent(sched, from, now); err != nil {
				return next, nil
			}
		}
	}
	if missed > tooManyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
	}
	name := jobName(cj, slot)
	if inActiveByName(cj, name) || (cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(slot)) {
		return next, nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
			j, err := c.deps.Client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && j.UID != ref.UID) {
				removeActive(cj, ref.UID)
				continue
			}
			if err != nil {
				return 0, err
			}
			if err := c.deleteJob(ctx, cj, j); err != nil {
				return 0, fmt.Errorf("replace job %s: %w", j.Name, err)
			}
		}
	}
	job, err := c.createJob(ctx, cj, slot, loc)
	if err != nil {
		return 0, err
	}
	if job == nil {
		return next, nil // someone else's Job has the name
	}
	ref, err := reference.GetReference(scheme.Scheme, job)
	if err != nil {
		return 0, fmt.Errorf("reference to job %s: %w", job.Name, err)
	}
	cj.Status.Active = append(cj.Status.Active, *ref)
	cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(slot))
	return nextDelay(sched, slot, now), nil
}

// createJob creates the Job of schedule time slot. A Job of that name that
// exists already is taken as created when cj controls it and not yet in
// its active list; otherwise createJob returns nil.
func (c *Controller) createJob(ctx context.Context, cj *batchv1.CronJob, slot time.Time, loc *time.Location) (*batchv1.Job, error) {
	want := jobFromTemplate(cj, slot, loc)
	job, err := c.deps.Client.BatchV1().Jobs(cj.Namespace).Create(ctx, want, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created before a status write that did not happen (a restart).
		job, err = c.deps.Client.BatchV1().Jobs(cj.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if !metav1.IsControlledBy(job, cj) || inActive(cj, job.UID) {
			return nil, nil
		}
		return job, nil
	case err != nil:
		if ctx.Err() == nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		}
		return nil, fmt.Errorf("create job %s: %w", want.Name, err)
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", job.Name)
	return job, nil
}

// jobFromTemplate is the Job of schedule time slot.
func jobFromTemplate(cj *batchv1.CronJob, slot time.Time, loc *time.Location) *batchv1.Job {
	annotations := maps.Clone(cj.Spec.JobTemplate.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = slot.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Name:            jobName(cj, slot),
		Namespace:       cj.Namespace,
		Labels:          maps.Clone(cj.Spec.JobTemplate.Labels),
		Annotations:     annotations,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobKind)},
	}}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job
}

// jobName is NAME-<schedule time in minutes since the epoch>, the same for
// every attempt at one time.
func jobName(cj *batchv1.CronJob, slot time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, slot.Unix()/60)
}

// deleteJob deletes a Job of cj (its pods follow through the garbage
// collector) and drops it from the active list.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, job *batchv1.Job) error {
	bg := metav1.DeletePropagationBackground
	uid := job.UID
	err := c.deps.Client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		if ctx.Err() == nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		}
		return err
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", job.Name)
	}
	removeActive(cj, job.UID)
	return nil
}

// cleanupFinishedJobs deletes the oldest finished Jobs beyond the history
// limits.
func (c *Controller) cleanupFinishedJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch _, cond := finishedCondition(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		sortByStartTime(h.jobs)
		for _, j := range h.jobs[:len(h.jobs)-int(max(0, *h.limit))] {
			if err := c.deleteJob(ctx, cj, j); err != nil {
				c.deps.Logger.Warn("delete old job", "cronjob", cj.Namespace+"/"+cj.Name, "job", j.Name, "err", err)
			}
		}
	}
}

// sortByStartTime orders Jobs oldest first; Jobs that never started come
// last, ties by name.
func sortByStartTime(jobs []*batchv1.Job) {
	sort.SliceStable(jobs, func(i, j int) bool {
		a, b := jobs[i].Status.StartTime, jobs[j].Status.StartTime
		switch {
		case a == nil && b != nil:
			return false
		case a != nil && b == nil:
			return true
		case a == nil || a.Equal(b):
			return jobs[i].Name < jobs[j].Name
		}
		return a.Before(b)
	})
}

// finishedCondition reports whether job is finished, and how.
func finishedCondition(job *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func inActive(cj *batchv1.CronJob, uid types.UID) bool {
	for _, r := range cj.Status.Active {
		if r.UID == uid {
			return true
		}
	}
	return false
}

func inActiveByName(cj *batchv1.CronJob, name string) bool {
	for _, r := range cj.Status.Active {
		if r.Name == name && r.Namespace == cj.Namespace {
			return true
		}
	}
	return false
}

func removeActive(cj *batchv1.CronJob, uid types.UID) {
	out := cj.Status.Active[:0]
	for _, r := range cj.Status.Active {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	cj.Status.Active = out
	if len(out) == 0 {
		cj.Status.Active = nil
	}
}

// noteMissed reports whether the missed time slot of key is new, so its
// event is recorded once rather than at every sync.
func (c *Controller) noteMissed(key string, slot time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.missed[key].Equal(slot) {
		return false
	}
	c.missed[key] = slot
	return true
}
