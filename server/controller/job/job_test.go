package job

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

const wait = 20 * time.Second

// harness is a Job controller on a fresh API server with a fake clock.
type harness struct {
	t   *testing.T
	ctx context.Context
	cs  kubernetes.Interface
	clk *clocktesting.FakeClock
}

func start(t *testing.T) *harness {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, cs: env.Client, clk: clocktesting.NewFakeClock(time.Now())}
	t.Cleanup(h.run())
	return h
}

// run starts a Job controller (with its own informers) and returns the
// function that stops it.
func (h *harness) run() func() {
	ctx, cancel := context.WithCancel(h.ctx)
	f := informers.NewSharedInformerFactory(h.cs, 0)
	c := New(Deps{Client: h.cs, Informers: f, Logger: logging.Discard, Clock: h.clk})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		f.Shutdown()
	}
}

// newJob is a Job of one container that restarts Never.
func newJob(name string, completions, parallelism *int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "work", Image: "orch/busybox:dev"}}},
			},
		},
	}
}

func (h *harness) create(job *batchv1.Job) *batchv1.Job {
	h.t.Helper()
	out, err := h.cs.BatchV1().Jobs("default").Create(h.ctx, job, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) job(name string) *batchv1.Job {
	h.t.Helper()
	j, err := h.cs.BatchV1().Jobs("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// pods lists the pods of Job name, oldest first.
func (h *harness) pods(name string) []corev1.Pod {
	h.t.Helper()
	l, err := h.cs.CoreV1().Pods("default").List(h.ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// running are the pods of Job name that are neither finished nor deleted.
func (h *harness) running(name string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range h.pods(name) {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// finish plays the node agent: pod p ends in phase with reason.
func (h *harness) finish(p corev1.Pod, phase corev1.PodPhase, reason string) {
	h.t.Helper()
	code := int32(0)
	if phase == corev1.PodFailed {
		code = 1
	}
	p.Status.Phase = phase
	p.Status.Reason = reason
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "work", Image: "orch/busybox:dev",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(h.clk.Now())}}}}
	if _, err := h.cs.CoreV1().Pods("default").UpdateStatus(h.ctx, &p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// waitJob waits until check accepts Job name.
func (h *harness) waitJob(name string, check func(*batchv1.Job) string) *batchv1.Job {
	h.t.Helper()
	var j *batchv1.Job
	testutil.Eventually(h.t, wait, func() string {
		var err error
		if j, err = h.cs.BatchV1().Jobs("default").Get(h.ctx, name, metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return check(j)
	})
	return j
}

// waitRunning waits until Job name has n running pods.
func (h *harness) waitRunning(name string, n int) []corev1.Pod {
	h.t.Helper()
	var pods []corev1.Pod
	testutil.Eventually(h.t, wait, func() string {
		if pods = h.running(name); len(pods) != n {
			return fmt.Sprintf("%d running pods, want %d", len(pods), n)
		}
		return ""
	})
	return pods
}

// stepUntil advances the fake clock a second at a time until check
// passes. The controller arms its timers when it handles an update, which
// may come after a single step past the deadline has already happened
// (the timer then waits from the later time); stepping on covers that.
func (h *harness) stepUntil(check func() string) {
	h.t.Helper()
	testutil.Eventually(h.t, wait, func() string {
		h.clk.Step(time.Second)
		return check()
	})
}

// waitEvent waits for an event with reason on object name.
func (h *harness) waitEvent(name, reason string) corev1.Event {
	h.t.Helper()
	var ev corev1.Event
	testutil.Eventually(h.t, wait, func() string {
		l, err := h.cs.CoreV1().Events("default").List(h.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil {
			return err.Error()
		}
		if len(l.Items) == 0 {
			return "no " + reason + " event on " + name
		}
		ev = l.Items[0]
		return ""
	})
	return ev
}

func condition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// finishedWith checks that a Job ended with condition t and reason.
func finishedWith(t batchv1.JobConditionType, reason string) func(*batchv1.Job) string {
	return func(j *batchv1.Job) string {
		c := condition(j, t)
		if c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("no %s condition yet; status %+v", t, j.Status)
		}
		if c.Reason != reason {
			return fmt.Sprintf("got reason %q, want %q", c.Reason, reason)
		}
		return ""
	}
}

func TestCompletionsWithParallelism(t *testing.T) {
	h := start(t)
	j := h.create(newJob("batch", ptr.To[int32](5), ptr.To[int32](2)))
	if j.Spec.Selector == nil || j.Spec.Selector.MatchLabels["batch.kubernetes.io/controller-uid"] != string(j.UID) {
		t.Fatalf("got selector %v, want one on the Job's UID", j.Spec.Selector)
	}
	finished := 0
	for finished < 5 {
		var pods []corev1.Pod
		testutil.Eventually(t, wait, func() string {
			pods = h.running("batch")
			if len(pods) > 2 {
				t.Fatalf("got %d running pods, want at most parallelism 2", len(pods))
			}
			if want := min(2, 5-finished); len(pods) != want {
				return fmt.Sprintf("%d running pods, want %d", len(pods), want)
			}
			return ""
		})
		h.finish(pods[0], corev1.PodSucceeded, "")
		finished++
		if n := len(h.running("batch")); n > 2 {
			t.Fatalf("got %d running pods, want at most 2", n)
		}
	}
	j = h.waitJob("batch", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	if j.Status.Succeeded != 5 || j.Status.Failed != 0 || j.Status.Active != 0 || j.Status.CompletionTime == nil || j.Status.StartTime == nil {
		t.Errorf("got status %+v, want 5 succeeded, none failed or active, start and completion times", j.Status)
	}
	if c := condition(j, batchv1.JobSuccessCriteriaMet); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("got no SuccessCriteriaMet condition before Complete: %+v", j.Status.Conditions)
	}
	if u := j.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		t.Errorf("got uncounted pods %+v after completion, want none", u)
	}
	pods := h.pods("batch")
	if len(pods) != 5 {
		t.Fatalf("got %d pods, want the 5 that succeeded", len(pods))
	}
	for _, p := range pods {
		for _, l := range []string{"batch.kubernetes.io/controller-uid", "controller-uid"} {
			if p.Labels[l] != string(j.UID) {
				t.Errorf("pod %s: label %s = %q, want the Job's UID", p.Name, l, p.Labels[l])
			}
		}
		for _, l := range []string{"batch.kubernetes.io/job-name", "job-name", "app"} {
			if p.Labels[l] != "batch" {
				t.Errorf("pod %s: label %s = %q, want batch", p.Name, l, p.Labels[l])
			}
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != j.UID {
			t.Errorf("pod %s: controller %v, want the Job", p.Name, ref)
		}
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s: finalizers %v left on a counted pod", p.Name, p.Finalizers)
		}
	}
	h.waitEvent("batch", "SuccessfulCreate")
	h.waitEvent("batch", "Completed")
}

func TestWorkQueueEndsWhenAPodSucceededAndNoneRuns(t *testing.T) {
	h := start(t)
	h.create(newJob("queue", nil, ptr.To[int32](3)))
	pods := h.waitRunning("queue", 3)
	h.finish(pods[0], corev1.PodSucceeded, "")
	// No replacement after a success; the others finish their work.
	h.waitJob("queue", func(j *batchv1.Job) string {
		if j.Status.Succeeded != 1 || j.Status.Active != 2 {
			return fmt.Sprintf("got succeeded %d active %d, want 1 and 2", j.Status.Succeeded, j.Status.Active)
		}
		return ""
	})
	if n := len(h.running("queue")); n != 2 {
		t.Fatalf("got %d running pods after a success, want the 2 left", n)
	}
	h.finish(pods[1], corev1.PodSucceeded, "")
	h.finish(pods[2], corev1.PodSucceeded, "")
	j := h.waitJob("queue", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	if j.Status.Succeeded != 3 {
		t.Errorf("got succeeded %d, want 3", j.Status.Succeeded)
	}
}

func TestBackoffLimitExceeded(t *testing.T) {
	h := start(t)
	job := newJob("flaky", ptr.To[int32](5), ptr.To[int32](3))
	job.Spec.BackoffLimit = ptr.To[int32](1)
	h.create(job)
	pods := h.waitRunning("flaky", 3)
	h.finish(pods[0], corev1.PodFailed, "Error")
	h.finish(pods[1], corev1.PodFailed, "Error")
	j := h.waitJob("flaky", finishedWith(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	if c := condition(j, batchv1.JobFailureTarget); c == nil || c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("got conditions %+v, want FailureTarget before Failed", j.Status.Conditions)
	}
	// The pod still running was deleted; it counts as failed, as in
	// Kubernetes, because the Job stopped it.
	if j.Status.Failed != 3 || j.Status.Active != 0 || j.Status.Succeeded != 0 {
		t.Errorf("got status %+v, want 3 failed, none active", j.Status)
	}
	left := h.pods("flaky")
	if len(left) != 2 {
		t.Fatalf("got %d pods, want the 2 failed ones kept and the running one deleted", len(left))
	}
	for _, p := range left {
		if p.Status.Phase != corev1.PodFailed || len(p.Finalizers) != 0 {
			t.Errorf("pod %s: phase %s finalizers %v, want a Failed pod without finalizers", p.Name, p.Status.Phase, p.Finalizers)
		}
	}
	ev := h.waitEvent("flaky", "BackoffLimitExceeded")
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("got event type %s, want Warning", ev.Type)
	}
	h.waitEvent("flaky", "SuccessfulDelete")
}

func TestFailedPodIsReplacedAfterBackoff(t *testing.T) {
	h := start(t)
	h.create(newJob("retry", ptr.To[int32](1), ptr.To[int32](1)))
	pods := h.waitRunning("retry", 1)
	h.finish(pods[0], corev1.PodFailed, "Error")
	h.waitJob("retry", func(j *batchv1.Job) string {
		if j.Status.Failed != 1 {
			return fmt.Sprintf("got failed %d, want 1", j.Status.Failed)
		}
		return ""
	})
	// The replacement waits 10s on the Job's clock.
	if n := len(h.running("retry")); n != 0 {
		t.Fatalf("got %d running pods right after a failure, want the replacement to wait", n)
	}
	h.clk.Step(10 * time.Second)
	h.stepUntil(func() string {
		if pods = h.running("retry"); len(pods) != 1 {
			return fmt.Sprintf("%d running pods, want the replacement", len(pods))
		}
		return ""
	})
	h.finish(pods[0], corev1.PodSucceeded, "")
	j := h.waitJob("retry", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	if j.Status.Failed != 1 || j.Status.Succeeded != 1 {
		t.Errorf("got status %+v, want 1 failed and 1 succeeded", j.Status)
	}
	if n := len(h.pods("retry")); n != 2 {
		t.Errorf("got %d pods, want the failed one kept next to the one that succeeded", n)
	}
}

func TestOnFailureRestartsCountTowardBackoffLimit(t *testing.T) {
	h := start(t)
	job := newJob("restarts", nil, nil)
	job.Spec.BackoffLimit = ptr.To[int32](2)
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	h.create(job)
	p := h.waitRunning("restarts", 1)[0]
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "work", RestartCount: 2,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	if _, err := h.cs.CoreV1().Pods("default").UpdateStatus(h.ctx, &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitJob("restarts", finishedWith(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	if n := len(h.pods("restarts")); n != 0 {
		t.Errorf("got %d pods, want the restarting pod deleted", n)
	}
}

func TestLostPodsAreReplacedWithoutCountingAsFailed(t *testing.T) {
	cases := []struct {
		name string
		lose func(h *harness, p corev1.Pod)
	}{
		{"deleted while running", func(h *harness, p corev1.Pod) {
			if err := h.cs.CoreV1().Pods("default").Delete(h.ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"deleted on its node", func(h *harness, p corev1.Pod) {
			pods := h.cs.CoreV1().Pods("default")
			err := pods.Bind(h.ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, UID: p.UID}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{})
			if err != nil {
				h.t.Fatal(err)
			}
			// A graceful delete, then the agent's final one once the
			// containers stopped.
			if err := pods.Delete(h.ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				h.t.Fatal(err)
			}
			if err := pods.Delete(h.ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
				h.t.Fatal(err)
			}
		}},
		{"evicted", func(h *harness, p corev1.Pod) { h.finish(p, corev1.PodFailed, "Evicted") }},
		{"node lost", func(h *harness, p corev1.Pod) { h.finish(p, corev1.PodFailed, "NodeLost") }},
		{"disruption condition", func(h *harness, p corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager"})
			h.finish(p, corev1.PodFailed, "")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			job := newJob("lost", ptr.To[int32](1), nil)
			job.Spec.BackoffLimit = ptr.To[int32](0)
			h.create(job)
			first := h.waitRunning("lost", 1)[0]
			tc.lose(h, first)
			// Replaced at once: no failure, so no back-off.
			var second corev1.Pod
			testutil.Eventually(t, wait, func() string {
				pods := h.running("lost")
				if len(pods) != 1 || pods[0].UID == first.UID {
					return fmt.Sprintf("%d running pods, want 1 replacement", len(pods))
				}
				second = pods[0]
				return ""
			})
			h.finish(second, corev1.PodSucceeded, "")
			j := h.waitJob("lost", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
			if j.Status.Failed != 0 || j.Status.Succeeded != 1 {
				t.Errorf("got status %+v, want 0 failed (backoffLimit 0 not reached) and 1 succeeded", j.Status)
			}
			// The lost pod is not held by the tracking finalizer: it is
			// gone if it was deleted, kept without finalizers if it failed.
			got, err := h.cs.CoreV1().Pods("default").Get(h.ctx, first.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				t.Fatal(err)
			case got.DeletionTimestamp != nil || len(got.Finalizers) != 0:
				t.Errorf("lost pod: deletionTimestamp %v finalizers %v, want it gone or kept without finalizers", got.DeletionTimestamp, got.Finalizers)
			}
		})
	}
}

func TestIndexedJob(t *testing.T) {
	h := start(t)
	job := newJob("indexed", ptr.To[int32](4), ptr.To[int32](2))
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	h.create(job)
	seen := map[string]int{}
	failedOnce := false
	for len(seen) < 4 {
		var pods []corev1.Pod
		testutil.Eventually(t, wait, func() string {
			pods = h.running("indexed")
			if want := min(2, 4-len(seen)); len(pods) != want {
				return fmt.Sprintf("%d running pods, want %d", len(pods), want)
			}
			return ""
		})
		for _, p := range pods {
			ix := p.Annotations["batch.kubernetes.io/job-completion-index"]
			if p.Labels["batch.kubernetes.io/job-completion-index"] != ix {
				t.Errorf("pod %s: index label %q, annotation %q", p.Name, p.Labels["batch.kubernetes.io/job-completion-index"], ix)
			}
			if p.Spec.Hostname != "indexed-"+ix || !strings.HasPrefix(p.Name, "indexed-"+ix+"-") {
				t.Errorf("pod %s: hostname %q, want indexed-%s", p.Name, p.Spec.Hostname, ix)
			}
			env := p.Spec.Containers[0].Env
			if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil ||
				env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("pod %s: env %+v, want JOB_COMPLETION_INDEX from the index annotation", p.Name, env)
			}
		}
		p := pods[0]
		ix := p.Annotations["batch.kubernetes.io/job-completion-index"]
		if ix == "2" && !failedOnce {
			// A failed index runs again.
			failedOnce = true
			h.finish(p, corev1.PodFailed, "Error")
			h.clk.Step(time.Minute)
			continue
		}
		if _, dup := seen[ix]; dup {
			t.Fatalf("index %s ran again after it succeeded", ix)
		}
		seen[ix]++
		h.finish(p, corev1.PodSucceeded, "")
	}
	j := h.waitJob("indexed", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	if j.Status.CompletedIndexes != "0-3" || j.Status.Succeeded != 4 || j.Status.Failed != 1 {
		t.Errorf("got completedIndexes %q succeeded %d failed %d, want 0-3, 4, 1", j.Status.CompletedIndexes, j.Status.Succeeded, j.Status.Failed)
	}
}

func TestActiveDeadline(t *testing.T) {
	h := start(t)
	job := newJob("slow", ptr.To[int32](1), nil)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	h.create(job)
	h.waitRunning("slow", 1)
	h.waitJob("slow", func(j *batchv1.Job) string {
		if j.Status.StartTime == nil {
			return "no startTime yet"
		}
		return ""
	})
	h.clk.Step(30 * time.Second)
	if j := h.job("slow"); condition(j, batchv1.JobFailed) != nil {
		t.Fatalf("got Failed before the deadline: %+v", j.Status.Conditions)
	}
	h.clk.Step(30 * time.Second)
	h.stepUntil(func() string {
		return finishedWith(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)(h.job("slow"))
	})
	j := h.job("slow")
	if j.Status.Active != 0 {
		t.Errorf("got active %d, want 0", j.Status.Active)
	}
	if n := len(h.pods("slow")); n != 0 {
		t.Errorf("got %d pods, want the running pod deleted", n)
	}
	h.waitEvent("slow", "DeadlineExceeded")
}

func TestSuspendAndResume(t *testing.T) {
	h := start(t)
	job := newJob("paused", ptr.To[int32](2), ptr.To[int32](2))
	job.Spec.Suspend = ptr.To(true)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](100)
	h.create(job)
	h.waitJob("paused", func(j *batchv1.Job) string {
		c := condition(j, batchv1.JobSuspended)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "JobSuspended" {
			return fmt.Sprintf("got conditions %+v, want Suspended", j.Status.Conditions)
		}
		if j.Status.StartTime != nil {
			return "a suspended Job has a startTime"
		}
		return ""
	})
	h.waitEvent("paused", "Suspended")
	if n := len(h.pods("paused")); n != 0 {
		t.Fatalf("got %d pods for a suspended Job, want none", n)
	}
	// The deadline does not run while suspended.
	h.clk.Step(200 * time.Second)

	setSuspend := func(v bool) {
		t.Helper()
		testutil.Eventually(t, wait, func() string {
			j := h.job("paused")
			j.Spec.Suspend = ptr.To(v)
			if _, err := h.cs.BatchV1().Jobs("default").Update(h.ctx, j, metav1.UpdateOptions{}); err != nil {
				return err.Error() // a conflict with the controller's status write
			}
			return ""
		})
	}
	setSuspend(false)
	h.waitRunning("paused", 2)
	j := h.waitJob("paused", func(j *batchv1.Job) string {
		c := condition(j, batchv1.JobSuspended)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "JobResumed" || j.Status.StartTime == nil {
			return fmt.Sprintf("got conditions %+v, startTime %v, want resumed with a startTime", j.Status.Conditions, j.Status.StartTime)
		}
		return ""
	})
	if !j.Status.StartTime.Time.After(h.clk.Now().Add(-time.Second)) {
		t.Errorf("got startTime %v, want the resume time %v", j.Status.StartTime, h.clk.Now())
	}
	h.waitEvent("paused", "Resumed")

	setSuspend(true)
	h.waitRunning("paused", 0)
	h.waitJob("paused", func(j *batchv1.Job) string {
		c := condition(j, batchv1.JobSuspended)
		if c == nil || c.Status != corev1.ConditionTrue || j.Status.Active != 0 {
			return fmt.Sprintf("got conditions %+v active %d, want Suspended and nothing active", j.Status.Conditions, j.Status.Active)
		}
		if j.Status.Failed != 0 {
			return fmt.Sprintf("got failed %d, want pods deleted by suspend not counted", j.Status.Failed)
		}
		return ""
	})
	testutil.Eventually(t, wait, func() string {
		if n := len(h.pods("paused")); n != 0 {
			return fmt.Sprintf("%d pods left", n)
		}
		return ""
	})
	setSuspend(false)
	pods := h.waitRunning("paused", 2)
	for _, p := range pods {
		h.finish(p, corev1.PodSucceeded, "")
	}
	h.waitJob("paused", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
}

func TestTTLAfterFinishedDeletesTheJob(t *testing.T) {
	h := start(t)
	job := newJob("shortlived", ptr.To[int32](1), nil)
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](30)
	h.create(job)
	h.finish(h.waitRunning("shortlived", 1)[0], corev1.PodSucceeded, "")
	h.waitJob("shortlived", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	h.clk.Step(10 * time.Second)
	if _, err := h.cs.BatchV1().Jobs("default").Get(h.ctx, "shortlived", metav1.GetOptions{}); err != nil {
		t.Fatalf("got %v before the TTL ran out, want the Job kept", err)
	}
	h.clk.Step(20 * time.Second)
	h.stepUntil(func() string {
		_, err := h.cs.BatchV1().Jobs("default").Get(h.ctx, "shortlived", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Sprintf("job still there (%v)", err)
		}
		return ""
	})
}

func TestFinalizerOfOrphanedPodIsRemoved(t *testing.T) {
	h := start(t)
	h.create(newJob("orphaning", ptr.To[int32](1), nil))
	p := h.waitRunning("orphaning", 1)[0]
	if !slices.Contains(p.Finalizers, "batch.kubernetes.io/job-tracking") {
		t.Fatalf("got finalizers %v, want the tracking finalizer on a running pod", p.Finalizers)
	}
	orphan := metav1.DeletePropagationOrphan
	if err := h.cs.BatchV1().Jobs("default").Delete(h.ctx, "orphaning", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	// The orphan finalizer keeps the Job until a garbage collector acts;
	// drop it as one would.
	testutil.Eventually(t, wait, func() string {
		j, err := h.cs.BatchV1().Jobs("default").Get(h.ctx, "orphaning", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ""
		}
		if err != nil {
			return err.Error()
		}
		j.Finalizers = nil
		if _, err := h.cs.BatchV1().Jobs("default").Update(h.ctx, j, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return "job still there"
	})
	testutil.Eventually(t, wait, func() string {
		got, err := h.cs.CoreV1().Pods("default").Get(h.ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(got.Finalizers) != 0 {
			return fmt.Sprintf("pod still has finalizers %v", got.Finalizers)
		}
		return ""
	})
}

func TestIntervals(t *testing.T) {
	cases := []struct {
		in          string
		completions int
		add         []int
		want        string
		total       int
	}{
		{"", 10, nil, "", 0},
		{"", 10, []int{3, 1, 2}, "1-3", 3},
		{"0-2,4", 10, nil, "0-2,4", 4},
		{"0,1", 10, nil, "0,1", 2},
		{"0-2,4", 10, []int{3}, "0-4", 5},
		{"5,7", 10, []int{6}, "5-7", 3},
		{"1-3,x,9-7,-1,12", 10, nil, "1-3", 3},
		{"0-20", 5, nil, "0-4", 5},
		{"8", 10, []int{0, 9}, "0,8,9", 3},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			x := parseIntervals(tc.in, tc.completions)
			for _, ix := range tc.add {
				x = x.add(ix)
			}
			if got := x.String(); got != tc.want || x.total() != tc.total {
				t.Errorf("got %q (%d), want %q (%d)", got, x.total(), tc.want, tc.total)
			}
		})
	}
	done := parseIntervals("0-1,3", 6)
	if got := pendingIndexes(10, 6, done, map[int]bool{4: true}); !slices.Equal(got, []int{2, 5}) {
		t.Errorf("got pending %v, want [2 5]", got)
	}
}

// A controller that stopped anywhere between recording a finished pod,
// removing its finalizer and counting it leaves state that its successor
// counts exactly once.
func TestCountsExactlyOnceAcrossRestarts(t *testing.T) {
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &harness{t: t, ctx: ctx, cs: env.Client, clk: clocktesting.NewFakeClock(time.Now())}
	stop := h.run()
	h.create(newJob("resumed", ptr.To[int32](4), ptr.To[int32](4)))
	pods := h.waitRunning("resumed", 4)
	h.finish(pods[0], corev1.PodSucceeded, "")
	h.waitJob("resumed", func(j *batchv1.Job) string {
		if j.Status.Succeeded != 1 {
			return fmt.Sprintf("got succeeded %d, want 1", j.Status.Succeeded)
		}
		return ""
	})
	stop()

	// pods[1]: recorded as uncounted, finalizer still on (stopped after
	// the first status write). pods[2]: recorded, finalizer gone (stopped
	// before the counters moved). pods[3]: finished while no controller ran.
	for _, p := range pods[1:] {
		h.finish(*h.get(p.Name), corev1.PodSucceeded, "")
	}
	if err := removeTrackingFinalizer(ctx, h.cs, &pods[2]); err != nil {
		t.Fatal(err)
	}
	j := h.job("resumed")
	j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{pods[1].UID, pods[2].UID}}
	if _, err := h.cs.BatchV1().Jobs("default").UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	defer h.run()()
	j = h.waitJob("resumed", finishedWith(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	if j.Status.Succeeded != 4 || j.Status.Failed != 0 {
		t.Errorf("got succeeded %d failed %d, want 4 and 0", j.Status.Succeeded, j.Status.Failed)
	}
	if u := j.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		t.Errorf("got uncounted %+v, want none", u)
	}
}

func (h *harness) get(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.cs.CoreV1().Pods("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}
