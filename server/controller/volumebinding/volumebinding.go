// Package volumebinding is the control loop of persistent volumes: it
// provisions node-local volumes for claims of the built-in "local" class
// once the scheduler has chosen a node for the claim's first pod, binds
// claims and volumes to each other, releases and deletes volumes whose
// claims are gone, and keeps a claim that pods use until they are gone
// (the kubernetes.io/pvc-protection finalizer).
package volumebinding

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/server/controller"
)

// LocalProvisioner is the provisioner of the built-in "local" class.
const LocalProvisioner = controller.LocalProvisioner

// LocalVolumeRoot is where, under the default data dir, agents keep the
// volumes of the local provisioner. A provisioned volume's spec.local.path
// is LocalVolumeRoot/<volume name>; an agent with another data dir keeps
// the volume at <data-dir>/volumes/<volume name> (the agent recognises the
// volume by its pv.kubernetes.io/provisioned-by annotation).
const LocalVolumeRoot = "/var/lib/orch/volumes"

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
}

// Controller binds claims and volumes.
type Controller struct {
	deps     Deps
	claims   corelisters.PersistentVolumeClaimLister
	pvs      corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
}

// Queue keys: "claim/<ns>/<name>" and "volume/<name>".
const (
	claimPrefix  = "claim/"
	volumePrefix = "volume/"
)

// New builds the controller and registers its informers on the factory.
func New(deps Deps) *Controller {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	pvInf := deps.Informers.Core().V1().PersistentVolumes()
	classInf := deps.Informers.Storage().V1().StorageClasses()
	podInf := deps.Informers.Core().V1().Pods()
	nodeInf := deps.Informers.Core().V1().Nodes()
	c := &Controller{
		deps:    deps,
		claims:  claimInf.Lister(),
		pvs:     pvInf.Lister(),
		classes: classInf.Lister(),
		pods:    podInf.Lister(),
		nodes:   nodeInf.Lister(),
		synced: []cache.InformerSynced{claimInf.Informer().HasSynced, pvInf.Informer().HasSynced, classInf.Informer().HasSynced,
			podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue:    controller.NewQueue("volumebinding"),
		recorder: &record.FakeRecorder{}, // replaced by Run
	}
	// The registration handles are not needed: the handlers live as long
	// as the factory.
	_, _ = claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimChanged,
		UpdateFunc: func(_, obj any) { c.claimChanged(obj) },
		DeleteFunc: c.claimChanged,
	})
	_, _ = pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.volumeChanged,
		UpdateFunc: func(_, obj any) { c.volumeChanged(obj) },
		DeleteFunc: c.volumeChanged,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: func(_, obj any) { c.podChanged(obj) },
		DeleteFunc: c.podChanged,
	})
	return c
}

// Run binds until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "volumebinding-controller")
	defer stop()
	c.recorder = rec
	loop := controller.Loop{Name: "volumebinding", Queue: c.queue, Sync: c.sync, Workers: 2, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

func (c *Controller) claimChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	c.queue.Add(claimPrefix + pvc.Namespace + "/" + pvc.Name)
	if pvc.Spec.VolumeName != "" {
		c.queue.Add(volumePrefix + pvc.Spec.VolumeName)
	}
	// A claim gone releases the volumes that pointed at it.
	if pvs, err := c.pvs.List(labels.Everything()); err == nil {
		for _, pv := range pvs {
			if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name {
				c.queue.Add(volumePrefix + pv.Name)
			}
		}
	}
}

func (c *Controller) volumeChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	c.queue.Add(volumePrefix + pv.Name)
	if ref := pv.Spec.ClaimRef; ref != nil {
		c.queue.Add(claimPrefix + ref.Namespace + "/" + ref.Name)
		return
	}
	// A free volume: the claims waiting for one look again.
	claims, _ := c.claims.List(labels.Everything())
	for _, pvc := range claims {
		if pvc.Spec.VolumeName == "" && pvc.DeletionTimestamp == nil {
			c.queue.Add(claimPrefix + pvc.Namespace + "/" + pvc.Name)
		}
	}
}

// podChanged looks again at the claims a pod uses: a claim being deleted
// waits for its pods.
func (c *Controller) podChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, name := range controller.ClaimNames(&pod.Spec) {
		c.queue.Add(claimPrefix + pod.Namespace + "/" + name)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	switch {
	case strings.HasPrefix(key, claimPrefix):
		ns, name, err := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, claimPrefix))
		if err != nil {
			return nil // a malformed key cannot get better
		}
		return c.syncClaim(ctx, ns, name)
	case strings.HasPrefix(key, volumePrefix):
		return c.syncVolume(ctx, strings.TrimPrefix(key, volumePrefix))
	}
	return nil
}

