package validation

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// jobTemplate is the pod template rule for Jobs: a pod that succeeded must
// stay done, so the restart policy has to be chosen between OnFailure
// (retry in place) and Never (retry with a new pod).
var jobTemplate = podSpecOptions{
	restartPolicies: []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever},
}

func validateJobCreate(job *batchv1.Job) field.ErrorList {
	errs := validateMetaCreate(&job.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateJobSpec(&job.Spec, specPath, true)...)
}

// validateJobUpdate keeps what identifies a Job's pods fixed while it runs.
// The pod template may change only while the Job is suspended, when no pod
// made from the old template is running.
func validateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	errs := validateMetaUpdate(&job.ObjectMeta, &old.ObjectMeta)
	if !changed(job.Spec, old.Spec) {
		return errs
	}
	spec, oldSpec := &job.Spec, &old.Spec
	errs = append(errs, validateJobSpec(spec, specPath, true)...)
	errs = append(errs, immutableSelector(spec.Selector, oldSpec.Selector)...)
	if changed(spec.CompletionMode, oldSpec.CompletionMode) {
		errs = append(errs, field.Invalid(specPath.Child("completionMode"), ptrString(spec.CompletionMode), "field is immutable"))
	}
	if changed(spec.Completions, oldSpec.Completions) {
		cp := specPath.Child("completions")
		switch {
		case spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion:
			errs = append(errs, field.Invalid(cp, ptrValue(spec.Completions), "field is immutable, except for Indexed jobs"))
		case spec.Completions == nil || spec.Parallelism == nil || *spec.Completions != *spec.Parallelism:
			// An Indexed Job scales by changing both together.
			errs = append(errs, field.Invalid(cp, ptrValue(spec.Completions), "can only be changed together with spec.parallelism, to the same value"))
		}
	}
	suspended := oldSpec.Suspend != nil && *oldSpec.Suspend
	if !suspended && changed(spec.Template, oldSpec.Template) {
		errs = append(errs, field.Forbidden(specPath.Child("template"), "field is immutable while the job is not suspended: suspend it first (spec.suspend: true) or create a new Job"))
	}
	return errs
}

// validateJobSpec checks a Job spec at p. A Job's selector is required (the
// API server generates it when the user does not manage it); a CronJob's
// job template has none, its Jobs get one when they are created.
func validateJobSpec(spec *batchv1.JobSpec, p *field.Path, requireSelector bool) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr32(spec.Parallelism, p.Child("parallelism"))...)
	errs = append(errs, nonNegativePtr32(spec.Completions, p.Child("completions"))...)
	errs = append(errs, nonNegativePtr32(spec.BackoffLimit, p.Child("backoffLimit"))...)
	errs = append(errs, positivePtr64(spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr32(spec.TTLSecondsAfterFinished, p.Child("ttlSecondsAfterFinished"))...)
	errs = append(errs, nonNegativePtr32(spec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, nonNegativePtr32(spec.MaxFailedIndexes, p.Child("maxFailedIndexes"))...)

	indexed := false
	if spec.CompletionMode != nil {
		errs = append(errs, oneOf(*spec.CompletionMode, p.Child("completionMode"), batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		indexed = *spec.CompletionMode == batchv1.IndexedCompletion
	}
	if indexed && spec.Completions == nil {
		errs = append(errs, field.Required(p.Child("completions"), "when completionMode is Indexed: the number of indexes to run"))
	}
	if spec.BackoffLimitPerIndex != nil && !indexed {
		errs = append(errs, field.Forbidden(p.Child("backoffLimitPerIndex"), "may only be set when completionMode is Indexed"))
	}
	if spec.MaxFailedIndexes != nil && spec.BackoffLimitPerIndex == nil {
		errs = append(errs, field.Forbidden(p.Child("maxFailedIndexes"), "may only be set when backoffLimitPerIndex is set"))
	}
	if spec.PodReplacementPolicy != nil {
		errs = append(errs, oneOf(*spec.PodReplacementPolicy, p.Child("podReplacementPolicy"), batchv1.TerminatingOrFailed, batchv1.Failed)...)
	}

	switch {
	case spec.Selector != nil:
		errs = append(errs, validateSelector(spec.Selector, &spec.Template, p, "Job")...)
	case requireSelector:
		errs = append(errs, field.Required(p.Child("selector"), "a label selector matching spec.template.metadata.labels, or leave spec.manualSelector unset to have one generated"))
	}
	errs = append(errs, validatePodTemplate(&spec.Template, p.Child("template"), jobTemplate)...)
	return errs
}

// maxCronJobNameLength keeps the names of the Jobs a CronJob creates, its
// name plus "-" and an 11-digit schedule time, within a 63-character label
// value.
const maxCronJobNameLength = 52

var concurrencyPolicies = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}

func validateCronJobCreate(cj *batchv1.CronJob) field.ErrorList {
	errs := validateMetaCreate(&cj.ObjectMeta, true, nameIsSubdomain)
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	return append(errs, validateCronJobSpec(&cj.Spec)...)
}

func validateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	errs := validateMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta)
	if changed(cj.Spec, old.Spec) {
		errs = append(errs, validateCronJobSpec(&cj.Spec)...)
	}
	return errs
}

