// Package job is the control loop of batch/v1 Jobs: it runs pods from a
// Job's template until enough of them succeed, or the Job fails, as the
// Kubernetes Job controller does.
//
// A Job keeps at most spec.parallelism pods active and never more than the
// completions it still needs. NonIndexed Jobs are done after
// spec.completions successes (or, without completions, once any pod
// succeeded and none is active: a work queue); Indexed Jobs run each index
// in [0, completions) until it succeeds once, telling the pod its index in
// the batch.kubernetes.io/job-completion-index annotation and label, the
// JOB_COMPLETION_INDEX variable and a NAME-INDEX hostname. A Job fails when
// more than spec.backoffLimit pods failed (for restartPolicy OnFailure,
// container restarts count too), or when it ran longer than
// spec.activeDeadlineSeconds; its active pods are then deleted. Replacement
// pods after a failure wait 10s, doubling per further failure up to 6
// minutes. spec.suspend deletes the active pods and stops the clock;
// resuming starts it again. spec.ttlSecondsAfterFinished deletes a finished
// Job (the garbage collector then deletes its pods).
//
// Counting is exact across restarts and leader changes without trusting
// memory: every pod is created with the batch.kubernetes.io/job-tracking
// finalizer. A finished pod's UID is first written to
// status.uncountedTerminatedPods, then its finalizer is removed, then it
// moves into status.succeeded or status.failed (for Indexed Jobs, its index
// goes straight into status.completedIndexes, a set). Each step is a
// separate API write, so whichever step a crash interrupts, the next sync
// finishes it without counting a pod twice or losing one. Failed pods stay
// in the API, as in Kubernetes, so their logs can be read.
//
// Pods that are lost rather than failed are replaced without counting
// toward backoffLimit: a pod deleted (by anyone) before it finished, and a
// pod that failed because its node went away or it was evicted (reason
// NodeLost, Evicted, Shutdown or Terminated, or a DisruptionTarget
// condition). Kubernetes counts deleted pods as failures unless a pod
// failure policy says otherwise; orch chooses the policy most Jobs want,
// since such a pod says nothing about whether the work itself fails. The
// exception, as in Kubernetes, is a Job that is finishing: the pods it
// deletes itself then count as failed.
//
// Like Kubernetes since 1.31, a finishing Job first gets the interim
// condition FailureTarget or SuccessCriteriaMet, and the final Failed or
// Complete condition only once all its pods have stopped, so a CronJob
// never starts the next Job while the previous one's pods still run.
package job

import (
	"context"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/server/controller"
)

var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// PodFailureBackoff is how long a Job waits after a pod failed before
	// it creates a replacement, doubled for each further failure in a row
	// (default 10s), up to MaxPodFailureBackoff (default 6m).
	PodFailureBackoff    time.Duration
	MaxPodFailureBackoff time.Duration
	// Workers is the number of Jobs synced at once (default 5).
	Workers int
}

// Controller is the Job control loop.
type Controller struct {
	deps     Deps
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	orphans  workqueue.TypedRateLimitingInterface[string]
	expect   *controller.Expectations
	removed  *finalizerExpectations
	written  *controller.WrittenVersions
	recorder record.EventRecorder
}

// New builds the controller and registers its informers on deps.Informers.
func New(deps Deps) *Controller {
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.PodFailureBackoff <= 0 {
		deps.PodFailureBackoff = 10 * time.Second
	}
	if deps.MaxPodFailureBackoff <= 0 {
		deps.MaxPodFailureBackoff = 6 * time.Minute
	}
	if deps.Workers <= 0 {
		deps.Workers = 5
	}
	jobInf := deps.Informers.Batch().V1().Jobs()
	podInf := deps.Informers.Core().V1().Pods()
	c := &Controller{
		deps:    deps,
		jobs:    jobInf.Lister(),
		pods:    podInf.Lister(),
		synced:  []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue:   controller.NewClockedQueue("job", deps.Clock),
		orphans: controller.NewQueue("job-orphan-pods"),
		expect:  controller.NewExpectations(),
		removed: newFinalizerExpectations(),
		written: controller.NewWrittenVersions(),
	}
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // registration handles are not needed
		AddFunc:    c.enqueueJob,
		UpdateFunc: func(_, obj any) { c.enqueueJob(obj) },
		DeleteFunc: c.deleteJob,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "job-controller")
	defer stop()
	c.recorder = rec
	orphans := &controller.Loop{Name: "job-orphan-pods", Queue: c.orphans, Sync: c.syncOrphanPod, Workers: 1, Log: c.deps.Logger}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = orphans.Run(ctx, c.synced...) // it only returns when ctx ends
	}()
	loop := &controller.Loop{Name: "job", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	err := loop.Run(ctx, c.synced...)
	c.orphans.ShutDown()
	wg.Wait()
	return err
}

func (c *Controller) enqueueJob(obj any) {
	if key, ok := controller.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

// deleteJob forgets a deleted Job and lets go of its pods: their tracking
// finalizers must not keep them once the garbage collector deletes them.
func (c *Controller) deleteJob(obj any) {
	key, ok := controller.KeyOf(obj)
	if !ok {
		return
	}
	c.expect.Forget(key)
	c.removed.forget(key)
	c.written.Forget(key)
	job, ok := obj.(*batchv1.Job)
	if !ok {
		if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
			job, ok = tomb.Obj.(*batchv1.Job)
		}
	}
	if !ok {
		return
	}
	pods, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == job.UID && hasTrackingFinalizer(p) {
			c.enqueueOrphan(p)
		}
	}
}