// syncClaim protects, provisions and binds one claim.
func (c *Controller) syncClaim(ctx context.Context, ns, name string) error {
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // its volumes are released by syncVolume
	}
	if err != nil {
		return err
	}
	if pvc.DeletionTimestamp != nil {
		return c.releaseProtection(ctx, pvc)
	}
	if !slices.Contains(pvc.Finalizers, controller.PVCProtectionFinalizer) {
		upd := pvc.DeepCopy()
		upd.Finalizers = append(upd.Finalizers, controller.PVCProtectionFinalizer)
		if _, err := c.deps.Client.CoreV1().PersistentVolumeClaims(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return ignoreGone(err)
		}
		return nil // the update brings the claim back
	}
	if pvc.Spec.VolumeName != "" {
		return c.syncBoundClaim(ctx, pvc)
	}
	classes, _ := c.classes.List(labels.Everything()) // listers do not fail
	className := controller.ClaimClassName(pvc, classes)
	// A class without a StorageClass object still matches volumes of that
	// class name (bound at once, never provisioned), as in Kubernetes.
	var class *storagev1.StorageClass
	if className != "" {
		class, _ = c.classes.Get(className)
	}
	// A WaitForFirstConsumer claim is bound once the scheduler has chosen
	// the node of its first pod, to a volume there; others at once.
	var node *corev1.Node
	nodeName := pvc.Annotations[controller.AnnSelectedNode]
	if class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		if nodeName == "" {
			return nil // waits for its first pod to be scheduled
		}
		if node, err = c.nodes.Get(nodeName); err != nil {
			// Not (yet) in the cache: only volumes without a node
			// affinity, or naming the node, can match.
			node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
		}
	}
	// A volume made beforehand that fits comes first.
	pvs, _ := c.pvs.List(labels.Everything())
	if pv := controller.MatchVolume(pvc, className, pvs, node); pv != nil {
		return c.bind(ctx, pvc, pv)
	}
	if class == nil || class.Provisioner != LocalProvisioner || nodeName == "" {
		return nil // waits for a volume that fits
	}
	return c.provision(ctx, pvc, class, nodeName)
}

// bind pairs a claim with a volume made beforehand: the volume is reserved
// for the claim first (an update that only one claim can win), then the
// claim names it.
func (c *Controller) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID == "" {
		upd := pv.DeepCopy()
		upd.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		if pv.Spec.ClaimRef == nil {
			upd.Annotations[controller.AnnBoundByController] = "yes"
		}
		if _, err := c.deps.Client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return ignoreGone(err)
		}
	}
	upd := pvc.DeepCopy()
	upd.Spec.VolumeName = pv.Name
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	upd.Annotations[controller.AnnBindCompleted] = "yes"
	upd.Annotations[controller.AnnBoundByController] = "yes"
	if _, err := c.deps.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return ignoreGone(err)
	}
	c.deps.Logger.Info("bound claim to volume", "claim", pvc.Namespace+"/"+pvc.Name, "volume", pv.Name)
	return nil // the update brings the claim back to set its status
}

// provision makes the volume of a claim on the chosen node, then binds the
// claim to it.
func (c *Controller) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node string) error {
	name := "pvc-" + string(pvc.UID)
	pv, err := c.pvs.Get(name)
	if apierrors.IsNotFound(err) {
		pv, err = c.deps.Client.CoreV1().PersistentVolumes().Create(ctx, localVolume(name, pvc, class, node), metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			pv, err = c.deps.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
		case err != nil:
			c.recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", class.Name, err)
			return err
		default:
			c.recorder.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s on node %s", name, node)
		}
	} else if err != nil {
		return err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return fmt.Errorf("volume %s is not for claim %s/%s", name, pvc.Namespace, pvc.Name)
	}
	upd := pvc.DeepCopy()
	upd.Spec.VolumeName = pv.Name
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	upd.Annotations[controller.AnnBindCompleted] = "yes"
	if _, err := c.deps.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return ignoreGone(err)
	}
	return nil // the update brings the claim back to set its status
}

