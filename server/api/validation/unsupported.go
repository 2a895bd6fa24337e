package validation

import (
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Unsupported returns one warning per field of obj that is set but that
// orch does not implement, each naming the field's JSON path, for the API
// server to send as Warning headers: such fields are stored and returned
// as given, so manifests round-trip, but nothing acts on them, and users
// must not be left to find that out in production.
//
// The checks are allowlists: a spec field orch does not know about,
// including one added by a newer k8s.io/api, is reported until it is added
// to the list of implemented fields below. A field counts as set when it is
// not the zero value, so an explicit false is reported too, except for the
// few pod fields commonly written out at their default (hostUsers: true,
// shareProcessNamespace: false, setHostnameAsFQDN: false,
// serviceAccountName: default, automountServiceAccountToken: false).
//
// The order of the warnings is stable: fields in declaration order, lists
// in index order.
func Unsupported(obj runtime.Object) []string {
	if isNil(obj) {
		return nil
	}
	var w warnings
	switch o := obj.(type) {
	case *corev1.Pod:
		w.podSpec(&o.Spec, specPath)
	case *corev1.ReplicationController:
		if o.Spec.Template != nil {
			w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
		}
	case *appsv1.ReplicaSet:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *appsv1.Deployment:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *appsv1.DaemonSet:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *appsv1.StatefulSet:
		w.statefulSetSpec(&o.Spec)
	case *batchv1.Job:
		w.jobSpec(&o.Spec, specPath)
	case *batchv1.CronJob:
		w.jobSpec(&o.Spec.JobTemplate.Spec, specPath.Child("jobTemplate", "spec"))
	case *corev1.Service:
		w.serviceSpec(&o.Spec)
	case *corev1.PersistentVolumeClaim:
		w.flagFields(&o.Spec, specPath, claimKnown)
	}
	return w
}

// warnings collects the messages in the order they are found.
type warnings []string

func (w *warnings) add(p *field.Path) {
	*w = append(*w, fmt.Sprintf("%s: orch does not implement it; it is stored but has no effect", p))
}

func (w *warnings) addValue(p *field.Path, v string) {
	*w = append(*w, fmt.Sprintf("%s: orch does not implement %q; it is stored but has no effect", p, v))
}

// flagFields warns for each set field of the struct s points to that is not
// in known. known holds the implemented fields and those the caller checks
// itself.
func (w *warnings) flagFields(s any, p *field.Path, known map[string]bool) {
	for _, name := range setFields(s) {
		if !known[name] {
			w.add(p.Child(name))
		}
	}
}

// setFields returns the JSON names of the fields of the struct s points to
// that are set (non-zero; for slices and maps, non-empty), in declaration
// order.
func setFields(s any) []string {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	var names []string
	for i := range t.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice, reflect.Map:
			if f.Len() == 0 {
				continue
			}
		default:
			if f.IsZero() {
				continue
			}
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = t.Field(i).Name
		}
		names = append(names, name)
	}
	return names
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// podSpecKnown are the PodSpec fields the agent and scheduler implement,
// plus those podSpec inspects itself.
var podSpecKnown = set(
	"volumes", "initContainers", "containers", "restartPolicy", "terminationGracePeriodSeconds",
	"activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
	"automountServiceAccountToken", "nodeName", "hostNetwork", "shareProcessNamespace",
	"securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName",
	"tolerations", "hostAliases", "dnsConfig", "enableServiceLinks", "setHostnameAsFQDN", "hostUsers",
)

// containerKnown are the Container fields the agent implements on Docker,
// plus those container inspects itself. Container restart policies are
// not among them: orch implements neither sidecars (init containers with
// restartPolicy Always that keep running) nor per-container policies.
var containerKnown = set(
	"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
	"volumeMounts", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
	"terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
	"stdin", "stdinOnce", "tty",
)

