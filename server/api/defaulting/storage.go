package defaulting

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// defaultPVC completes a claim's spec as Kubernetes does. The storage
// class is not defaulted here: a claim without one gets the default class
// when it is bound.
func defaultPVC(pvc *corev1.PersistentVolumeClaim) {
	defaultPVCSpec(&pvc.Spec)
}

// defaultPV keeps a volume's data unless told otherwise, as Kubernetes does
// for volumes created by hand.
func defaultPV(pv *corev1.PersistentVolume) {
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
	}
	defaultResourceList(pv.Spec.Capacity)
}

func defaultStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimDelete)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = ptrTo(storagev1.VolumeBindingImmediate)
	}
}
