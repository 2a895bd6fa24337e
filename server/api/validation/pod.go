package validation

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validatePodCreate(pod *corev1.Pod) field.ErrorList {
	errs := validateMetaCreate(&pod.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validatePodSpec(&pod.Spec, specPath, podSpecOptions{})...)
}

// podUpdateMessage names what may change in a pod, so a user whose update
// was refused knows to delete and recreate the pod (or edit its controller)
// instead.
const podUpdateMessage = "pod updates may not change fields other than " +
	"`spec.containers[*].image`, `spec.initContainers[*].image`, " +
	"`spec.activeDeadlineSeconds` (only to set it or lower it), " +
	"`spec.tolerations` (only additions) and `spec.terminationGracePeriodSeconds`; " +
	"`spec.nodeName` may only be set once"

// validatePodUpdate enforces that a running pod is immutable except for the
// few fields the agent can apply in place, the same set Kubernetes allows.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	if !changed(pod.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validatePodSpec(&pod.Spec, specPath, podSpecOptions{})...)

	spec, oldSpec := &pod.Spec, &old.Spec
	if old.Spec.NodeName != "" && spec.NodeName != oldSpec.NodeName {
		errs = append(errs, field.Invalid(specPath.Child("nodeName"), spec.NodeName, "may not be changed once the pod is bound to a node"))
	}
	if oldSpec.ActiveDeadlineSeconds != nil {
		ap := specPath.Child("activeDeadlineSeconds")
		switch {
		case spec.ActiveDeadlineSeconds == nil:
			errs = append(errs, field.Invalid(ap, nil, "may not be removed once set"))
		case *spec.ActiveDeadlineSeconds > *oldSpec.ActiveDeadlineSeconds:
			errs = append(errs, field.Invalid(ap, *spec.ActiveDeadlineSeconds, "may only be lowered, not raised"))
		}
	}
	if missing := removedTolerations(spec.Tolerations, oldSpec.Tolerations); len(missing) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("tolerations"), "existing tolerations may not be removed or changed, only new ones added; missing: "+strings.Join(missing, ", ")))
	}

	// Put the allowed changes back to their old values; whatever still
	// differs was not allowed to change.
	munged := spec.DeepCopy()
	if len(munged.Containers) == len(oldSpec.Containers) {
		for i := range munged.Containers {
			munged.Containers[i].Image = oldSpec.Containers[i].Image
		}
	}
	if len(munged.InitContainers) == len(oldSpec.InitContainers) {
		for i := range munged.InitContainers {
			munged.InitContainers[i].Image = oldSpec.InitContainers[i].Image
		}
	}
	munged.ActiveDeadlineSeconds = oldSpec.ActiveDeadlineSeconds
	munged.Tolerations = oldSpec.Tolerations
	munged.TerminationGracePeriodSeconds = oldSpec.TerminationGracePeriodSeconds
	// Setting nodeName is binding and allowed; changing it was reported
	// above with its own path.
	munged.NodeName = oldSpec.NodeName
	if diff := changedFields(munged, oldSpec, specPath); len(diff) > 0 {
		errs = append(errs, field.Forbidden(specPath, podUpdateMessage+"; changed: "+strings.Join(diff, ", ")))
	}
	return errs
}

// removedTolerations lists the old tolerations that are not in new, by
// key, so users can see which one they dropped.
func removedTolerations(new, old []corev1.Toleration) []string {
	var missing []string
	for _, o := range old {
		found := false
		for _, n := range new {
			if apiequality.Semantic.DeepEqual(o, n) {
				found = true
				break
			}
		}
		if !found {
			key := o.Key
			if key == "" {
				key = "(all keys)"
			}
			missing = append(missing, key)
		}
	}
	return missing
}

// changedFields returns the paths of the top-level fields of two structs of
// the same type that differ, in declaration order, under p.
func changedFields(a, b any, p *field.Path) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Pointer {
		va, vb = va.Elem(), vb.Elem()
	}
	t := va.Type()
	var diff []string
	for i := 0; i < t.NumField(); i++ {
		if !changed(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		diff = append(diff, p.Child(name).String())
	}
	return diff
}