var (
	containerSecurityKnown = set("runAsUser", "privileged", "readOnlyRootFilesystem", "capabilities")
	podSecurityKnown       = set("runAsUser")
	affinityKnown          = set("nodeAffinity")
	resourcesKnown         = set("limits", "requests")
	lifecycleKnown         = set("postStart", "preStop")
	envVarSourceKnown      = set("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
	volumeSourcesKnown     = set("hostPath", "emptyDir", "secret", "persistentVolumeClaim", "downwardAPI", "configMap", "projected")
	projectionKnown        = set("secret", "downwardAPI", "configMap")
)

func (w *warnings) podSpec(s *corev1.PodSpec, p *field.Path) {
	w.flagFields(s, p, podSpecKnown)
	for i := range s.Volumes {
		w.volume(&s.Volumes[i], p.Child("volumes").Index(i))
	}
	for i := range s.InitContainers {
		w.container(&s.InitContainers[i], p.Child("initContainers").Index(i))
	}
	for i := range s.Containers {
		w.container(&s.Containers[i], p.Child("containers").Index(i))
	}
	// Pods use no service accounts in orch: no token is mounted.
	if s.ServiceAccountName != "" && s.ServiceAccountName != "default" {
		w.add(p.Child("serviceAccountName"))
	}
	if s.DeprecatedServiceAccount != "" && s.DeprecatedServiceAccount != "default" {
		w.add(p.Child("serviceAccount"))
	}
	if isTrue(s.AutomountServiceAccountToken) {
		w.add(p.Child("automountServiceAccountToken"))
	}
	if isTrue(s.ShareProcessNamespace) {
		w.add(p.Child("shareProcessNamespace"))
	}
	if s.SecurityContext != nil {
		w.flagFields(s.SecurityContext, p.Child("securityContext"), podSecurityKnown)
	}
	if s.Affinity != nil {
		w.flagFields(s.Affinity, p.Child("affinity"), affinityKnown)
	}
	if isTrue(s.SetHostnameAsFQDN) {
		w.add(p.Child("setHostnameAsFQDN"))
	}
	if s.HostUsers != nil && !*s.HostUsers {
		w.add(p.Child("hostUsers"))
	}
}

func (w *warnings) container(c *corev1.Container, p *field.Path) {
	w.flagFields(c, p, containerKnown)
	for i, ev := range c.Env {
		if ev.ValueFrom != nil {
			w.flagFields(ev.ValueFrom, p.Child("env").Index(i).Child("valueFrom"), envVarSourceKnown)
		}
	}
	w.flagFields(&c.Resources, p.Child("resources"), resourcesKnown)
	if c.Lifecycle != nil {
		w.flagFields(c.Lifecycle, p.Child("lifecycle"), lifecycleKnown)
	}
	if c.SecurityContext != nil {
		w.flagFields(c.SecurityContext, p.Child("securityContext"), containerSecurityKnown)
	}
}

func (w *warnings) volume(v *corev1.Volume, p *field.Path) {
	for _, src := range volumeSources(&v.VolumeSource) {
		if !volumeSourcesKnown[src] {
			w.add(p.Child(src))
		}
	}
	if v.Projected == nil {
		return
	}
	for i := range v.Projected.Sources {
		w.flagFields(&v.Projected.Sources[i], p.Child("projected", "sources").Index(i), projectionKnown)
	}
}

// statefulSetKnown are the StatefulSet spec fields orch's controller
// implements, plus updateStrategy which statefulSetSpec inspects.
var statefulSetKnown = set(
	"replicas", "selector", "template", "volumeClaimTemplates", "serviceName", "podManagementPolicy",
	"updateStrategy", "revisionHistoryLimit", "minReadySeconds", "persistentVolumeClaimRetentionPolicy",
)

// claimKnown are the PersistentVolumeClaim spec fields the volume binding
// loop implements: claims are matched by class and volume name, never by
// selector or data source.
var claimKnown = set("accessModes", "resources", "volumeName", "storageClassName", "volumeMode")

func (w *warnings) statefulSetSpec(s *appsv1.StatefulSetSpec) {
	w.flagFields(s, specPath, statefulSetKnown)
	if rp := s.PersistentVolumeClaimRetentionPolicy; rp != nil && rp.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		w.addValue(specPath.Child("persistentVolumeClaimRetentionPolicy", "whenScaled"), string(rp.WhenScaled))
	}
	if ru := s.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		w.add(specPath.Child("updateStrategy", "rollingUpdate", "maxUnavailable"))
	}
	w.podSpec(&s.Template.Spec, specPath.Child("template", "spec"))
}

// jobKnown are the Job spec fields orch's Job controller implements.
var jobKnown = set(
	"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "selector", "manualSelector",
	"template", "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy",
)

func (w *warnings) jobSpec(s *batchv1.JobSpec, p *field.Path) {
	w.flagFields(s, p, jobKnown)
	w.podSpec(&s.Template.Spec, p.Child("template", "spec"))
}

// serviceKnown are the Service spec fields the service proxy and DNS
// implement, plus ipFamilyPolicy which serviceSpec inspects.
var serviceKnown = set(
	"ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity",
	"externalName", "externalTrafficPolicy", "healthCheckNodePort", "publishNotReadyAddresses",
	"sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy", "allocateLoadBalancerNodePorts",
	"internalTrafficPolicy",
)

func (w *warnings) serviceSpec(s *corev1.ServiceSpec) {
	w.flagFields(s, specPath, serviceKnown)
	// orch is single-stack: dual stack can be preferred but not required.
	// A headless Service without a selector gets RequireDualStack by
	// default, as in Kubernetes, where it means "every family the cluster
	// has"; that is no request to warn about.
	headlessManual := s.ClusterIP == corev1.ClusterIPNone && len(s.Selector) == 0
	if s.IPFamilyPolicy != nil && *s.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack && !headlessManual {
		w.addValue(specPath.Child("ipFamilyPolicy"), string(*s.IPFamilyPolicy))
	}
}

func isTrue(b *bool) bool {
	return b != nil && *b
}
