package controller

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotations and finalizers of persistent volumes, as Kubernetes names
// them so that tools reading them recognise them.
const (
	// AnnSelectedNode on a claim names the node the scheduler chose for
	// the claim's first pod; a WaitForFirstConsumer volume is made there.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnProvisionedBy on a volume names the provisioner that made it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnBindCompleted on a claim says the binding loop has bound it.
	AnnBindCompleted = "pv.kubernetes.io/bind-completed"
	// AnnDefaultStorageClass marks the class claims without one get.
	AnnDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	// LocalProvisioner provisions the built-in "local" class: node-local
	// volumes, made by the volume binding loop.
	LocalProvisioner = "orch.dev/local"
	// PVCProtectionFinalizer keeps a claim that a pod uses until the pod
	// is gone.
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
)

// NodeSelectorMatches reports whether node satisfies at least one term of
// sel, with the rules of a pod's required node affinity. A nil selector
// matches every node.
func NodeSelectorMatches(sel *corev1.NodeSelector, node *corev1.Node) bool {
	if sel == nil {
		return true
	}
	for i := range sel.NodeSelectorTerms {
		if nodeSelectorTermMatches(&sel.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// ClaimNames lists the claims the pod's volumes name, in volume order.
func ClaimNames(spec *corev1.PodSpec) []string {
	var out []string
	for i := range spec.Volumes {
		if c := spec.Volumes[i].PersistentVolumeClaim; c != nil && c.ClaimName != "" {
			out = append(out, c.ClaimName)
		}
	}
	return out
}

// DefaultStorageClass returns the class annotated as the default, the
// newest when several are (as Kubernetes chooses), or nil.
func DefaultStorageClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, sc := range classes {
		if sc.Annotations[AnnDefaultStorageClass] != "true" {
			continue
		}
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}

// ClaimClassName is the storage class a claim asks for: its own, or, when
// it names none (nil), the default class's name ("" when there is none).
// An explicit empty class asks for no class: a volume made by hand.
func ClaimClassName(pvc *corev1.PersistentVolumeClaim, classes []*storagev1.StorageClass) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	if sc := DefaultStorageClass(classes); sc != nil {
		return sc.Name
	}
	return ""
}

// AnnBoundByController on a claim or volume says the binding loop, not
// the user, paired them.
const AnnBoundByController = "pv.kubernetes.io/bound-by-controller"

// MatchVolume picks, among pvs, the volume a claim of class className
// binds to, as Kubernetes' binder does: a volume already reserved for
// this claim (claimRef) first; else the smallest Available volume of the
// same class and volume mode with every requested access mode, at least
// the requested capacity, the labels the claim's selector asks for and,
// when node is given, a node affinity that admits the node. It returns
// nil when none fits.
func MatchVolume(pvc *corev1.PersistentVolumeClaim, className string, pvs []*corev1.PersistentVolume, node *corev1.Node) *corev1.PersistentVolume {
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		if !VolumeFits(pvc, className, pv) {
			continue
		}
		if node != nil && pv.Spec.NodeAffinity != nil && !NodeSelectorMatches(pv.Spec.NodeAffinity.Required, node) {
			continue
		}
		if ref := pv.Spec.ClaimRef; ref != nil {
			return pv // reserved for this claim (VolumeFits checked it)
		}
		if best == nil || pv.Spec.Capacity.Storage().Cmp(*best.Spec.Capacity.Storage()) < 0 ||
			(pv.Spec.Capacity.Storage().Cmp(*best.Spec.Capacity.Storage()) == 0 && pv.Name < best.Name) {
			best = pv
		}
	}
	return best
}

// VolumeFits reports whether pv can serve the claim, wherever it is: it is
// reserved for the claim, or free (Available, not being deleted) and of the
// claim's class, volume mode, access modes, size and selector.
func VolumeFits(pvc *corev1.PersistentVolumeClaim, className string, pv *corev1.PersistentVolume) bool {
	if pv.DeletionTimestamp != nil {
		return false
	}
	if ref := pv.Spec.ClaimRef; ref != nil {
		return ref.Namespace == pvc.Namespace && ref.Name == pvc.Name && (ref.UID == "" || ref.UID == pvc.UID)
	}
	if pv.Status.Phase != corev1.VolumeAvailable || pv.Spec.StorageClassName != className {
		return false
	}
	if modeOf(pv.Spec.VolumeMode) != modeOf(pvc.Spec.VolumeMode) {
		return false
	}
	for _, m := range pvc.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return false
		}
	}
	if want, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok && pv.Spec.Capacity.Storage().Cmp(want) < 0 {
		return false
	}
	if pvc.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	return true
}

func modeOf(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}