// jobKeyOf is the queue key of the Job a controller reference names, if
// it is a Job.
func jobKeyOf(ns string, ref *metav1.OwnerReference) (string, bool) {
	if ref == nil || ref.Kind != jobKind.Kind || ref.APIVersion != jobKind.GroupVersion().String() {
		return "", false
	}
	return ns + "/" + ref.Name, true
}

// resolve is the Job that controls pod, when it exists with that UID.
func (c *Controller) resolve(pod *corev1.Pod) (*batchv1.Job, string) {
	ref := metav1.GetControllerOfNoCopy(pod)
	job, ok := controller.ResolveControllerRef(ref, jobKind, c.jobs.Jobs(pod.Namespace).Get)
	if !ok {
		return nil, ""
	}
	return job, pod.Namespace + "/" + ref.Name
}

// matchingJobs are the keys of the Jobs whose selector matches an orphan
// pod, which may adopt it.
func (c *Controller) matchingJobs(pod *corev1.Pod) []string {
	jobs, err := c.jobs.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	set := labels.Set(pod.Labels)
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(set) {
			keys = append(keys, j.Namespace+"/"+j.Name)
		}
	}
	return keys
}

func (c *Controller) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already being deleted (a relist).
		c.podGone(pod, false)
		return
	}
	job, key := c.resolve(pod)
	if job == nil {
		c.enqueueOrphan(pod)
		if metav1.GetControllerOfNoCopy(pod) == nil {
			for _, k := range c.matchingJobs(pod) {
				c.queue.Add(k)
			}
		}
		return
	}
	c.expect.CreationObserved(key)
	c.queue.Add(key)
	if isFinished(job) {
		c.enqueueOrphan(pod)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if hasTrackingFinalizer(old) && !hasTrackingFinalizer(pod) {
		if key, ok := jobKeyOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod)); ok {
			c.removed.observed(key, pod.UID)
		}
	}
	if pod.DeletionTimestamp != nil && old.DeletionTimestamp == nil {
		c.podGone(pod, false)
	}
	oldRef, newRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(pod)
	if oldRef != nil && (newRef == nil || oldRef.UID != newRef.UID) {
		if key, ok := jobKeyOf(old.Namespace, oldRef); ok {
			c.queue.Add(key)
		}
	}
	job, key := c.resolve(pod)
	if job == nil {
		c.enqueueOrphan(pod)
		if newRef == nil && (!labels.Equals(old.Labels, pod.Labels) || oldRef != nil) {
			for _, k := range c.matchingJobs(pod) {
				c.queue.Add(k)
			}
		}
		return
	}
	c.queue.Add(key)
	if isFinished(job) {
		c.enqueueOrphan(pod)
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	c.podGone(pod, true)
}

// podGone records that pod is being deleted (or, when final, is gone) and
// wakes its Job.
func (c *Controller) podGone(pod *corev1.Pod, final bool) {
	key, ok := jobKeyOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod))
	if !ok {
		c.enqueueOrphan(pod)
		return
	}
	c.expect.DeletionObserved(key, pod.UID)
	if final {
		c.removed.observed(key, pod.UID)
	} else {
		c.enqueueOrphan(pod)
	}
	c.queue.Add(key)
}

// enqueueOrphan queues pod for the removal of its tracking finalizer when
// no running Job will do it: it has no Job, its Job is gone or finished.
func (c *Controller) enqueueOrphan(pod *corev1.Pod) {
	if !hasTrackingFinalizer(pod) {
		return
	}
	if job, _ := c.resolve(pod); job != nil && !isFinished(job) {
		return
	}
	if key, ok := controller.KeyOf(pod); ok {
		c.orphans.Add(key)
	}
}

// syncOrphanPod removes the tracking finalizer from a pod no running Job
// counts: nothing else would, and the pod could never be deleted.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a malformed key never becomes valid
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !hasTrackingFinalizer(pod) {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if _, ok := jobKeyOf(ns, ref); ok {
			job, err := c.jobs.Jobs(ns).Get(ref.Name)
			if apierrors.IsNotFound(err) {
				// The cache may lag behind a Job just created: ask the API.
				job, err = c.deps.Client.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			}
			switch {
			case err == nil && job.UID == ref.UID && !isFinished(job):
				return nil // the Job's own sync counts the pod, then removes it
			case err != nil && !apierrors.IsNotFound(err):
				return err
			}
		}
	}
	return removeTrackingFinalizer(ctx, c.deps.Client, pod)
}

// finalizerExpectations are, per Job key, the pods whose tracking
// finalizer this controller removed and whose removal the informer has not
// shown yet: they are counted already and must not be counted again.
type finalizerExpectations struct {
	mu sync.Mutex
	m  map[string]map[types.UID]bool
}

func newFinalizerExpectations() *finalizerExpectations {
	return &finalizerExpectations{m: map[string]map[types.UID]bool{}}
}

func (e *finalizerExpectations) expect(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.m[key]
	if !ok {
		s = map[types.UID]bool{}
		e.m[key] = s
	}
	s[uid] = true
}

func (e *finalizerExpectations) observed(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.m[key]; ok {
		delete(s, uid)
		if len(s) == 0 {
			delete(e.m, key)
		}
	}
}

func (e *finalizerExpectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

func (e *finalizerExpectations) snapshot(key string) map[types.UID]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[types.UID]bool, len(e.m[key]))
	for uid := range e.m[key] {
		out[uid] = true
	}
	return out
}
