package cronjob

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller/job"
)

const wait = 20 * time.Second

// harness is a CronJob controller on a fresh API server with a fake
// clock. There is no Job controller: the test finishes Jobs itself.
type harness struct {
	t   *testing.T
	ctx context.Context
	cs  kubernetes.Interface
	clk *clocktesting.FakeClock
}

func start(t *testing.T) *harness {
	return startWith(t, false)
}

// startWith starts the CronJob controller and, with jobs, the Job
// controller on the same informers and clock.
func startWith(t *testing.T, jobs bool) *harness {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	clk := clocktesting.NewFakeClock(time.Now())
	runs := []func(context.Context) error{New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard, Clock: clk}).Run}
	if jobs {
		runs = append(runs, job.New(job.Deps{Client: env.Client, Informers: f, Logger: logging.Discard, Clock: clk}).Run)
	}
	f.Start(ctx.Done())
	done := make(chan struct{}, len(runs))
	for _, run := range runs {
		go func() {
			_ = run(ctx)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range runs {
			<-done
		}
		f.Shutdown()
	})
	return &harness{t: t, ctx: ctx, cs: env.Client, clk: clk}
}

func newCronJob(name, schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "ops"}, Annotations: map[string]string{"note": "nightly"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers:    []corev1.Container{{Name: "work", Image: "orch/busybox:dev"}},
				}}},
			},
		},
	}
}

