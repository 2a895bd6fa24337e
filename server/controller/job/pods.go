package job

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/server/controller"
)

const (
	trackingFinalizer = batchv1.JobTrackingFinalizer
	indexKey          = batchv1.JobCompletionIndexAnnotation
	indexEnv          = "JOB_COMPLETION_INDEX"
	// maxPodsPerSync caps the pods one sync creates or deletes, and the
	// finished pods it counts; the rest follow in the next syncs.
	maxPodsPerSync = 500
	// parallelWrites caps the pod writes in flight for one Job.
	parallelWrites = 16
)

// lostReasons are pod status reasons that say the pod's node or the
// cluster stopped it, not its own work.
var lostReasons = map[string]bool{"NodeLost": true, "Evicted": true, "Shutdown": true, "Terminated": true, "NodeShutdown": true}

func hasTrackingFinalizer(pod *corev1.Pod) bool {
	return slices.Contains(pod.Finalizers, trackingFinalizer)
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// isDisrupted reports whether a failed pod was stopped from outside: its
// node was lost or shut down, or it was evicted.
func isDisrupted(pod *corev1.Pod) bool {
	if lostReasons[pod.Status.Reason] {
		return true
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// countsAsFailed reports whether pod is a failure toward backoffLimit: it
// failed by itself, not because it was disrupted.
func countsAsFailed(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodFailed && !isDisrupted(pod)
}

// isTerminating reports whether pod is being deleted before it finished.
func isTerminating(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && !isTerminal(pod)
}

// completionIndex is an Indexed Job pod's index, or -1.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[indexKey]
	if !ok {
		v, ok = pod.Labels[indexKey]
	}
	if !ok {
		return -1
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 || strconv.Itoa(ix) != v {
		return -1
	}
	return ix
}

// finishTime is when pod stopped, as well as its status tells.
func finishTime(pod *corev1.Pod) time.Time {
	var t time.Time
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if term := s.State.Terminated; term != nil && term.FinishedAt.Time.After(t) {
				t = term.FinishedAt.Time
			}
		}
	}
	if !t.IsZero() {
		return t
	}
	if c := controller.PodReadyCondition(pod); c != nil && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if pod.DeletionTimestamp != nil {
		return pod.DeletionTimestamp.Time
	}
	return pod.CreationTimestamp.Time
}

// restartsOf sums the restarts of a pod's containers.
func restartsOf(pod *corev1.Pod) int32 {
	var n int32
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			n += s.RestartCount
		}
	}
	return n
}

// removeTrackingFinalizer lets the API delete pod once it is done with it.
// A pod already gone is not an error.
func removeTrackingFinalizer(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	patch := fmt.Appendf(nil, `{"metadata":{"$deleteFromPrimitiveList/finalizers":[%q]}}`, trackingFinalizer)
	_, err := client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove the tracking finalizer of pod %s: %w", pod.Name, err)
	}
	return nil
}

