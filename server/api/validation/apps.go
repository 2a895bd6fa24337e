package validation

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// controllerTemplate is the pod template rule for controllers that keep
// pods running: a pod that exits must be restarted in place.
var controllerTemplate = podSpecOptions{
	restartPolicies: []corev1.RestartPolicy{corev1.RestartPolicyAlways},
	controller:      true,
}

// validateSelector checks a controller's label selector and that it
// selects the pods the template makes: a controller whose selector misses
// its own pods would create new ones forever.
func validateSelector(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, p *field.Path, kind string) field.ErrorList {
	sp := p.Child("selector")
	if sel == nil {
		return field.ErrorList{field.Required(sp, "a label selector matching spec.template.metadata.labels")}
	}
	var errs field.ErrorList
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(sp, sel, fmt.Sprintf("empty selector is invalid for %s: it would select every pod in the namespace", kind)))
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, sp)...)
	if len(errs) > 0 {
		return errs
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(sp, sel, err.Error()))
	}
	if !s.Matches(labels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), tmpl.Labels, "selector does not match template labels"))
	}
	return errs
}

// immutableSelector reports a changed selector: pods selected by the old
// one would be orphaned and new ones started next to them.
func immutableSelector(sel, old *metav1.LabelSelector) field.ErrorList {
	if changed(sel, old) {
		return field.ErrorList{field.Invalid(specPath.Child("selector"), sel, "field is immutable: create a new object to select other pods")}
	}
	return nil
}

func validateReplicaSetCreate(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMetaCreate(&rs.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateReplicaSetSpec(&rs.Spec)...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	if changed(rs.Spec, old.Spec) {
		errs = append(errs, validateReplicaSetSpec(&rs.Spec)...)
		errs = append(errs, immutableSelector(rs.Spec.Selector, old.Spec.Selector)...)
	}
	return errs
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr32(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, specPath, "ReplicaSet")...)
	errs = append(errs, validatePodTemplate(&spec.Template, specPath.Child("template"), controllerTemplate)...)
	return errs
}

func validateReplicationControllerCreate(rc *corev1.ReplicationController) field.ErrorList {
	errs := validateMetaCreate(&rc.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateReplicationControllerSpec(&rc.Spec)...)
}

// validateReplicationControllerUpdate allows selector changes: unlike the
// apps kinds, ReplicationControllers have always allowed it.
func validateReplicationControllerUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	errs := validateMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta)
	if changed(rc.Spec, old.Spec) {
		errs = append(errs, validateReplicationControllerSpec(&rc.Spec)...)
	}
	return errs
}

func validateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr32(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	sp := specPath.Child("selector")
	if len(spec.Selector) == 0 {
		errs = append(errs, field.Required(sp, "set it, or give spec.template.metadata.labels to select the pods by"))
	} else {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, sp)...)
	}
	if spec.Template == nil {
		return append(errs, field.Required(specPath.Child("template"), "the pods to run"))
	}
	if len(spec.Selector) > 0 && !labels.SelectorFromSet(spec.Selector).Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), spec.Template.Labels, "selector does not match template labels"))
	}
	errs = append(errs, validatePodTemplate(spec.Template, specPath.Child("template"), controllerTemplate)...)
	return errs
}

func validateDeploymentCreate(d *appsv1.Deployment) field.ErrorList {
	errs := validateMetaCreate(&d.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateDeploymentSpec(&d.Spec)...)
}

