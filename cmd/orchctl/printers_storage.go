package main

import (
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// The tables of claims, volumes and storage classes, with kubectl's
// columns.
func init() {
	printers[corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")] = &printer{
		columns: []string{"STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"},
		wide:    []string{"VOLUMEMODE"}, row: rowFunc(claimRow)}
	printers[corev1.SchemeGroupVersion.WithKind("PersistentVolume")] = &printer{
		columns: []string{"CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "REASON", "AGE"},
		wide:    []string{"VOLUMEMODE"}, row: rowFunc(volumeRow)}
	printers[storagev1.SchemeGroupVersion.WithKind("StorageClass")] = &printer{
		columns: []string{"PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"},
		row:     rowFunc(storageClassRow)}
	kindsForCompletion = append(kindsForCompletion, "persistentvolumeclaims", "persistentvolumes", "storageclasses")
}

// accessModes is kubectl's short form: RWO,ROX,RWX,RWOP.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX", corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP",
	}
	var out []string
	for _, m := range modes {
		if s, ok := short[m]; ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

func volumeModeOf(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return string(corev1.PersistentVolumeFilesystem)
	}
	return string(*m)
}

func claimRow(c *corev1.PersistentVolumeClaim, now time.Time) (cells, wide []string) {
	capacity := ""
	if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
		capacity = q.String()
	}
	class := ""
	if c.Spec.StorageClassName != nil {
		class = *c.Spec.StorageClassName
	}
	phase := string(c.Status.Phase)
	if c.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	return []string{phase, c.Spec.VolumeName, capacity, accessModes(c.Status.AccessModes), orNoneString(class), age(c.CreationTimestamp, now)},
		[]string{volumeModeOf(c.Spec.VolumeMode)}
}

func volumeRow(v *corev1.PersistentVolume, now time.Time) (cells, wide []string) {
	capacity := ""
	if q, ok := v.Spec.Capacity[corev1.ResourceStorage]; ok {
		capacity = q.String()
	}
	claim := ""
	if ref := v.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	phase := string(v.Status.Phase)
	if v.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	return []string{capacity, accessModes(v.Spec.AccessModes), string(v.Spec.PersistentVolumeReclaimPolicy), phase, claim,
			v.Spec.StorageClassName, v.Status.Reason, age(v.CreationTimestamp, now)},
		[]string{volumeModeOf(v.Spec.VolumeMode)}
}

func storageClassRow(sc *storagev1.StorageClass, now time.Time) (cells, wide []string) {
	reclaim, mode := string(corev1.PersistentVolumeReclaimDelete), string(storagev1.VolumeBindingImmediate)
	if sc.ReclaimPolicy != nil {
		reclaim = string(*sc.ReclaimPolicy)
	}
	if sc.VolumeBindingMode != nil {
		mode = string(*sc.VolumeBindingMode)
	}
	expand := "false"
	if sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion {
		expand = "true"
	}
	return []string{sc.Provisioner, reclaim, mode, expand, age(sc.CreationTimestamp, now)}, nil
}

// defaultClassSuffix is " (default)" for the StorageClass annotated as the
// default one, as kubectl shows its name.
func defaultClassSuffix(u *unstructured.Unstructured) string {
	if u.GroupVersionKind() == storagev1.SchemeGroupVersion.WithKind("StorageClass") &&
		u.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] == "true" {
		return " (default)"
	}
	return ""
}

func orNoneString(s string) string {
	if s == "" {
		return "<unset>"
	}
	return s
}

// storage describes claims and volumes; it reports false for other kinds.
func (d *describer) storage(obj runtime.Object) bool {
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		class := "<unset>"
		if o.Spec.StorageClassName != nil {
			class = *o.Spec.StorageClassName
		}
		d.kv(0, "StorageClass", class)
		d.kv(0, "Status", string(o.Status.Phase))
		d.kv(0, "Volume", o.Spec.VolumeName)
		if n := o.Annotations["volume.kubernetes.io/selected-node"]; n != "" {
			d.kv(0, "Selected Node", n)
		}
		d.kv(0, "Finalizers", "["+strings.Join(o.Finalizers, ", ")+"]")
		if q, ok := o.Status.Capacity[corev1.ResourceStorage]; ok {
			d.kv(0, "Capacity", q.String())
		} else {
			d.kv(0, "Capacity", "")
		}
		d.kv(0, "Access Modes", accessModes(o.Status.AccessModes))
		d.kv(0, "VolumeMode", volumeModeOf(o.Spec.VolumeMode))
		if q, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			d.kv(0, "Requested", q.String())
		}
		return true
	case *corev1.PersistentVolume:
		d.kv(0, "Finalizers", "["+strings.Join(o.Finalizers, ", ")+"]")
		d.kv(0, "StorageClass", o.Spec.StorageClassName)
		d.kv(0, "Status", string(o.Status.Phase))
		claim := ""
		if ref := o.Spec.ClaimRef; ref != nil {
			claim = ref.Namespace + "/" + ref.Name
		}
		d.kv(0, "Claim", claim)
		d.kv(0, "Reclaim Policy", string(o.Spec.PersistentVolumeReclaimPolicy))
		d.kv(0, "Access Modes", accessModes(o.Spec.AccessModes))
		d.kv(0, "VolumeMode", volumeModeOf(o.Spec.VolumeMode))
		if q, ok := o.Spec.Capacity[corev1.ResourceStorage]; ok {
			d.kv(0, "Capacity", q.String())
		}
		if na := o.Spec.NodeAffinity; na != nil && na.Required != nil {
			d.head(0, "Node Affinity")
			d.head(1, "Required Terms")
			for _, term := range na.Required.NodeSelectorTerms {
				var exprs []string
				for _, r := range term.MatchExpressions {
					vals := append([]string(nil), r.Values...)
					sort.Strings(vals)
					exprs = append(exprs, r.Key+" "+strings.ToLower(string(r.Operator))+" ["+strings.Join(vals, ", ")+"]")
				}
				d.kv(2, "Term", strings.Join(exprs, ", "))
			}
		}
		d.head(0, "Source")
		switch {
		case o.Spec.Local != nil:
			d.kv(1, "Type", "LocalVolume (a persistent volume backed by local storage on a node)")
			d.kv(1, "Path", o.Spec.Local.Path)
		case o.Spec.HostPath != nil:
			d.kv(1, "Type", "HostPath (bare host directory volume)")
			d.kv(1, "Path", o.Spec.HostPath.Path)
		}
		return true
	}
	return false
}