// removeFinalizers removes the tracking finalizer from pods and returns
// the UIDs of the pods that still have it, with the first error.
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) (map[types.UID]bool, error) {
	failed := map[types.UID]bool{}
	var mu sync.Mutex
	var first error
	c.parallel(len(pods), func(i int) {
		pod := pods[i]
		c.removed.expect(key, pod.UID)
		if err := removeTrackingFinalizer(ctx, c.deps.Client, pod); err != nil {
			c.removed.observed(key, pod.UID)
			mu.Lock()
			failed[pod.UID] = true
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	})
	return failed, first
}

// deletePodList deletes pods on behalf of job and returns the ones that
// are gone or going.
func (c *Controller) deletePodList(ctx context.Context, job *batchv1.Job, key string, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	if len(pods) == 0 {
		return nil, nil
	}
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	c.expect.ExpectDeletions(key, uids...)
	var mu sync.Mutex
	var gone []*corev1.Pod
	var first error
	c.parallel(len(pods), func(i int) {
		already, err := c.deleteOnePod(ctx, job, pods[i])
		if already || err != nil {
			// No informer event will tell of this pod's deletion.
			c.expect.DeletionObserved(key, pods[i].UID)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if first == nil {
				first = err
			}
			return
		}
		gone = append(gone, pods[i])
	})
	return gone, first
}

// deleteOnePod deletes one pod of job, recording the event. It reports
// whether the pod was gone already.
func (c *Controller) deleteOnePod(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) (bool, error) {
	uid := pod.UID
	err := c.deps.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone, or replaced by another pod of the same name.
		return true, nil
	case err != nil:
		if ctx.Err() == nil {
			c.recorder.Eventf(job, corev1.EventTypeWarning, controller.ReasonFailedDelete, "Error deleting: %v", err)
		}
		return false, fmt.Errorf("delete pod %s: %w", pod.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, controller.ReasonSuccessfulDelete, "Deleted pod: %s", pod.Name)
	return false, nil
}

// createPods creates n pods for job (for the given indexes of an Indexed
// Job), in batches of 1, 2, 4, ... that stop at the first failing batch,
// as Kubernetes does, so a Job that cannot create pods does not flood the
// API. It returns how many it created.
func (c *Controller) createPods(ctx context.Context, job *batchv1.Job, key string, n int, indexes []int) (int32, error) {
	if indexes != nil {
		n = len(indexes)
	}
	if n <= 0 {
		return 0, nil
	}
	c.expect.ExpectCreations(key, n)
	tmpl := job.Spec.Template.DeepCopy()
	if indexes != nil {
		addIndexEnv(tmpl)
	}
	if !slices.Contains(tmpl.Finalizers, trackingFinalizer) {
		tmpl.Finalizers = append(tmpl.Finalizers, trackingFinalizer)
	}
	pc := controller.PodControl{Client: c.deps.Client, Recorder: c.recorder}
	var created int32
	var mu sync.Mutex
	var first error
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		c.parallel(size, func(i int) {
			pod := controller.PodFromTemplate(tmpl, job, jobKind)
			if indexes != nil {
				setIndex(pod, job.Name, indexes[done+i])
			}
			_, err := pc.Create(ctx, pod, job)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				c.expect.CreationObserved(key) // no informer event will come
				if first == nil {
					first = err
				}
				return
			}
			created++
		})
		done += size
		if first != nil {
			break
		}
	}
	for ; done < n; done++ {
		c.expect.CreationObserved(key) // skipped after a failure
	}
	return created, first
}

// addIndexEnv gives every container JOB_COMPLETION_INDEX from the pod's
// index annotation, as Kubernetes does.
func addIndexEnv(tmpl *corev1.PodTemplateSpec) {
	add := func(cs []corev1.Container) {
		for i := range cs {
			if slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == indexEnv }) {
				continue
			}
			cs[i].Env = append(cs[i].Env, corev1.EnvVar{Name: indexEnv, ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: fmt.Sprintf("metadata.annotations['%s']", indexKey)},
			}})
		}
	}
	add(tmpl.Spec.InitContainers)
	add(tmpl.Spec.Containers)
}

// setIndex makes pod the pod of index ix of Job name.
func setIndex(pod *corev1.Pod, name string, ix int) {
	v := strconv.Itoa(ix)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[indexKey] = v
	pod.Labels[indexKey] = v
	if host := name + "-" + v; len(host) <= 63 {
		pod.Spec.Hostname = host
	}
	pod.GenerateName = generateNameWithIndex(name, v)
}

// generateNameWithIndex is NAME-INDEX-, with NAME shortened so the pod name
// stays within what the API accepts for generated names.
func generateNameWithIndex(name, ix string) string {
	const maxGenerated = 58
	suffix := "-" + ix + "-"
	if len(name)+len(suffix) > maxGenerated {
		name = name[:max(0, maxGenerated-len(suffix))]
	}
	return name + suffix
}

// parallel runs f(0..n-1) with at most parallelWrites at once.
func (c *Controller) parallel(n int, f func(i int)) {
	sem := make(chan struct{}, parallelWrites)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}
