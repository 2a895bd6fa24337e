package validation

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validatePDBCreate(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMetaCreate(&pdb.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validatePDBSpec(&pdb.Spec)...)
}

func validatePDBUpdate(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMetaUpdate(&pdb.ObjectMeta, &old.ObjectMeta)
	if changed(pdb.Spec, old.Spec) {
		errs = append(errs, validatePDBSpec(&pdb.Spec)...)
	}
	return errs
}

// validatePDBSpec checks a budget as Kubernetes does: exactly one of
// minAvailable and maxUnavailable, each a non-negative count or a
// percentage of at most 100%, a valid selector, and a known unhealthy pod
// eviction policy.
func validatePDBSpec(spec *policyv1.PodDisruptionBudgetSpec) field.ErrorList {
	var errs field.ErrorList
	switch {
	case spec.MinAvailable != nil && spec.MaxUnavailable != nil:
		errs = append(errs, field.Invalid(specPath, spec, "minAvailable and maxUnavailable cannot be both set"))
	case spec.MinAvailable == nil && spec.MaxUnavailable == nil:
		errs = append(errs, field.Required(specPath.Child("minAvailable"), "one of minAvailable and maxUnavailable is required"))
	}
	_, e := intOrPercent(spec.MinAvailable, specPath.Child("minAvailable"), true)
	errs = append(errs, e...)
	_, e = intOrPercent(spec.MaxUnavailable, specPath.Child("maxUnavailable"), true)
	errs = append(errs, e...)
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector,
		metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	if p := spec.UnhealthyPodEvictionPolicy; p != nil {
		switch *p {
		case policyv1.IfHealthyBudget, policyv1.AlwaysAllow:
		default:
			errs = append(errs, field.NotSupported(specPath.Child("unhealthyPodEvictionPolicy"), *p,
				[]string{string(policyv1.IfHealthyBudget), string(policyv1.AlwaysAllow)}))
		}
	}
	return errs
}
