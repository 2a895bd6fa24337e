package main

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"
)

// replicas is a spec replica count, which defaults to one.
func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func selectorCell(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	return orNone(metav1.FormatLabelSelector(s))
}

func deploymentRow(d *appsv1.Deployment, now time.Time) (cells, wide []string) {
	cells = []string{
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas)),
		itoa(d.Status.UpdatedReplicas),
		itoa(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
	}
	containers, images := podTemplateColumns(&d.Spec.Template.Spec)
	return cells, []string{containers, images, selectorCell(d.Spec.Selector)}
}

func replicaSetRow(rs *appsv1.ReplicaSet, now time.Time) (cells, wide []string) {
	cells = []string{itoa(replicas(rs.Spec.Replicas)), itoa(rs.Status.Replicas), itoa(rs.Status.ReadyReplicas), age(rs.CreationTimestamp, now)}
	containers, images := podTemplateColumns(&rs.Spec.Template.Spec)
	return cells, []string{containers, images, selectorCell(rs.Spec.Selector)}
}

func replicationControllerRow(rc *corev1.ReplicationController, now time.Time) (cells, wide []string) {
	cells = []string{itoa(replicas(rc.Spec.Replicas)), itoa(rc.Status.Replicas), itoa(rc.Status.ReadyReplicas), age(rc.CreationTimestamp, now)}
	containers, images := "<none>", "<none>"
	if rc.Spec.Template != nil {
		containers, images = podTemplateColumns(&rc.Spec.Template.Spec)
	}
	return cells, []string{containers, images, labels.FormatLabels(rc.Spec.Selector)}
}

func daemonSetRow(ds *appsv1.DaemonSet, now time.Time) (cells, wide []string) {
	st := ds.Status
	cells = []string{
		itoa(st.DesiredNumberScheduled), itoa(st.CurrentNumberScheduled), itoa(st.NumberReady),
		itoa(st.UpdatedNumberScheduled), itoa(st.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector), age(ds.CreationTimestamp, now),
	}
	containers, images := podTemplateColumns(&ds.Spec.Template.Spec)
	return cells, []string{containers, images, selectorCell(ds.Spec.Selector)}
}

func statefulSetRow(s *appsv1.StatefulSet, now time.Time) (cells, wide []string) {
	cells = []string{fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, replicas(s.Spec.Replicas)), age(s.CreationTimestamp, now)}
	containers, images := podTemplateColumns(&s.Spec.Template.Spec)
	return cells, []string{containers, images}
}

func jobRow(j *batchv1.Job, now time.Time) (cells, wide []string) {
	cells = []string{jobStatus(j), jobCompletions(j), jobDuration(j, now), age(j.CreationTimestamp, now)}
	containers, images := podTemplateColumns(&j.Spec.Template.Spec)
	return cells, []string{containers, images, selectorCell(j.Spec.Selector)}
}

// jobStatus names the job's state from its conditions, the first of
// Complete, Failed, Suspended that is true; Terminating while deleted;
// else Running.
func jobStatus(j *batchv1.Job) string {
	if j.DeletionTimestamp != nil {
		return "Terminating"
	}
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed, batchv1.JobSuspended, batchv1.JobFailureTarget, batchv1.JobSuccessCriteriaMet} {
		if has(t) {
			return string(t)
		}
	}
	return "Running"
}

// jobCompletions is succeeded/wanted; a job without a completion count is
// done after one success, and runs parallelism pods at a time.
func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if p := j.Spec.Parallelism; p != nil && *p > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *p)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDuration is how long the job ran, or has been running.
func jobDuration(j *batchv1.Job, now time.Time) string {
	if j.Status.StartTime == nil {
		return ""
	}
	end := now
	if j.Status.CompletionTime != nil {
		end = j.Status.CompletionTime.Time
	}
	return duration.HumanDuration(end.Sub(j.Status.StartTime.Time))
}

func cronJobRow(cj *batchv1.CronJob, now time.Time) (cells, wide []string) {
	tz := "<none>"
	if cj.Spec.TimeZone != nil && *cj.Spec.TimeZone != "" {
		tz = *cj.Spec.TimeZone
	}
	suspend := "False"
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		suspend = "True"
	}
	last := "<none>"
	if cj.Status.LastScheduleTime != nil {
		last = age(*cj.Status.LastScheduleTime, now)
	}
	cells = []string{cj.Spec.Schedule, tz, suspend, strconv.Itoa(len(cj.Status.Active)), last, age(cj.CreationTimestamp, now)}
	containers, images := podTemplateColumns(&cj.Spec.JobTemplate.Spec.Template.Spec)
	return cells, []string{containers, images, selectorCell(cj.Spec.JobTemplate.Spec.Selector)}
}
