package api

import (
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Hooks into defaulting and validation, set in hooks.go.
var (
	applyDefaults     func(runtime.Object)
	validateCreate    func(runtime.Object) field.ErrorList
	validateUpdate    func(obj, old runtime.Object) field.ErrorList
	unsupportedFields func(runtime.Object) []string
)

// nowTime is the server clock at the resolution Kubernetes timestamps have
// on the wire, so what a create returns equals what a later get returns.
func (s *Server) nowTime() metav1.Time {
	return metav1.NewTime(s.now().Truncate(time.Second))
}

// prepareCreate sets the metadata the server owns and resets what a create
// may not set.
func (s *Server) prepareCreate(res *resource, obj object) {
	obj.SetUID(types.UID(uuid.NewString()))
	obj.SetCreationTimestamp(s.nowTime())
	obj.SetDeletionTimestamp(nil)
	obj.SetDeletionGracePeriodSeconds(nil)
	obj.SetGeneration(0)
	if res.generation {
		obj.SetGeneration(1)
	}
	obj.SetManagedFields(nil)
	obj.SetSelfLink("")
	if res.status && !res.keepStatusOnCreate {
		st := fieldOf(obj, "Status")
		st.Set(reflect.Zero(st.Type()))
	}
	switch o := obj.(type) {
	case *batchv1.Job:
		generateJobSelector(o)
	case *corev1.Namespace:
		// A namespace starts Active, held by the finalizer that the
		// namespace controller removes once the namespace is empty.
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
}

// finishCreate runs after defaulting, for what depends on defaulted fields.
func finishCreate(obj object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&o.Spec)}
	case *corev1.PersistentVolumeClaim:
		// A claim starts Pending until the volume binding loop binds it.
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	case *corev1.PersistentVolume:
		o.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
	}
}

// Labels that tie a Job to its pods when the selector is generated.
const (
	jobUIDLabel       = "batch.kubernetes.io/controller-uid"
	jobNameLabel      = "batch.kubernetes.io/job-name"
	legacyJobUIDLabel = "controller-uid"
	legacyJobName     = "job-name"
)

// generateJobSelector gives a Job a selector of its own UID, as Kubernetes
// does unless the user manages the selector (spec.manualSelector).
func generateJobSelector(job *batchv1.Job) {
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector {
		return
	}
	uid := string(job.UID)
	labels := job.Spec.Template.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	labels[jobUIDLabel] = uid
	labels[jobNameLabel] = job.Name
	labels[legacyJobUIDLabel] = uid
	labels[legacyJobName] = job.Name
	job.Spec.Template.Labels = labels
	job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{jobUIDLabel: uid}}
}

// qosClass follows the Kubernetes rules: Guaranteed when every container
// has equal CPU and memory requests and limits, BestEffort when none has
// any, Burstable otherwise.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	any, guaranteed := false, true
	for _, c := range containers {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim {
				guaranteed = false
				continue
			}
			if hasReq && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// prepareUpdate carries over from old what an update may not change, and
// splits spec from status between the main endpoint and /status.
func prepareUpdate(res *resource, obj, old object, subresource string) {
	rv := obj.GetResourceVersion()
	switch subresource {
	case "status":
		// Only status changes: everything else comes from the stored object.
		om := fieldOf(obj, "ObjectMeta")
		om.Set(fieldOf(old, "ObjectMeta"))
		if sp := fieldOf(obj, "Spec"); sp.IsValid() {
			sp.Set(fieldOf(old, "Spec"))
		}
		obj.SetResourceVersion(rv)
		return
	case "finalize":
		ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
		fin := ns.Spec.Finalizers
		*ns = *oldNS.DeepCopy()
		ns.Spec.Finalizers = fin
		obj.SetResourceVersion(rv)
		return
	}
	obj.SetUID(old.GetUID())
	obj.SetCreationTimestamp(old.GetCreationTimestamp())
	obj.SetDeletionTimestamp(old.GetDeletionTimestamp())
	obj.SetDeletionGracePeriodSeconds(old.GetDeletionGracePeriodSeconds())
	obj.SetGeneration(old.GetGeneration())
	obj.SetManagedFields(nil)
	obj.SetSelfLink("")
	if res.status {
		st := fieldOf(obj, "Status")
		st.Set(fieldOf(old, "Status"))
	}
	if svc, ok := obj.(*corev1.Service); ok {
		keepAllocations(svc, old.(*corev1.Service))
		dropTypeDependentFields(svc, old.(*corev1.Service))
	}
}

// keepAllocations carries a Service's allocated cluster IPs and node ports
// over an update that leaves them out, as a client replacing the object
// with its manifest does.
func keepAllocations(svc, old *corev1.Service) {
	if svc.Spec.ClusterIP == "" && svc.Spec.Type != corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		if len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, op := range old.Spec.Ports {
			if op.Port == p.Port && orTCP(op.Protocol) == orTCP(p.Protocol) {
				p.NodePort = op.NodePort
			}
		}
	}
}

// bumpGeneration increments metadata.generation when the spec changed. It
// runs after defaulting, so defaults never count as a change.
func bumpGeneration(res *resource, obj, old object) {
	if !res.generation {
		return
	}
	sp, oldSp := fieldOf(obj, "Spec"), fieldOf(old, "Spec")
	if !sp.IsValid() {
		return
	}
	if !apiequality.Semantic.DeepEqual(sp.Interface(), oldSp.Interface()) {
		obj.SetGeneration(old.GetGeneration() + 1)
	}
}

func parseRV(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}