// create makes cj and returns it with the schedule times after its
// creation, in order.
func (h *harness) create(cj *batchv1.CronJob) (*batchv1.CronJob, func(n int) time.Time) {
	h.t.Helper()
	out, err := h.cs.BatchV1().CronJobs("default").Create(h.ctx, cj, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	spec := out.Spec.Schedule
	if tz := out.Spec.TimeZone; tz != nil {
		spec = "TZ=" + *tz + " " + spec
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		h.t.Fatal(err)
	}
	slot := func(n int) time.Time {
		t := out.CreationTimestamp.Time
		for range n {
			t = sched.Next(t)
		}
		return t
	}
	return out, slot
}

// at moves the fake clock to t.
func (h *harness) at(t time.Time) { h.clk.SetTime(t) }

// jobs lists the Jobs of CronJob name by name.
func (h *harness) jobs(name string) []batchv1.Job {
	h.t.Helper()
	l, err := h.cs.BatchV1().Jobs("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []batchv1.Job
	for _, j := range l.Items {
		if strings.HasPrefix(j.Name, name+"-") {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func jobNameAt(cj string, t time.Time) string {
	return cj + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

// waitJobs waits until CronJob name has exactly the Jobs names.
func (h *harness) waitJobs(name string, names ...string) {
	h.t.Helper()
	testutil.Eventually(h.t, wait, func() string {
		var got []string
		for _, j := range h.jobs(name) {
			got = append(got, j.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(names) {
			return fmt.Sprintf("got jobs %v, want %v", got, names)
		}
		return ""
	})
}

// waitCronJob waits until check accepts CronJob name.
func (h *harness) waitCronJob(name string, check func(*batchv1.CronJob) string) *batchv1.CronJob {
	h.t.Helper()
	var cj *batchv1.CronJob
	testutil.Eventually(h.t, wait, func() string {
		var err error
		if cj, err = h.cs.BatchV1().CronJobs("default").Get(h.ctx, name, metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return check(cj)
	})
	return cj
}

func activeNames(cj *batchv1.CronJob) []string {
	var out []string
	for _, r := range cj.Status.Active {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// waitActive waits until CronJob name lists exactly the Jobs names as
// active.
func (h *harness) waitActive(name string, names ...string) *batchv1.CronJob {
	h.t.Helper()
	return h.waitCronJob(name, func(cj *batchv1.CronJob) string {
		if got := activeNames(cj); fmt.Sprint(got) != fmt.Sprint(names) {
			return fmt.Sprintf("got active %v, want %v", got, names)
		}
		return ""
	})
}

// finish plays the Job controller: Job name ends with condition t.
func (h *harness) finish(name string, t batchv1.JobConditionType, started time.Time) {
	h.t.Helper()
	testutil.Eventually(h.t, wait, func() string {
		j, err := h.cs.BatchV1().Jobs("default").Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		now := metav1.NewTime(h.clk.Now())
		j.Status.StartTime = ptr.To(metav1.NewTime(started))
		j.Status.Conditions = []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		if t == batchv1.JobComplete {
			j.Status.CompletionTime = &now
		}
		if _, err := h.cs.BatchV1().Jobs("default").UpdateStatus(h.ctx, j, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

// waitEvent waits for an event with reason on CronJob name and returns
// its message.
func (h *harness) waitEvent(name, reason string) string {
	h.t.Helper()
	var msg string
	testutil.Eventually(h.t, wait, func() string {
		l, err := h.cs.CoreV1().Events("default").List(h.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil {
			return err.Error()
		}
		if len(l.Items) == 0 {
			return "no " + reason + " event on " + name
		}
		msg = l.Items[0].Message
		return ""
	})
	return msg
}

func TestRunsAtTheScheduleTime(t *testing.T) {
	h := start(t)
	cj, slot := h.create(newCronJob("tick", "*/5 * * * *"))
	first := slot(1)
	if first.Minute()%5 != 0 || first.Second() != 0 {
		t.Fatalf("bad first schedule time %v", first)
	}
	h.at(first.Add(2 * time.Second))
	name := jobNameAt("tick", first)
	h.waitJobs("tick", name)
	j := h.jobs("tick")[0]
	if ref := metav1.GetControllerOf(&j); ref == nil || ref.UID != cj.UID || ref.Kind != "CronJob" {
		t.Errorf("got controller %v, want the CronJob", ref)
	}
	if got, want := j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"], first.UTC().Format(time.RFC3339); got != want {
		t.Errorf("got scheduled-timestamp %q, want %q", got, want)
	}
	if j.Labels["team"] != "ops" || j.Annotations["note"] != "nightly" {
		t.Errorf("got labels %v annotations %v, want the jobTemplate's", j.Labels, j.Annotations)
	}
	if j.Spec.Template.Spec.Containers[0].Image != "orch/busybox:dev" {
		t.Errorf("got template %+v, want the jobTemplate's", j.Spec.Template.Spec)
	}
	got := h.waitActive("tick", name)
	if got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(first) {
		t.Errorf("got lastScheduleTime %v, want %v", got.Status.LastScheduleTime, first)
	}
	if msg := h.waitEvent("tick", "SuccessfulCreate"); msg != "Created job "+name {
		t.Errorf("got event %q", msg)
	}

	h.finish(name, batchv1.JobComplete, first)
	got = h.waitActive("tick")
	if got.Status.LastSuccessfulTime == nil {
		t.Errorf("got no lastSuccessfulTime after a Job completed")
	}
	h.waitEvent("tick", "SawCompletedJob")

	// The next run comes at the next schedule time.
	second := slot(2)
	if second.Sub(first) != 5*time.Minute {
		t.Fatalf("got second time %v, want 5 minutes after %v", second, first)
	}
	h.at(second.Add(time.Second))
	h.waitJobs("tick", name, jobNameAt("tick", second))
}

func TestConcurrencyPolicy(t *testing.T) {
	cases := []struct {
		policy     batchv1.ConcurrencyPolicy
		wantJobs   func(first, second string) []string
		wantActive func(first, second string) []string
		wantEvent  string
	}{
		{batchv1.AllowConcurrent, func(a, b string) []string { return []string{a, b} }, func(a, b string) []string { return []string{a, b} }, "SuccessfulCreate"},
		{batchv1.ForbidConcurrent, func(a, b string) []string { return []string{a} }, func(a, b string) []string { return []string{a} }, "JobAlreadyActive"},
		{batchv1.ReplaceConcurrent, func(a, b string) []string { return []string{b} }, func(a, b string) []string { return []string{b} }, "SuccessfulDelete"},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			h := start(t)
			cj := newCronJob("overlap", "* * * * *")
			cj.Spec.ConcurrencyPolicy = tc.policy
			_, slot := h.create(cj)
			a, b := jobNameAt("overlap", slot(1)), jobNameAt("overlap", slot(2))
			h.at(slot(1).Add(time.Second))
			h.waitActive("overlap", a)
			// The first Job still runs at the second time.
			h.at(slot(2).Add(time.Second))
			h.waitEvent("overlap", tc.wantEvent)
			h.waitActive("overlap", tc.wantActive(a, b)...)
			h.waitJobs("overlap", tc.wantJobs(a, b)...)
			if tc.policy == batchv1.ForbidConcurrent {
				// As in Kubernetes, the skipped time runs once the Job
				// before it finished (no startingDeadlineSeconds).
				h.finish(a, batchv1.JobComplete, slot(1))
				h.waitJobs("overlap", a, b)
				h.waitActive("overlap", b)
			}
		})
	}
}

func TestStartingDeadlineSkipsLateRuns(t *testing.T) {
	h := start(t)
	cj := newCronJob("hourly", "0 * * * *")
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](30)
	_, slot := h.create(cj)
	h.at(slot(1).Add(2 * time.Minute))
	msg := h.waitEvent("hourly", "MissSchedule")
	if !strings.Contains(msg, slot(1).UTC().Format(time.RFC1123Z)) {
		t.Errorf("got event %q, want it to name %v", msg, slot(1))
	}
	// Within the deadline, the next time runs.
	h.at(slot(2).Add(10 * time.Second))
	h.waitJobs("hourly", jobNameAt("hourly", slot(2)))
}

func TestTooManyMissedTimesStartsOnlyTheLatest(t *testing.T) {
	h := start(t)
	_, slot := h.create(newCronJob("minutely", "* * * * *"))
	h.at(slot(180).Add(30 * time.Second))
	msg := h.waitEvent("minutely", "TooManyMissedTimes")
	if !strings.Contains(msg, "too many missed start times: 180") {
		t.Errorf("got event %q, want 180 missed times", msg)
	}
	h.waitJobs("minutely", jobNameAt("minutely", slot(180)))
}

func TestHistoryLimits(t *testing.T) {
	h := start(t)
	cj := newCronJob("history", "* * * * *")
	cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](2)
	cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1)
	_, slot := h.create(cj)
	outcomes := []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed, batchv1.JobComplete, batchv1.JobFailed, batchv1.JobComplete}
	for i, outcome := range outcomes {
		n := i + 1
		name := jobNameAt("history", slot(n))
		h.at(slot(n).Add(time.Second))
		h.waitActive("history", name)
		h.finish(name, outcome, slot(n))
		h.waitActive("history")
	}
	// Kept: the 2 newest successes (runs 3 and 5) and the newest failure
	// (run 4).
	h.waitJobs("history", jobNameAt("history", slot(3)), jobNameAt("history", slot(4)), jobNameAt("history", slot(5)))
	if msg := h.waitEvent("history", "SuccessfulDelete"); !strings.HasPrefix(msg, "Deleted job history-") {
		t.Errorf("got event %q", msg)
	}
}

func TestTimeZone(t *testing.T) {
	h := start(t)
	cj := newCronJob("tokyo", "0 9 * * *")
	cj.Spec.TimeZone = ptr.To("Asia/Tokyo")
	_, slot := h.create(cj)
	first := slot(1)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if got := first.In(tokyo); got.Hour() != 9 || got.Minute() != 0 {
		t.Fatalf("bad first schedule time %v", got)
	}
	if first.UTC().Hour() != 0 {
		t.Fatalf("got %v, want 09:00 in Tokyo to be 00:00 UTC", first.UTC())
	}
	h.at(first.Add(time.Second))
	name := jobNameAt("tokyo", first)
	h.waitJobs("tokyo", name)
	j := h.jobs("tokyo")[0]
	if got := j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]; !strings.HasSuffix(got, "T09:00:00+09:00") {
		t.Errorf("got scheduled-timestamp %q, want 09:00 Tokyo time", got)
	}
}

func TestSuspendedCronJobStartsNothing(t *testing.T) {
	h := start(t)
	cj := newCronJob("held", "* * * * *")
	cj.Spec.Suspend = ptr.To(true)
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](120)
	_, slot := h.create(cj)
	h.at(slot(1).Add(time.Second))
	// Resuming after the deadline passed starts only what is still due.
	testutil.Eventually(t, wait, func() string {
		cur, err := h.cs.BatchV1().CronJobs("default").Get(h.ctx, "held", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		cur.Spec.Suspend = ptr.To(false)
		if _, err := h.cs.BatchV1().CronJobs("default").Update(h.ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
	h.waitJobs("held", jobNameAt("held", slot(1)))
}

func TestMissingActiveJobIsDropped(t *testing.T) {
	h := start(t)
	_, slot := h.create(newCronJob("vanish", "* * * * *"))
	name := jobNameAt("vanish", slot(1))
	h.at(slot(1).Add(time.Second))
	h.waitActive("vanish", name)
	if err := h.cs.BatchV1().Jobs("default").Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	h.waitActive("vanish")
}

func TestMostRecent(t *testing.T) {
	base := time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC) // a Monday
	cases := []struct {
		name     string
		schedule string
		earliest time.Time
		now      time.Time
		want     time.Time
		missed   int64
	}{
		{"none yet", "*/5 * * * *", base, base.Add(4 * time.Minute), time.Time{}, 0},
		{"one", "*/5 * * * *", base, base.Add(5 * time.Minute), time.Date(2026, 3, 2, 10, 5, 0, 0, time.UTC), 1},
		{"several", "*/5 * * * *", base, base.Add(22 * time.Minute), time.Date(2026, 3, 2, 10, 20, 0, 0, time.UTC), 4},
		{"hourly descriptor", "@hourly", base, base.Add(3 * time.Hour), time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC), 3},
		{"every", "@every 90m", base, base.Add(4 * time.Hour), base.Add(3 * time.Hour), 2},
		{"irregular days", "0 9 * * 1,5", base, base.Add(10 * 24 * time.Hour), time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC), 2},
		{"a year of minutes", "* * * * *", base, base.Add(365 * 24 * time.Hour), base.Add(365 * 24 * time.Hour).Truncate(time.Minute), 525600},
		{"never", "0 0 30 2 *", base, base.Add(5 * 365 * 24 * time.Hour), time.Time{}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sched, err := cron.ParseStandard(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			got, missed, err := mostRecent(sched, tc.earliest, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) || missed != tc.missed {
				t.Errorf("got %v (%d missed), want %v (%d)", got, missed, tc.want, tc.missed)
			}
		})
	}
}

func TestWithTheJobController(t *testing.T) {
	h := startWith(t, true)
	_, slot := h.create(newCronJob("real", "* * * * *"))
	name := jobNameAt("real", slot(1))
	h.at(slot(1).Add(time.Second))
	h.waitActive("real", name)
	var pod corev1.Pod
	testutil.Eventually(t, wait, func() string {
		l, err := h.cs.CoreV1().Pods("default").List(h.ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
		if err != nil {
			return err.Error()
		}
		if len(l.Items) != 1 {
			return fmt.Sprintf("%d pods for %s, want 1", len(l.Items), name)
		}
		pod = l.Items[0]
		return ""
	})
	pod.Status.Phase = corev1.PodSucceeded
	if _, err := h.cs.CoreV1().Pods("default").UpdateStatus(h.ctx, &pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cj := h.waitActive("real")
	if cj.Status.LastSuccessfulTime == nil {
		t.Errorf("got no lastSuccessfulTime after the Job completed")
	}
	h.waitEvent("real", "SawCompletedJob")
}
