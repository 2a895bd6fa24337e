package validation

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	reclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimRetain, corev1.PersistentVolumeReclaimDelete}
	bindingModes    = []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}
	volumeModes     = []corev1.PersistentVolumeMode{corev1.PersistentVolumeFilesystem}
)

// validateAccessModes checks a claim's or volume's access modes: at least
// one, each a known mode.
func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		errs = append(errs, field.Required(p, "at least one of "+quoteList(accessModes)))
	}
	for i, m := range modes {
		errs = append(errs, oneOf(m, p.Index(i), accessModes...)...)
	}
	return errs
}

func validateVolumeMode(m *corev1.PersistentVolumeMode, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	return oneOf(*m, p, volumeModes...)
}

func validatePVCCreate(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMetaCreate(&pvc.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validatePVCSpec(&pvc.Spec)...)
}

func validatePVCSpec(spec *corev1.PersistentVolumeClaimSpec) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, specPath.Child("accessModes"))
	rp := specPath.Child("resources", "requests").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(rp, "how much storage the claim needs, such as 1Gi"))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(rp, q.String(), "must be greater than zero"))
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(*spec.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeName != "" {
		errs = append(errs, dnsSubdomain(spec.VolumeName, specPath.Child("volumeName"))...)
	}
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	}
	errs = append(errs, validateVolumeMode(spec.VolumeMode, specPath.Child("volumeMode"))...)
	return errs
}

// validatePVCUpdate keeps a claim's spec as created, except that a claim
// may be bound (volumeName set once) and its storage request may grow.
func validatePVCUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePVCStatus(pvc)...)
	if !changed(pvc.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validatePVCSpec(&pvc.Spec)...)
	munged := *pvc.Spec.DeepCopy()
	munged.Resources.Requests = old.Spec.Resources.Requests
	if old.Spec.VolumeName == "" {
		munged.VolumeName = ""
	}
	if changed(munged, old.Spec) {
		errs = append(errs, field.Forbidden(specPath, "spec is immutable after creation except resources.requests, and volumeName while unbound"))
	}
	newQ, oldQ := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if newQ.Cmp(oldQ) < 0 {
		errs = append(errs, field.Forbidden(specPath.Child("resources", "requests").Key(string(corev1.ResourceStorage)), "field can not be less than previous value"))
	}
	return errs
}

func validatePVCStatus(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	sp := field.NewPath("status")
	var errs field.ErrorList
	if pvc.Status.Phase != "" {
		errs = append(errs, oneOf(pvc.Status.Phase, sp.Child("phase"), corev1.ClaimPending, corev1.ClaimBound, corev1.ClaimLost)...)
	}
	return errs
}

func validatePVCreate(pv *corev1.PersistentVolume) field.ErrorList {
	errs := validateMetaCreate(&pv.ObjectMeta, false, nameIsSubdomain)
	return append(errs, validatePVSpec(&pv.Spec)...)
}

func validatePVSpec(spec *corev1.PersistentVolumeSpec) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, specPath.Child("accessModes"))
	cp := specPath.Child("capacity").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Capacity[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(cp, "the size of the volume, such as 1Gi"))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(cp, q.String(), "must be greater than zero"))
	}
	for name := range spec.Capacity {
		if name != corev1.ResourceStorage {
			errs = append(errs, field.NotSupported(specPath.Child("capacity").Key(string(name)), name, []corev1.ResourceName{corev1.ResourceStorage}))
		}
	}
	var sources []string
	if l := spec.Local; l != nil {
		sources = append(sources, "local")
		errs = append(errs, validateVolumePath(l.Path, specPath.Child("local", "path"))...)
		if spec.NodeAffinity == nil || spec.NodeAffinity.Required == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "a local volume must say which node holds it"))
		}
	}
	if h := spec.HostPath; h != nil {
		sources = append(sources, "hostPath")
		errs = append(errs, validateVolumePath(h.Path, specPath.Child("hostPath", "path"))...)
	}
	switch {
	case len(sources) == 0:
		errs = append(errs, field.Required(specPath, "must specify a volume type: local or hostPath"))
	case len(sources) > 1:
		errs = append(errs, field.Forbidden(specPath.Child(sources[1]), "may not specify more than 1 volume type"))
	}
	if spec.PersistentVolumeReclaimPolicy != "" {
		errs = append(errs, oneOf(spec.PersistentVolumeReclaimPolicy, specPath.Child("persistentVolumeReclaimPolicy"), reclaimPolicies...)...)
	}
	if spec.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(spec.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if na := spec.NodeAffinity; na != nil && na.Required != nil {
		rp := specPath.Child("nodeAffinity", "required", "nodeSelectorTerms")
		if len(na.Required.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(rp, "at least one term"))
		}
		for i, term := range na.Required.NodeSelectorTerms {
			for j, req := range term.MatchExpressions {
				ep := rp.Index(i).Child("matchExpressions").Index(j)
				errs = append(errs, metav1validation.ValidateLabelName(req.Key, ep.Child("key"))...)
				errs = append(errs, oneOf(req.Operator, ep.Child("operator"), corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist)...)
			}
		}
	}
	errs = append(errs, validateVolumeMode(spec.VolumeMode, specPath.Child("volumeMode"))...)
	return errs
}

// validateVolumePath checks the path of a volume on its node: absolute,
// clean, without "..".
func validateVolumePath(v string, p *field.Path) field.ErrorList {
	switch {
	case v == "":
		return field.ErrorList{field.Required(p, "an absolute path on the node")}
	case !strings.HasPrefix(v, "/"):
		return field.ErrorList{field.Invalid(p, v, "must be an absolute path")}
	case path.Clean(v) != v || strings.Contains(v, "/../"):
		return field.ErrorList{field.Invalid(p, v, "must be a clean path without '..'")}
	}
	return nil
}

// validatePVUpdate keeps a volume's source, capacity and node affinity:
// data already lives there.
func validatePVUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	errs := validateMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta)
	if !changed(pv.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validatePVSpec(&pv.Spec)...)
	if changed(pv.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is forbidden to change after creation"))
	}
	if old.Spec.NodeAffinity != nil && changed(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		errs = append(errs, field.Invalid(specPath.Child("nodeAffinity"), "", "field is immutable once set"))
	}
	return errs
}

func validateStorageClassCreate(sc *storagev1.StorageClass) field.ErrorList {
	errs := validateMetaCreate(&sc.ObjectMeta, false, nameIsSubdomain)
	pp := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(pp, "the provisioner's name, such as \"orch.dev/local\""))
	} else {
		errs = append(errs, invalidEach(pp, sc.Provisioner, utilvalidation.IsQualifiedName(strings.ToLower(sc.Provisioner)))...)
	}
	if sc.ReclaimPolicy != nil {
		errs = append(errs, oneOf(*sc.ReclaimPolicy, field.NewPath("reclaimPolicy"), reclaimPolicies...)...)
	}
	if sc.VolumeBindingMode != nil {
		errs = append(errs, oneOf(*sc.VolumeBindingMode, field.NewPath("volumeBindingMode"), bindingModes...)...)
	}
	return errs
}

// validateStorageClassUpdate keeps what volumes were provisioned with.
func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	errs := validateMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta)
	if sc.Provisioner != old.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if changed(sc.Parameters, old.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if changed(sc.ReclaimPolicy, old.ReclaimPolicy) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	if changed(sc.VolumeBindingMode, old.VolumeBindingMode) {
		errs = append(errs, field.Forbidden(field.NewPath("volumeBindingMode"), "field is immutable"))
	}
	return errs
}
