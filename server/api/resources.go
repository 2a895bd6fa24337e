//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package api

import (
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// object is what every stored API object is: a typed Kubernetes object with
// standard metadata.
type object interface {
	runtime.Object
	metav1.Object
}

// resource describes one API resource: where it lives on the wire and in the
// store, and the rules that set it apart from the others.
type resource struct {
	group, version string
	name           string // plural, as in URLs
	singular       string
	kind           string
	namespaced     bool
	shortNames     []string
	categories     []string
	newObj         func() object

	// status: the resource has a status subresource; the main endpoint
	// ignores status changes and /status ignores everything else.
	status bool
	// keepStatusOnCreate: creates may set status (nodes register with it).
	keepStatusOnCreate bool
	// generation: metadata.generation counts spec changes.
	generation bool
	// scale: the resource has a scale subresource.
	scale *scaleAccess
	// fields lists the field selectors beyond metadata.name and
	// metadata.namespace, mapped to their value in a selectable.
	fields map[string]func(*selectable) string
}

func (r *resource) gvk() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.group, Version: r.version, Kind: r.kind}
}

func (r *resource) gr() schema.GroupResource {
	return schema.GroupResource{Group: r.group, Resource: r.name}
}

func (r *resource) apiVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

// storeGroup is the group's segment in store keys; the legacy core group
// has an empty name, so it is stored as "core".
func (r *resource) storeGroup() string {
	if r.group == "" {
		return "core"
	}
	return r.group
}

// key is the store key of one object: /<group>/<resource>/<namespace>/<name>,
// without the namespace segment for cluster-scoped resources.
func (r *resource) key(namespace, name string) string {
	if r.namespaced {
		return "/" + r.storeGroup() + "/" + r.name + "/" + namespace + "/" + name
	}
	return "/" + r.storeGroup() + "/" + r.name + "/" + name
}

// prefix is the store prefix of a list: one namespace, or all of them.
func (r *resource) prefix(namespace string) string {
	if r.namespaced && namespace != "" {
		return "/" + r.storeGroup() + "/" + r.name + "/" + namespace + "/"
	}
	return "/" + r.storeGroup() + "/" + r.name + "/"
}

// specOf and statusOf reach the Spec and Status fields that every kind with
// those concepts has, without a switch over kinds.
func fieldOf(obj object, name string) reflect.Value {
	v := reflect.ValueOf(obj).Elem().FieldByName(name)
	return v
}

// scaleAccess reads and writes the replica count behind a scale subresource.
type scaleAccess struct {
	get func(obj object) (spec int32, status int32, selector string)
	set func(obj object, replicas int32)
}

func replicasOrOne(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return ""
	}
	return sel.String()
}

func mapSelectorString(m map[string]string) string {
	return selectorString(&metav1.LabelSelector{MatchLabels: m})
}

