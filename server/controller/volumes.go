package controller

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
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