func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	if changed(d.Spec, old.Spec) {
		errs = append(errs, validateDeploymentSpec(&d.Spec)...)
		errs = append(errs, immutableSelector(d.Spec.Selector, old.Spec.Selector)...)
	}
	return errs
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr32(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, specPath, "Deployment")...)
	errs = append(errs, validatePodTemplate(&spec.Template, specPath.Child("template"), controllerTemplate)...)

	stp := specPath.Child("strategy")
	errs = append(errs, oneOf(spec.Strategy.Type, stp.Child("type"), appsv1.RollingUpdateDeploymentStrategyType, appsv1.RecreateDeploymentStrategyType)...)
	ru := spec.Strategy.RollingUpdate
	switch spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if ru != nil {
			errs = append(errs, field.Forbidden(stp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru == nil {
			errs = append(errs, field.Required(stp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		rp := stp.Child("rollingUpdate")
		unavailable, uErrs := intOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"), true)
		surge, sErrs := intOrPercent(ru.MaxSurge, rp.Child("maxSurge"), false)
		errs = append(errs, uErrs...)
		errs = append(errs, sErrs...)
		if len(uErrs) == 0 && len(sErrs) == 0 && unavailable == 0 && surge == 0 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "may not be 0 when `maxSurge` is 0: the rollout could never make progress"))
		}
	}
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr32(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if pd := spec.ProgressDeadlineSeconds; pd != nil {
		pp := specPath.Child("progressDeadlineSeconds")
		errs = append(errs, nonNegative(int64(*pd), pp)...)
		if *pd >= 0 && *pd <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(pp, *pd, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// intOrPercent checks a rollout budget (an integer or a percentage such as
// "25%") and returns its number, for the callers' zero checks.
func intOrPercent(v *intstr.IntOrString, p *field.Path, atMost100 bool) (int, field.ErrorList) {
	if v == nil {
		return 0, nil
	}
	switch v.Type {
	case intstr.Int:
		if v.IntVal < 0 {
			return 0, field.ErrorList{field.Invalid(p, v.IntVal, apivalidation.IsNegativeErrorMsg)}
		}
		return int(v.IntVal), nil
	case intstr.String:
		if msgs := utilvalidation.IsValidPercent(v.StrVal); len(msgs) > 0 {
			return 0, invalidEach(p, v.StrVal, msgs)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
		if err != nil {
			return 0, field.ErrorList{field.Invalid(p, v.StrVal, "must be an integer or a percentage such as \"25%\"")}
		}
		if atMost100 && n > 100 {
			return 0, field.ErrorList{field.Invalid(p, v.StrVal, "must not be greater than 100%")}
		}
		return n, nil
	}
	return 0, field.ErrorList{field.Invalid(p, v.String(), "must be an integer or a percentage such as \"25%\"")}
}

func validateDaemonSetCreate(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateMetaCreate(&ds.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateDaemonSetSpec(&ds.Spec)...)
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	if changed(ds.Spec, old.Spec) {
		errs = append(errs, validateDaemonSetSpec(&ds.Spec)...)
		errs = append(errs, immutableSelector(ds.Spec.Selector, old.Spec.Selector)...)
	}
	return errs
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, specPath, "DaemonSet")...)
	errs = append(errs, validatePodTemplate(&spec.Template, specPath.Child("template"), controllerTemplate)...)
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr32(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)

	up := specPath.Child("updateStrategy")
	errs = append(errs, oneOf(spec.UpdateStrategy.Type, up.Child("type"), appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType)...)
	ru := spec.UpdateStrategy.RollingUpdate
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		if ru != nil {
			errs = append(errs, field.Forbidden(up.Child("rollingUpdate"), "may not be specified when updateStrategy `type` is 'OnDelete'"))
		}
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru == nil {
			errs = append(errs, field.Required(up.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		rp := up.Child("rollingUpdate")
		unavailable, uErrs := intOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"), true)
		surge, sErrs := intOrPercent(ru.MaxSurge, rp.Child("maxSurge"), true)
		errs = append(errs, uErrs...)
		errs = append(errs, sErrs...)
		if len(uErrs) > 0 || len(sErrs) > 0 {
			break
		}
		// A DaemonSet either replaces pods in place (unavailable > 0) or
		// starts the new pod next to the old one (surge > 0), not both.
		switch {
		case unavailable == 0 && surge == 0:
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "may not be 0 when `maxSurge` is 0: the rollout could never make progress"))
		case unavailable != 0 && surge != 0:
			errs = append(errs, field.Invalid(rp.Child("maxSurge"), intOrStringValue(ru.MaxSurge), "may not be set when `maxUnavailable` is non-zero"))
		}
	}
	return errs
}

// intOrStringValue is v's value for an error message ("0", "25%").
func intOrStringValue(v *intstr.IntOrString) string {
	if v == nil {
		return "0"
	}
	return v.String()
}

var (
	podManagementPolicies = []appsv1.PodManagementPolicyType{appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement}
	pvcRetentionPolicies  = []appsv1.PersistentVolumeClaimRetentionPolicyType{
		appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	}
	accessModes = []corev1.PersistentVolumeAccessMode{
		corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod,
	}
)

func validateStatefulSetCreate(ss *appsv1.StatefulSet) field.ErrorList {
	errs := validateMetaCreate(&ss.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateStatefulSetSpec(&ss.Spec)...)
}

// statefulSetUpdateMessage names what may change in a StatefulSet; the rest
// (volume claims, service name, selector) is tied to pods and volumes that
// already exist.
const statefulSetUpdateMessage = "updates to statefulset spec for fields other than 'replicas', 'ordinals', " +
	"'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' " +
	"and 'minReadySeconds' are forbidden"

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta)
	if !changed(ss.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validateStatefulSetSpec(&ss.Spec)...)
	munged := ss.Spec.DeepCopy()
	munged.Replicas = old.Spec.Replicas
	munged.Ordinals = old.Spec.Ordinals
	munged.Template = old.Spec.Template
	munged.UpdateStrategy = old.Spec.UpdateStrategy
	munged.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	munged.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	munged.MinReadySeconds = old.Spec.MinReadySeconds
	if diff := changedFields(munged, &old.Spec, specPath); len(diff) > 0 {
		errs = append(errs, field.Forbidden(specPath, statefulSetUpdateMessage+"; changed: "+strings.Join(diff, ", ")))
	}
	return errs
}

func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr32(spec.Replicas, specPath.Child("replicas"))...)
	if spec.ServiceName != "" {
		// Pods get DNS names under this Service, so it must be a name a
		// Service can have.
		errs = append(errs, invalidEach(specPath.Child("serviceName"), spec.ServiceName, utilvalidation.IsDNS1035Label(spec.ServiceName))...)
	}
	errs = append(errs, oneOf(spec.PodManagementPolicy, specPath.Child("podManagementPolicy"), podManagementPolicies...)...)

	up := specPath.Child("updateStrategy")
	errs = append(errs, oneOf(spec.UpdateStrategy.Type, up.Child("type"), appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)...)
	if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
		rp := up.Child("rollingUpdate")
		if spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			errs = append(errs, field.Forbidden(rp, "may not be specified when updateStrategy `type` is 'OnDelete'"))
		}
		errs = append(errs, nonNegativePtr32(ru.Partition, rp.Child("partition"))...)
		if ru.MaxUnavailable != nil {
			n, muErrs := intOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"), true)
			errs = append(errs, muErrs...)
			if len(muErrs) == 0 && n == 0 {
				errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "must be greater than 0"))
			}
		}
	}
	errs = append(errs, nonNegativePtr32(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		pp := specPath.Child("persistentVolumeClaimRetentionPolicy")
		errs = append(errs, oneOf(rp.WhenDeleted, pp.Child("whenDeleted"), pvcRetentionPolicies...)...)
		errs = append(errs, oneOf(rp.WhenScaled, pp.Child("whenScaled"), pvcRetentionPolicies...)...)
	}
	if spec.Ordinals != nil {
		errs = append(errs, nonNegative(int64(spec.Ordinals.Start), specPath.Child("ordinals", "start"))...)
	}

	claims := map[string]bool{}
	for i := range spec.VolumeClaimTemplates {
		errs = append(errs, validateClaimTemplate(&spec.VolumeClaimTemplates[i], specPath.Child("volumeClaimTemplates").Index(i), claims)...)
	}
	for i, v := range spec.Template.Spec.Volumes {
		if claims[v.Name] {
			errs = append(errs, field.Duplicate(specPath.Child("template", "spec", "volumes").Index(i).Child("name"), v.Name))
		}
	}

	errs = append(errs, validateSelector(spec.Selector, &spec.Template, specPath, "StatefulSet")...)
	opts := controllerTemplate
	opts.claimTemplates = claims
	errs = append(errs, validatePodTemplate(&spec.Template, specPath.Child("template"), opts)...)
	return errs
}