// localVolume is the volume the local provisioner makes for a claim.
func localVolume(name string, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node string) *corev1.PersistentVolume {
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{controller.AnnProvisionedBy: LocalProvisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			MountOptions:                  class.MountOptions,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: LocalVolumeRoot + "/" + name}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// syncBoundClaim completes the binding of a claim that names its volume:
// the volume points back at the claim, and the claim's status says Bound
// (or Lost when its volume is gone).
func (c *Controller) syncBoundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	pv, err := c.pvs.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		if pvc.Status.Phase == corev1.ClaimBound {
			c.recorder.Eventf(pvc, corev1.EventTypeWarning, "ClaimLost", "Bound claim has lost its PersistentVolume %s", pvc.Spec.VolumeName)
			return c.setClaimStatus(ctx, pvc, corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimLost})
		}
		return nil
	}
	if err != nil {
		return err
	}
	ref := pv.Spec.ClaimRef
	switch {
	case ref == nil:
		// A claim made for a volume by name: the volume is bound to it.
		upd := pv.DeepCopy()
		upd.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID}
		_, err := c.deps.Client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{})
		return ignoreGone(err)
	case ref.Namespace != pvc.Namespace || ref.Name != pvc.Name || (ref.UID != "" && ref.UID != pvc.UID):
		return nil // the volume belongs to another claim; this one stays Pending
	}
	return c.setClaimStatus(ctx, pvc, corev1.PersistentVolumeClaimStatus{
		Phase:       corev1.ClaimBound,
		AccessModes: pv.Spec.AccessModes,
		Capacity:    pv.Spec.Capacity,
	})
}

func (c *Controller) setClaimStatus(ctx context.Context, pvc *corev1.PersistentVolumeClaim, st corev1.PersistentVolumeClaimStatus) error {
	want := pvc.Status.DeepCopy()
	want.Phase, want.AccessModes, want.Capacity = st.Phase, st.AccessModes, st.Capacity
	if controllerEqual(&pvc.Status, want) {
		return nil
	}
	upd := pvc.DeepCopy()
	upd.Status = *want
	_, err := c.deps.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return ignoreGone(err)
}

// releaseProtection lets a claim being deleted go once no running pod uses
// it.
func (c *Controller) releaseProtection(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if !slices.Contains(pvc.Finalizers, controller.PVCProtectionFinalizer) {
		return nil
	}
	cached, err := c.pods.Pods(pvc.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	if claimInUse(pvc.Name, cached) {
		return nil // the pod's deletion brings the claim back
	}
	// The cache may not show a pod created just before the claim was
	// deleted: the API has the last word before the claim goes.
	live, err := c.deps.Client.CoreV1().Pods(pvc.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pods := make([]*corev1.Pod, len(live.Items))
	for i := range live.Items {
		pods[i] = &live.Items[i]
	}
	if claimInUse(pvc.Name, pods) {
		return nil // the pod reaches the cache, and its deletion brings the claim back
	}
	upd := pvc.DeepCopy()
	upd.Finalizers = slices.DeleteFunc(upd.Finalizers, func(f string) bool { return f == controller.PVCProtectionFinalizer })
	_, err = c.deps.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
	return ignoreGone(err)
}

// claimInUse reports whether a pod that has not finished mounts the claim.
func claimInUse(claim string, pods []*corev1.Pod) bool {
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if slices.Contains(controller.ClaimNames(&pod.Spec), claim) {
			return true
		}
	}
	return false
}

// syncVolume keeps a volume's phase and reclaims it when its claim is gone.
func (c *Controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.pvs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.DeletionTimestamp != nil {
		return nil
	}
	ref := pv.Spec.ClaimRef
	if ref == nil {
		if pv.Status.Phase == corev1.VolumePending || pv.Status.Phase == "" {
			return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable)
		}
		return nil
	}
	pvc, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil && (ref.UID == "" || pvc.UID == ref.UID) {
		if pvc.Spec.VolumeName == pv.Name {
			return c.setVolumePhase(ctx, pv, corev1.VolumeBound)
		}
		return nil // the claim is being bound
	}
	// The claim is gone (or replaced by a new one of the same name).
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimDelete:
		err := c.deps.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pv.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			c.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "failed to delete volume: %v", err)
			return err
		}
		c.deps.Logger.Info("deleted released volume", "volume", pv.Name, "claim", ref.Namespace+"/"+ref.Name)
		return nil
	default:
		if pv.Status.Phase != corev1.VolumeReleased {
			c.recorder.Eventf(pv, corev1.EventTypeNormal, "VolumeReleased", "claim %s/%s is gone; the volume keeps its data (reclaim policy %s)", ref.Namespace, ref.Name, pv.Spec.PersistentVolumeReclaimPolicy)
		}
		return c.setVolumePhase(ctx, pv, corev1.VolumeReleased)
	}
}

func (c *Controller) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	if pv.Status.Phase == phase {
		return nil
	}
	upd := pv.DeepCopy()
	upd.Status.Phase = phase
	upd.Status.Message = ""
	now := metav1.NewTime(c.deps.Clock.Now())
	upd.Status.LastPhaseTransitionTime = &now
	_, err := c.deps.Client.CoreV1().PersistentVolumes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return ignoreGone(err)
}

// ignoreGone treats an object deleted meanwhile as done, and a conflict as
// something the next event resolves.
func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