func validateCronJobSpec(spec *batchv1.CronJobSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateSchedule(spec.Schedule, specPath.Child("schedule"))...)
	if spec.TimeZone != nil {
		errs = append(errs, validateTimeZone(*spec.TimeZone, specPath.Child("timeZone"))...)
	}
	errs = append(errs, oneOf(spec.ConcurrencyPolicy, specPath.Child("concurrencyPolicy"), concurrencyPolicies...)...)
	if spec.StartingDeadlineSeconds != nil {
		errs = append(errs, nonNegative(*spec.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	}
	errs = append(errs, nonNegativePtr32(spec.SuccessfulJobsHistoryLimit, specPath.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonNegativePtr32(spec.FailedJobsHistoryLimit, specPath.Child("failedJobsHistoryLimit"))...)

	jp := specPath.Child("jobTemplate")
	errs = append(errs, metav1validation.ValidateLabels(spec.JobTemplate.Labels, jp.Child("metadata", "labels"))...)
	errs = append(errs, validateAnnotations(spec.JobTemplate.Annotations, jp.Child("metadata", "annotations"))...)
	errs = append(errs, validateJobSpec(&spec.JobTemplate.Spec, jp.Child("spec"), false)...)
	return errs
}

// validateSchedule parses the schedule with the parser the CronJob
// controller uses, so a schedule accepted here is one that will run.
func validateSchedule(schedule string, p *field.Path) field.ErrorList {
	if schedule == "" {
		return field.ErrorList{field.Required(p, "a cron schedule such as \"*/5 * * * *\" or @hourly")}
	}
	// Checked before parsing: a time zone inside the schedule would
	// silently override spec.timeZone, and the parser does not cope with
	// every malformed TZ= prefix.
	if strings.Contains(schedule, "TZ") {
		return field.ErrorList{field.Invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead")}
	}
	if _, err := cron.ParseStandard(schedule); err != nil {
		return field.ErrorList{field.Invalid(p, schedule, "must be a standard cron schedule of 5 fields (minute hour day-of-month month day-of-week), such as \"*/5 * * * *\", or a descriptor such as @hourly, @daily or @every 2h: "+err.Error())}
	}
	return nil
}

// validateTimeZone accepts IANA time zone names that this host can load.
// The name is checked before loading it so that it is never read as a file
// path.
func validateTimeZone(tz string, p *field.Path) field.ErrorList {
	const hint = "an IANA time zone name such as \"Europe/Berlin\" or \"Etc/UTC\""
	if tz == "" {
		return field.ErrorList{field.Invalid(p, tz, "must be "+hint+", or be left out")}
	}
	if strings.EqualFold(tz, "Local") {
		return field.ErrorList{field.Invalid(p, tz, "must be "+hint+": Local would mean whatever zone the master runs in")}
	}
	for _, part := range strings.Split(tz, "/") {
		if !validTimeZonePart(part) {
			return field.ErrorList{field.Invalid(p, tz, "unknown time zone: must be "+hint)}
		}
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return field.ErrorList{field.Invalid(p, tz, "unknown time zone: must be "+hint)}
	}
	return nil
}

// validTimeZonePart follows the IANA naming rules (letters, digits, '.',
// '-', '_', '+', at most 14 characters, not "." or "..", not starting with
// '-').
func validTimeZonePart(part string) bool {
	if part == "" || part == "." || part == ".." || len(part) > 14 || part[0] == '-' {
		return false
	}
	for _, r := range part {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == '+':
		default:
			return false
		}
	}
	return true
}

func ptrString[T ~string](v *T) string {
	if v == nil {
		return ""
	}
	return string(*v)
}

func ptrValue(v *int32) any {
	if v == nil {
		return nil
	}
	return *v
}
