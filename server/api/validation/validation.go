package validation

import (
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCreate checks an object about to be created. The API server calls
// it after defaulting and after it has set uid, creationTimestamp and the
// namespace, and rejects the request with 422 Invalid when the list is not
// empty. Field paths are the JSON paths of the object, so users can find
// what to fix in their manifest.
//
// Objects of kinds orch does not serve are not checked (nil is returned);
// a nil object, or a nil pointer of a served kind, is reported as an
// internal error rather than a panic.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	if isNil(obj) {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: nil %T object", obj))}
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return validateNamespaceCreate(o)
	case *corev1.Pod:
		return validatePodCreate(o)
	case *corev1.Node:
		return validateNodeCreate(o)
	case *corev1.Service:
		return validateServiceCreate(o)
	//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
	case *corev1.Endpoints:
		return validateEndpointsCreate(o)
	case *corev1.ConfigMap:
		return validateConfigMapCreate(o)
	case *corev1.Secret:
		return validateSecretCreate(o)
	case *corev1.Event:
		return validateEventCreate(o)
	case *corev1.PersistentVolumeClaim:
		return validatePVCCreate(o)
	case *corev1.PersistentVolume:
		return validatePVCreate(o)
	case *storagev1.StorageClass:
		return validateStorageClassCreate(o)
	case *policyv1.PodDisruptionBudget:
		return validatePDBCreate(o)
	case *corev1.ReplicationController:
		return validateReplicationControllerCreate(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSetCreate(o)
	case *appsv1.Deployment:
		return validateDeploymentCreate(o)
	case *appsv1.DaemonSet:
		return validateDaemonSetCreate(o)
	case *appsv1.StatefulSet:
		return validateStatefulSetCreate(o)
	case *batchv1.Job:
		return validateJobCreate(o)
	case *batchv1.CronJob:
		return validateCronJobCreate(o)
	}
	return nil
}

// ValidateUpdate checks obj as the replacement of the stored object old.
// Like ValidateCreate it runs after defaulting, and after the server has
// carried the server-owned metadata (uid, creationTimestamp, ...) over from
// old. obj must carry a resourceVersion: for an unconditional update the
// server copies the stored one first, as Kubernetes does.
//
// An update is checked for the rules on changes (immutable fields, fields
// that may only grow or shrink) and the new object is checked like a new
// one, except that a spec (or data) identical to the stored one is not
// checked again: objects accepted under older rules can still have their
// status, labels and finalizers written.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) || isNil(old) {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: update from %T to %T with a nil object", old, obj))}
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: update from %T to %T", old, obj))}
	}
	// The type switch below may assert old to obj's type: checked above.
	switch o := obj.(type) {
	case *corev1.Namespace:
		return validateNamespaceUpdate(o, old.(*corev1.Namespace))
	case *corev1.Pod:
		return validatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.Node:
		return validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Service:
		return validateServiceUpdate(o, old.(*corev1.Service))
	//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
	case *corev1.Endpoints:
		//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
		return validateEndpointsUpdate(o, old.(*corev1.Endpoints))
	case *corev1.ConfigMap:
		return validateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		return validateSecretUpdate(o, old.(*corev1.Secret))
	case *corev1.Event:
		return validateEventUpdate(o, old.(*corev1.Event))
	case *corev1.PersistentVolumeClaim:
		return validatePVCUpdate(o, old.(*corev1.PersistentVolumeClaim))
	case *corev1.PersistentVolume:
		return validatePVUpdate(o, old.(*corev1.PersistentVolume))
	case *storagev1.StorageClass:
		return validateStorageClassUpdate(o, old.(*storagev1.StorageClass))
	case *policyv1.PodDisruptionBudget:
		return validatePDBUpdate(o, old.(*policyv1.PodDisruptionBudget))
	case *corev1.ReplicationController:
		return validateReplicationControllerUpdate(o, old.(*corev1.ReplicationController))
	case *appsv1.ReplicaSet:
		return validateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *appsv1.Deployment:
		return validateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.DaemonSet:
		return validateDaemonSetUpdate(o, old.(*appsv1.DaemonSet))
	case *appsv1.StatefulSet:
		return validateStatefulSetUpdate(o, old.(*appsv1.StatefulSet))
	case *batchv1.Job:
		return validateJobUpdate(o, old.(*batchv1.Job))
	case *batchv1.CronJob:
		return validateCronJobUpdate(o, old.(*batchv1.CronJob))
	}
	return nil
}