var resources = []*resource{
	{group: "", version: "v1", name: "namespaces", singular: "namespace", kind: "Namespace", shortNames: []string{"ns"},
		newObj: func() object { return &corev1.Namespace{} }, status: true, keepStatusOnCreate: true,
		fields: map[string]func(*selectable) string{"status.phase": func(s *selectable) string { return s.Status.Phase }}},
	{group: "", version: "v1", name: "nodes", singular: "node", kind: "Node", shortNames: []string{"no"},
		newObj: func() object { return &corev1.Node{} }, status: true, keepStatusOnCreate: true,
		fields: map[string]func(*selectable) string{"spec.unschedulable": func(s *selectable) string { return boolString(s.Spec.Unschedulable) }}},
	{group: "", version: "v1", name: "pods", singular: "pod", kind: "Pod", namespaced: true, shortNames: []string{"po"}, categories: []string{"all"},
		newObj: func() object { return &corev1.Pod{} }, status: true, generation: true,
		fields: map[string]func(*selectable) string{
			"spec.nodeName":      func(s *selectable) string { return s.Spec.NodeName },
			"spec.restartPolicy": func(s *selectable) string { return s.Spec.RestartPolicy },
			"spec.schedulerName": func(s *selectable) string { return s.Spec.SchedulerName },
			"status.phase":       func(s *selectable) string { return s.Status.Phase },
			"status.podIP":       func(s *selectable) string { return s.Status.PodIP },
		}},
	{group: "", version: "v1", name: "services", singular: "service", kind: "Service", namespaced: true, shortNames: []string{"svc"}, categories: []string{"all"},
		newObj: func() object { return &corev1.Service{} }, status: true},
	{group: "", version: "v1", name: "endpoints", singular: "endpoints", kind: "Endpoints", namespaced: true, shortNames: []string{"ep"},
		newObj: func() object { return &corev1.Endpoints{} }},
	{group: "", version: "v1", name: "configmaps", singular: "configmap", kind: "ConfigMap", namespaced: true, shortNames: []string{"cm"},
		newObj: func() object { return &corev1.ConfigMap{} }},
	{group: "", version: "v1", name: "secrets", singular: "secret", kind: "Secret", namespaced: true,
		newObj: func() object { return &corev1.Secret{} },
		fields: map[string]func(*selectable) string{"type": func(s *selectable) string { return s.Type }}},
	{group: "", version: "v1", name: "events", singular: "event", kind: "Event", namespaced: true, shortNames: []string{"ev"},
		newObj: func() object { return &corev1.Event{} },
		fields: map[string]func(*selectable) string{
			"involvedObject.kind":            func(s *selectable) string { return s.InvolvedObject.Kind },
			"involvedObject.namespace":       func(s *selectable) string { return s.InvolvedObject.Namespace },
			"involvedObject.name":            func(s *selectable) string { return s.InvolvedObject.Name },
			"involvedObject.uid":             func(s *selectable) string { return s.InvolvedObject.UID },
			"involvedObject.apiVersion":      func(s *selectable) string { return s.InvolvedObject.APIVersion },
			"involvedObject.resourceVersion": func(s *selectable) string { return s.InvolvedObject.ResourceVersion },
			"involvedObject.fieldPath":       func(s *selectable) string { return s.InvolvedObject.FieldPath },
			"reason":                         func(s *selectable) string { return s.Reason },
			"reportingComponent":             func(s *selectable) string { return s.ReportingComponent },
			"source":                         func(s *selectable) string { return s.Source.Component },
			"type":                           func(s *selectable) string { return s.Type },
		}},
	{group: "", version: "v1", name: "persistentvolumeclaims", singular: "persistentvolumeclaim", kind: "PersistentVolumeClaim", namespaced: true, shortNames: []string{"pvc"},
		newObj: func() object { return &corev1.PersistentVolumeClaim{} }, status: true},
	{group: "", version: "v1", name: "persistentvolumes", singular: "persistentvolume", kind: "PersistentVolume", shortNames: []string{"pv"},
		newObj: func() object { return &corev1.PersistentVolume{} }, status: true},
	{group: "", version: "v1", name: "replicationcontrollers", singular: "replicationcontroller", kind: "ReplicationController", namespaced: true, shortNames: []string{"rc"}, categories: []string{"all"},
		newObj: func() object { return &corev1.ReplicationController{} }, status: true, generation: true,
		fields: map[string]func(*selectable) string{"status.replicas": func(s *selectable) string { return intString(s.Status.Replicas) }},
		scale: &scaleAccess{
			get: func(o object) (int32, int32, string) {
				rc := o.(*corev1.ReplicationController)
				return replicasOrOne(rc.Spec.Replicas), rc.Status.Replicas, mapSelectorString(rc.Spec.Selector)
			},
			set: func(o object, n int32) { o.(*corev1.ReplicationController).Spec.Replicas = &n },
		}},
	{group: "apps", version: "v1", name: "deployments", singular: "deployment", kind: "Deployment", namespaced: true, shortNames: []string{"deploy"}, categories: []string{"all"},
		newObj: func() object { return &appsv1.Deployment{} }, status: true, generation: true,
		scale: &scaleAccess{
			get: func(o object) (int32, int32, string) {
				d := o.(*appsv1.Deployment)
				return replicasOrOne(d.Spec.Replicas), d.Status.Replicas, selectorString(d.Spec.Selector)
			},
			set: func(o object, n int32) { o.(*appsv1.Deployment).Spec.Replicas = &n },
		}},
	{group: "apps", version: "v1", name: "replicasets", singular: "replicaset", kind: "ReplicaSet", namespaced: true, shortNames: []string{"rs"}, categories: []string{"all"},
		newObj: func() object { return &appsv1.ReplicaSet{} }, status: true, generation: true,
		scale: &scaleAccess{
			get: func(o object) (int32, int32, string) {
				rs := o.(*appsv1.ReplicaSet)
				return replicasOrOne(rs.Spec.Replicas), rs.Status.Replicas, selectorString(rs.Spec.Selector)
			},
			set: func(o object, n int32) { o.(*appsv1.ReplicaSet).Spec.Replicas = &n },
		}},
	{group: "apps", version: "v1", name: "daemonsets", singular: "daemonset", kind: "DaemonSet", namespaced: true, shortNames: []string{"ds"}, categories: []string{"all"},
		newObj: func() object { return &appsv1.DaemonSet{} }, status: true, generation: true},
	{group: "apps", version: "v1", name: "statefulsets", singular: "statefulset", kind: "StatefulSet", namespaced: true, shortNames: []string{"sts"}, categories: []string{"all"},
		newObj: func() object { return &appsv1.StatefulSet{} }, status: true, generation: true,
		scale: &scaleAccess{
			get: func(o object) (int32, int32, string) {
				s := o.(*appsv1.StatefulSet)
				return replicasOrOne(s.Spec.Replicas), s.Status.Replicas, selectorString(s.Spec.Selector)
			},
			set: func(o object, n int32) { o.(*appsv1.StatefulSet).Spec.Replicas = &n },
		}},
	{group: "batch", version: "v1", name: "jobs", singular: "job", kind: "Job", namespaced: true, categories: []string{"all"},
		newObj: func() object { return &batchv1.Job{} }, status: true, generation: true,
		fields: map[string]func(*selectable) string{"status.successful": func(s *selectable) string { return intString(s.Status.Succeeded) }}},
	{group: "batch", version: "v1", name: "cronjobs", singular: "cronjob", kind: "CronJob", namespaced: true, shortNames: []string{"cj"}, categories: []string{"all"},
		newObj: func() object { return &batchv1.CronJob{} }, status: true, generation: true},
	{group: "policy", version: "v1", name: "poddisruptionbudgets", singular: "poddisruptionbudget", kind: "PodDisruptionBudget", namespaced: true, shortNames: []string{"pdb"},
		newObj: func() object { return &policyv1.PodDisruptionBudget{} }, status: true, generation: true},
	{group: "storage.k8s.io", version: "v1", name: "storageclasses", singular: "storageclass", kind: "StorageClass", shortNames: []string{"sc"},
		newObj: func() object { return &storagev1.StorageClass{} }},
}

