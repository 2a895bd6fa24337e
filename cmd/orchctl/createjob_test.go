package main

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

func createCronJob(t *testing.T, env *apitest.Env) *batchv1.CronJob {
	t.Helper()
	cj, err := env.Client.BatchV1().CronJobs("default").Create(context.Background(), &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "ops"}, Annotations: map[string]string{"note": "backup"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "backup", Image: "orch/busybox:dev", Command: []string{"sh", "-c", "echo done"}}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cj
}

func TestCreateJobFromCronJob(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "from cronjob", args: []string{"create", "job", "manual", "--from=cronjob/nightly"}, wantStdout: "job.batch/manual created\n"},
		{name: "short name, flag after a space", args: []string{"create", "job", "--from", "cj/nightly", "manual"}, wantStdout: "job.batch/manual created\n"},
		{name: "no --from", args: []string{"create", "job", "manual"}, wantCode: 1, wantStderr: "create job needs --from=cronjob/CRONJOB"},
		{name: "not a cronjob", args: []string{"create", "job", "manual", "--from=deployment/web"}, wantCode: 1,
			wantStderr: "--from=deployment/web: a job can only be created from a cronjob"},
		{name: "no cronjob name", args: []string{"create", "job", "manual", "--from=cronjob/"}, wantCode: 1, wantStderr: "name the cronjob"},
		{name: "cronjob not found", args: []string{"create", "job", "manual", "--from=cronjob/weekly"}, wantCode: 1, wantStderr: `cronjobs.batch "weekly" not found`},
		{name: "no job name", args: []string{"create", "job", "--from=cronjob/nightly"}, wantCode: 1, wantStderr: "create job takes one NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			cj := createCronJob(t, env)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			if tc.wantCode != 0 {
				return
			}
			job, err := env.Client.BatchV1().Jobs("default").Get(context.Background(), "manual", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if job.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || job.Annotations["note"] != "backup" || job.Labels["team"] != "ops" {
				t.Errorf("got annotations %v labels %v, want instantiate=manual and the jobTemplate's", job.Annotations, job.Labels)
			}
			ref := metav1.GetControllerOf(job)
			if ref == nil || ref.UID != cj.UID || ref.Kind != "CronJob" || ref.APIVersion != "batch/v1" {
				t.Errorf("got controller %+v, want the CronJob", ref)
			}
			if c := job.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Image != "orch/busybox:dev" || job.Spec.Selector == nil {
				t.Errorf("got spec %+v, want the jobTemplate's with a generated selector", job.Spec)
			}
		})
	}
}
