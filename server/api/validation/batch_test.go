package validation

import (
	"strings"
	"testing"
	// Time zone checks must not depend on the zoneinfo of the test host.
	_ "time/tzdata"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateJob(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validJob()},
		{name: "indexed", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr[int32](10)
			j.Spec.Parallelism = ptr[int32](3)
		})},
		{name: "restart policy not chosen", obj: jobWith(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			want: []string{"spec.template.spec.restartPolicy"}},
		{name: "restart policy Always", obj: jobWith(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }),
			want: []string{"spec.template.spec.restartPolicy"}},
		{name: "selector missing", obj: jobWith(func(j *batchv1.Job) { j.Spec.Selector = nil }),
			want: []string{"spec.selector"}},
		{name: "selector misses the template", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "other"}}
		}), want: []string{"spec.template.metadata.labels"}},
		{name: "negative numbers", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Parallelism = ptr[int32](-1)
			j.Spec.Completions = ptr[int32](-1)
			j.Spec.BackoffLimit = ptr[int32](-1)
			j.Spec.TTLSecondsAfterFinished = ptr[int32](-1)
			j.Spec.ActiveDeadlineSeconds = ptr[int64](0)
		}), want: []string{
			"spec.parallelism", "spec.completions", "spec.backoffLimit", "spec.ttlSecondsAfterFinished", "spec.activeDeadlineSeconds",
		}},
		{name: "unknown completion mode", obj: jobWith(func(j *batchv1.Job) { j.Spec.CompletionMode = ptr[batchv1.CompletionMode]("Sharded") }),
			want: []string{"spec.completionMode"}},
		{name: "indexed without completions", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptr[int32](2)
		}), want: []string{"spec.completions"}},
		{name: "per-index backoff on a non-indexed job", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.BackoffLimitPerIndex = ptr[int32](1)
		}), want: []string{"spec.backoffLimitPerIndex"}},
		{name: "update: parallelism and suspend", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Completions = ptr[int32](1) // as stored
			j.Spec.Parallelism = ptr[int32](4)
			j.Spec.Suspend = ptr(true)
		}), old: validJob()},
		{name: "update: template of a running job", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].Image = "perl:6"
		}), old: validJob(), want: []string{"spec.template"}},
		{name: "update: template of a suspended job", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Suspend = ptr(true)
			j.Spec.Template.Spec.Containers[0].Image = "perl:6"
		}), old: jobWith(func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) })},
		{name: "update: selector, completion mode and completions", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "0b7c4a58-5a58-4b7e-9c53-ec7e5a8b2f11", "x": "y"}}
			j.Spec.Template.Labels = map[string]string{"batch.kubernetes.io/controller-uid": "0b7c4a58-5a58-4b7e-9c53-ec7e5a8b2f11", "x": "y"}
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr[int32](3)
			j.Spec.Suspend = ptr(true)
		}), old: jobWith(func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) }),
			want: []string{"spec.selector", "spec.completionMode", "spec.completions"}},
		{name: "update: indexed job scaled", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr[int32](6)
			j.Spec.Parallelism = ptr[int32](6)
		}), old: jobWith(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr[int32](3)
			j.Spec.Parallelism = ptr[int32](3)
		})},
	})
}

func TestValidateCronJob(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validCronJob()},
		{name: "descriptor and time zone", obj: cronJobWith(func(cj *batchv1.CronJob) {
			cj.Spec.Schedule = "@hourly"
			cj.Spec.TimeZone = ptr("Europe/Berlin")
		})},
		{name: "named months and days", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0 3 * JAN-MAR MON-FRI" })},
		{name: "name too long for its jobs", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("a", 53) }),
			want: []string{"metadata.name"}},
		{name: "schedule missing", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "" }),
			want: []string{"spec.schedule"}},
		{name: "schedule out of range", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "61 * * * *" }),
			want: []string{"spec.schedule"}},
		{name: "schedule with seconds", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0 */5 * * * *" }),
			want: []string{"spec.schedule"}},
		{name: "time zone in the schedule", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" }),
			want: []string{"spec.schedule"}},
		{name: "bare TZ prefix", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC" }),
			want: []string{"spec.schedule"}},
		{name: "unknown time zone", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr("Europe/Atlantis") }),
			want: []string{"spec.timeZone"}},
		{name: "time zone as a path", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr("../../etc/passwd") }),
			want: []string{"spec.timeZone"}},
		{name: "local time zone", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr("Local") }),
			want: []string{"spec.timeZone"}},
		{name: "empty time zone", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr("") }),
			want: []string{"spec.timeZone"}},
		{name: "bad policies and limits", obj: cronJobWith(func(cj *batchv1.CronJob) {
			cj.Spec.ConcurrencyPolicy = "Queue"
			cj.Spec.StartingDeadlineSeconds = ptr[int64](-1)
			cj.Spec.SuccessfulJobsHistoryLimit = ptr[int32](-1)
			cj.Spec.FailedJobsHistoryLimit = ptr[int32](-1)
		}), want: []string{
			"spec.concurrencyPolicy", "spec.startingDeadlineSeconds", "spec.successfulJobsHistoryLimit", "spec.failedJobsHistoryLimit",
		}},
		{name: "job template restart policy not chosen", obj: cronJobWith(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
		}), want: []string{"spec.jobTemplate.spec.template.spec.restartPolicy"}},
		{name: "bad job template", obj: cronJobWith(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Labels = map[string]string{"a": "not valid"}
			cj.Spec.JobTemplate.Spec.BackoffLimit = ptr[int32](-1)
			cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Name = ""
		}), want: []string{
			"spec.jobTemplate.metadata.labels",
			"spec.jobTemplate.spec.backoffLimit",
			"spec.jobTemplate.spec.template.spec.containers[0].name",
		}},
		{name: "update: new schedule", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@daily" }), old: validCronJob()},
		{name: "update: broken schedule", obj: cronJobWith(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "every day" }), old: validCronJob(),
			want: []string{"spec.schedule"}},
	})
}

func TestValidateScheduleMessage(t *testing.T) {
	errs := validateSchedule("61 * * * *", specPath.Child("schedule"))
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1", len(errs))
	}
	if got, want := errs[0].Detail, "above maximum (59)"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
	if got, want := errs[0].Detail, "such as \"*/5 * * * *\""; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
}