// validateClaimTemplate checks a volumeClaimTemplates entry: its name is
// the volume name containers mount, and the claim must say how much
// storage and which access it needs.
func validateClaimTemplate(pvc *corev1.PersistentVolumeClaim, p *field.Path, seen map[string]bool) field.ErrorList {
	var errs field.ErrorList
	np := p.Child("metadata", "name")
	if pvc.Name == "" {
		errs = append(errs, field.Required(np, "the volume name containers mount it by"))
	} else {
		errs = append(errs, dnsLabel(pvc.Name, np)...)
		if seen[pvc.Name] {
			errs = append(errs, field.Duplicate(np, pvc.Name))
		}
		seen[pvc.Name] = true
	}
	errs = append(errs, metav1validation.ValidateLabels(pvc.Labels, p.Child("metadata", "labels"))...)
	errs = append(errs, validateAnnotations(pvc.Annotations, p.Child("metadata", "annotations"))...)
	sp := p.Child("spec")
	if len(pvc.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(sp.Child("accessModes"), "at least one of \"ReadWriteOnce\", \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOncePod\""))
	}
	for i, m := range pvc.Spec.AccessModes {
		errs = append(errs, oneOf(m, sp.Child("accessModes").Index(i), accessModes...)...)
	}
	rp := sp.Child("resources", "requests").Key(string(corev1.ResourceStorage))
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(rp, "how much storage each pod's volume needs, such as 1Gi"))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(rp, q.String(), "must be greater than zero"))
	}
	return errs
}
