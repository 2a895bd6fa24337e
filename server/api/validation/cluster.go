package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNamespaceCreate checks a Namespace. Its name is a DNS-1123 label
// because it is one label of every service name in it.
func validateNamespaceCreate(ns *corev1.Namespace) field.ErrorList {
	errs := validateMetaCreate(&ns.ObjectMeta, false, nameIsLabel)
	return append(errs, validateNamespaceSpec(&ns.Spec)...)
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	if changed(ns.Spec, old.Spec) {
		errs = append(errs, validateNamespaceSpec(&ns.Spec)...)
	}
	return errs
}

func validateNamespaceSpec(spec *corev1.NamespaceSpec) field.ErrorList {
	var errs field.ErrorList
	for i, f := range spec.Finalizers {
		fp := specPath.Child("finalizers").Index(i)
		if f == "" {
			errs = append(errs, field.Required(fp, "a finalizer name such as \"kubernetes\""))
			continue
		}
		errs = append(errs, apivalidation.ValidateFinalizerName(string(f), fp)...)
	}
	return errs
}

func validateNodeCreate(node *corev1.Node) field.ErrorList {
	errs := validateMetaCreate(&node.ObjectMeta, false, nameIsSubdomain)
	return append(errs, validateNodeSpec(&node.Spec)...)
}

// validateNodeUpdate keeps a node's pod CIDRs once assigned: pods on the
// node already have addresses from them.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	if !changed(node.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validateNodeSpec(&node.Spec)...)
	if old.Spec.PodCIDR != "" && node.Spec.PodCIDR != old.Spec.PodCIDR {
		errs = append(errs, field.Invalid(specPath.Child("podCIDR"), node.Spec.PodCIDR, fmt.Sprintf("field is immutable once set (was %q)", old.Spec.PodCIDR)))
	}
	if len(old.Spec.PodCIDRs) > 0 && changed(node.Spec.PodCIDRs, old.Spec.PodCIDRs) {
		errs = append(errs, field.Invalid(specPath.Child("podCIDRs"), node.Spec.PodCIDRs, "field is immutable once set"))
	}
	return errs
}

func validateNodeSpec(spec *corev1.NodeSpec) field.ErrorList {
	var errs field.ErrorList
	if spec.PodCIDR != "" {
		errs = append(errs, validateCIDR(spec.PodCIDR, specPath.Child("podCIDR"))...)
	}
	cp := specPath.Child("podCIDRs")
	if len(spec.PodCIDRs) > 2 {
		errs = append(errs, field.TooMany(cp, len(spec.PodCIDRs), 2))
	}
	if len(spec.PodCIDRs) > 0 && spec.PodCIDR != "" && spec.PodCIDRs[0] != spec.PodCIDR {
		errs = append(errs, field.Invalid(cp.Index(0), spec.PodCIDRs[0], "must match spec.podCIDR"))
	}
	for i, c := range spec.PodCIDRs {
		errs = append(errs, validateCIDR(c, cp.Index(i))...)
	}
	seen := map[string]bool{}
	for i, t := range spec.Taints {
		tp := specPath.Child("taints").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(tp.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(tp.Child("key"), t.Key, content.IsLabelKey(t.Key))...)
		}
		if t.Value != "" {
			errs = append(errs, invalidEach(tp.Child("value"), t.Value, content.IsLabelValue(t.Value))...)
		}
		errs = append(errs, oneOf(t.Effect, tp.Child("effect"), taintEffects...)...)
		// One taint per key and effect: a second would be ambiguous about
		// which value tolerations must match.
		k := t.Key + "/" + string(t.Effect)
		if seen[k] {
			errs = append(errs, field.Duplicate(tp, fmt.Sprintf("%s:%s", t.Key, t.Effect)))
		}
		seen[k] = true
	}
	return errs
}

// validateEventCreate is deliberately lenient: events are written by
// components, often in bulk, and a rejected event is a lost diagnostic.
func validateEventCreate(ev *corev1.Event) field.ErrorList {
	errs := validateMetaCreate(&ev.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateEventFields(ev)...)
}

func validateEventUpdate(ev, old *corev1.Event) field.ErrorList {
	errs := validateMetaUpdate(&ev.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateEventFields(ev)...)
}

func validateEventFields(ev *corev1.Event) field.ErrorList {
	if ev.InvolvedObject.Kind == "" {
		return field.ErrorList{field.Required(field.NewPath("involvedObject", "kind"), "the kind of the object the event is about")}
	}
	return nil
}