// registry indexes resources by group/version/plural.
type registry struct {
	byGVR  map[string]*resource
	byKind map[schema.GroupVersionKind]*resource
	groups []string // API groups other than core, in discovery order
}

func newRegistry() *registry {
	r := &registry{byGVR: map[string]*resource{}, byKind: map[schema.GroupVersionKind]*resource{}}
	seen := map[string]bool{}
	for _, res := range resources {
		r.byGVR[res.group+"/"+res.version+"/"+res.name] = res
		r.byKind[res.gvk()] = res
		if res.group != "" && !seen[res.group] {
			seen[res.group] = true
			r.groups = append(r.groups, res.group)
		}
	}
	return r
}

func (r *registry) lookup(group, version, plural string) *resource {
	return r.byGVR[group+"/"+version+"/"+strings.ToLower(plural)]
}

// resourcesIn returns the resources of one group version, in table order.
func (r *registry) resourcesIn(group, version string) []*resource {
	var out []*resource
	for _, res := range resources {
		if res.group == group && res.version == version {
			out = append(out, res)
		}
	}
	return out
}

// NamespacedResources lists the namespaced resources the API serves, for
// the namespace controller that empties a namespace being deleted.
func NamespacedResources() []schema.GroupVersionResource {
	return servedResources(true)
}

// ClusterResources lists the cluster-scoped resources the API serves, for
// the garbage collector, whose owners may be cluster-scoped (a Node).
func ClusterResources() []schema.GroupVersionResource {
	return servedResources(false)
}

func servedResources(namespaced bool) []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	for _, r := range resources {
		if r.namespaced == namespaced {
			out = append(out, schema.GroupVersionResource{Group: r.group, Version: r.version, Resource: r.name})
		}
	}
	return out
}
