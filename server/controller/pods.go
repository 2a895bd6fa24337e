package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons shared by the controllers that manage pods.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// NewRecorder starts an event broadcaster writing to the API for component
// and returns its recorder and the function that stops it. Repeated events
// are aggregated and counted, as in Kubernetes.
func NewRecorder(client kubernetes.Interface, component string) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}), b.Shutdown
}

// PodControl creates and deletes pods on behalf of an owner, recording an
// event on the owner for each.
type PodControl struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// PodFromTemplate is a new pod for owner from template: the template's
// labels, annotations, finalizers and spec, a name generated from the
// owner's, and owner as its controller.
func PodFromTemplate(template *corev1.PodTemplateSpec, owner metav1.Object, ownerKind schema.GroupVersionKind) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    owner.GetName() + "-",
			Namespace:       owner.GetNamespace(),
			Labels:          copyMap(template.Labels),
			Annotations:     copyMap(template.Annotations),
			Finalizers:      append([]string(nil), template.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, ownerKind)},
		},
	}
	template.Spec.DeepCopyInto(&pod.Spec)
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Create creates pod and records SuccessfulCreate or FailedCreate on owner.
func (c PodControl) Create(ctx context.Context, pod *corev1.Pod, owner runtime.Object) (*corev1.Pod, error) {
	created, err := c.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			c.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return nil, err
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %s", created.Name)
	return created, nil
}

// Delete deletes pod (with its own grace period) and records
// SuccessfulDelete or FailedDelete on owner. A pod already gone is not an
// error.
func (c PodControl) Delete(ctx context.Context, pod *corev1.Pod, owner runtime.Object) error {
	uid := pod.UID
	err := c.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		if ctx.Err() == nil {
			c.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		}
		return err
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %s", pod.Name)
	return nil
}

// ClaimPods sorts pods into the ones owner controls after adoption and
// release: pods owner controls whose labels stopped matching selector are
// released (owner reference removed), and pods without a controller whose
// labels match are adopted, unless owner is being deleted. Pods controlled
// by something else are never touched.
func ClaimPods(ctx context.Context, client kubernetes.Interface, owner metav1.Object, ownerKind schema.GroupVersionKind, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	var errs []error
	for _, pod := range pods {
		ref := metav1.GetControllerOfNoCopy(pod)
		matches := selector.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID != owner.GetUID():
			continue
		case ref != nil && matches:
			owned = append(owned, pod)
		case ref != nil:
			if pod.DeletionTimestamp != nil {
				continue
			}
			if _, err := setController(ctx, client, pod, nil); err != nil {
				errs = append(errs, fmt.Errorf("release pod %s: %w", pod.Name, err))
			}
		case matches && owner.GetDeletionTimestamp() == nil && pod.DeletionTimestamp == nil:
			adopted, err := setController(ctx, client, pod, metav1.NewControllerRef(owner, ownerKind))
			if err != nil {
				errs = append(errs, fmt.Errorf("adopt pod %s: %w", pod.Name, err))
				continue
			}
			owned = append(owned, adopted)
		}
	}
	if len(errs) > 0 {
		return owned, errs[0]
	}
	return owned, nil
}

// setController replaces pod's controller reference with ref (nil removes
// it), guarded by the pod's resourceVersion.
func setController(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, ref *metav1.OwnerReference) (*corev1.Pod, error) {
	p := pod.DeepCopy()
	var refs []metav1.OwnerReference
	for _, r := range p.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			refs = append(refs, r)
		}
	}
	if ref != nil {
		refs = append(refs, *ref)
	}
	p.OwnerReferences = refs
	out, err := client.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return pod, nil
	}
	return out, err
}

// IsPodActive reports whether pod counts toward its owner's replicas: not
// finished and not being deleted.
func IsPodActive(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil
}

// PodReadyCondition is pod's Ready condition, or nil.
func PodReadyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady reports whether pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := PodReadyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable reports whether pod has been Ready for at least
// minReadySeconds at now.
func IsPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := PodReadyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

// SortForDeletion orders pods so the ones to delete first come first, as
// Kubernetes ranks them: not on a node before on a node, Pending before
// Unknown before Running, not Ready before Ready, Ready for less time
// before longer, more restarts before fewer, newer before older.
func SortForDeletion(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return deleteFirst(pods[i], pods[j]) })
}

func deleteFirst(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	rank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	if ra, rb := rank[a.Status.Phase], rank[b.Status.Phase]; ra != rb {
		return ra < rb
	}
	if IsPodReady(a) != IsPodReady(b) {
		return !IsPodReady(a)
	}
	if IsPodReady(a) {
		ta, tb := PodReadyCondition(a).LastTransitionTime, PodReadyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return tb.Before(&ta)
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}