// isNil reports whether obj is nil or a nil pointer inside an interface,
// which a type switch would happily hand on and a field access would turn
// into a panic.
func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

var (
	metadataPath = field.NewPath("metadata")
	specPath     = field.NewPath("spec")
)

// validateMetaCreate checks metadata with the name rule of the kind:
// apimachinery's checks of name, generateName, namespace, labels,
// annotations, owner references and finalizers.
func validateMetaCreate(meta *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return apivalidation.ValidateObjectMeta(meta, namespaced, nameFn, metadataPath)
}

// validateMetaUpdate checks metadata changes: name, namespace, uid and
// creationTimestamp are immutable, resourceVersion is required, labels and
// annotations must stay valid.
func validateMetaUpdate(meta, old *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMetaUpdate(meta, old, metadataPath)
}

// changed reports whether a and b differ the way the API sees it
// (resource.Quantity by value, nil and empty collections alike).
func changed(a, b any) bool {
	return !apiequality.Semantic.DeepEqual(a, b)
}

// Name rules per kind. Kubernetes uses DNS-1123 subdomains unless a name
// ends up in DNS as a single label.
var (
	nameIsSubdomain = apivalidation.NameIsDNSSubdomain
	nameIsLabel     = apivalidation.NameIsDNSLabel
	nameIs1035Label = apivalidation.NameIsDNS1035Label
)

func nonNegative(v int64, p *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(p, v, apivalidation.IsNegativeErrorMsg)}
	}
	return nil
}

func nonNegativePtr32(v *int32, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return nonNegative(int64(*v), p)
}

func positivePtr64(v *int64, p *field.Path) field.ErrorList {
	if v != nil && *v <= 0 {
		return field.ErrorList{field.Invalid(p, *v, "must be greater than 0")}
	}
	return nil
}

// oneOf checks an enumerated string field: empty is reported as Required
// and anything else outside valid as NotSupported, both listing the values
// that would be accepted.
func oneOf[T ~string](v T, p *field.Path, valid ...T) field.ErrorList {
	for _, ok := range valid {
		if v == ok {
			return nil
		}
	}
	if v == "" {
		return field.ErrorList{field.Required(p, "must be one of "+quoteList(valid))}
	}
	return field.ErrorList{field.NotSupported(p, v, valid)}
}

func quoteList[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// invalidEach turns the messages of a utilvalidation check into errors at p.
func invalidEach(p *field.Path, v any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range msgs {
		errs = append(errs, field.Invalid(p, v, m))
	}
	return errs
}

func dnsLabel(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return invalidEach(p, v, utilvalidation.IsDNS1123Label(v))
}

func dnsSubdomain(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return invalidEach(p, v, utilvalidation.IsDNS1123Subdomain(v))
}

// portNumber checks a port that must be usable: 1 to 65535.
func portNumber(v int32, p *field.Path) field.ErrorList {
	if v == 0 {
		return field.ErrorList{field.Required(p, "must be between 1 and 65535, inclusive")}
	}
	return invalidEach(p, v, utilvalidation.IsValidPortNum(int(v)))
}

var protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// validateAnnotations checks annotation keys and the total size limit.
var validateAnnotations = apivalidation.ValidateAnnotations

// portNumberOrName checks a reference to a container port, which may be
// its number or the name given in the container's ports list.
func portNumberOrName(v intstr.IntOrString, p *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.Int:
		return portNumber(v.IntVal, p)
	case intstr.String:
		if v.StrVal == "" {
			return field.ErrorList{field.Required(p, "a port number (1-65535) or the name of a container port")}
		}
		return invalidEach(p, v.StrVal, utilvalidation.IsValidPortName(v.StrVal))
	}
	return field.ErrorList{field.Invalid(p, v.String(), "must be a port number or a port name")}
}

// validateIP checks an IP address as Kubernetes does for its older fields:
// any form net.ParseIP accepts except those that different software reads
// differently (leading zeros, IPv4-mapped IPv6).
func validateIP(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "an IP address such as 10.9.8.7 or 2001:db8::1")}
	}
	return utilvalidation.IsValidIPForLegacyField(p, v, true, nil)
}

// validateCIDR checks a CIDR with the same strictness as validateIP.
func validateCIDR(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "a CIDR such as 10.42.1.0/24")}
	}
	return utilvalidation.IsValidCIDRForLegacyField(p, v, true, nil)
}
