package api

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func claim(name, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse(size)}},
		},
	}
}

func localPV(name, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse("1Gi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/srv/data"}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// invalidFields returns the field paths of an Invalid error's causes.
func invalidFields(err error) []string {
	var out []string
	if st, ok := err.(apierrors.APIStatus); ok && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			out = append(out, c.Field)
		}
	}
	return out
}

func TestStorageCreateValidation(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	tests := []struct {
		name   string
		create func() error
		want   []string // field paths of the Invalid error; nil: accepted
	}{
		{name: "claim", create: func() error {
			_, err := e.client.CoreV1().PersistentVolumeClaims("default").Create(c, claim("data", "1Gi"), metav1.CreateOptions{})
			return err
		}},
		{name: "claim without size or modes", create: func() error {
			pvc := claim("bad", "1Gi")
			pvc.Spec.AccessModes = nil
			pvc.Spec.Resources.Requests = nil
			_, err := e.client.CoreV1().PersistentVolumeClaims("default").Create(c, pvc, metav1.CreateOptions{})
			return err
		}, want: []string{"spec.accessModes", "spec.resources.requests[storage]"}},
		{name: "claim with bad mode and class", create: func() error {
			pvc := claim("bad2", "1Gi")
			pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadSometimes"}
			pvc.Spec.StorageClassName = ptr.To("Not_A_Name")
			_, err := e.client.CoreV1().PersistentVolumeClaims("default").Create(c, pvc, metav1.CreateOptions{})
			return err
		}, want: []string{"spec.accessModes[0]", "spec.storageClassName"}},
		{name: "local volume", create: func() error {
			_, err := e.client.CoreV1().PersistentVolumes().Create(c, localPV("vol1", "n1"), metav1.CreateOptions{})
			return err
		}},
		{name: "local volume without node affinity or capacity", create: func() error {
			pv := localPV("vol2", "n1")
			pv.Spec.NodeAffinity = nil
			pv.Spec.Capacity = nil
			pv.Spec.Local.Path = "relative"
			_, err := e.client.CoreV1().PersistentVolumes().Create(c, pv, metav1.CreateOptions{})
			return err
		}, want: []string{"spec.capacity[storage]", "spec.local.path", "spec.nodeAffinity"}},
		{name: "volume without source", create: func() error {
			pv := localPV("vol3", "n1")
			pv.Spec.Local = nil
			pv.Spec.PersistentVolumeReclaimPolicy = "Recycle"
			_, err := e.client.CoreV1().PersistentVolumes().Create(c, pv, metav1.CreateOptions{})
			return err
		}, want: []string{"spec", "spec.persistentVolumeReclaimPolicy"}},
		{name: "storage class", create: func() error {
			_, err := e.client.StorageV1().StorageClasses().Create(c, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/fast"}, metav1.CreateOptions{})
			return err
		}},
		{name: "storage class without provisioner", create: func() error {
			mode := storagev1.VolumeBindingMode("Later")
			_, err := e.client.StorageV1().StorageClasses().Create(c, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, VolumeBindingMode: &mode}, metav1.CreateOptions{})
			return err
		}, want: []string{"provisioner", "volumeBindingMode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want it accepted", err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want Invalid", err)
			}
			got := invalidFields(err)
			slices.Sort(got)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got errors at %q, want at %q (%v)", got, tc.want, err)
			}
		})
	}
}

func TestStorageDefaultsAndUpdates(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pvcs := e.client.CoreV1().PersistentVolumeClaims("default")
	created, err := pvcs.Create(c, claim("data", "1Gi"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status.Phase != corev1.ClaimPending || created.Spec.VolumeMode == nil || *created.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Fatalf("got status %+v, volumeMode %v, want Pending and Filesystem", created.Status, created.Spec.VolumeMode)
	}
	pv, err := e.client.CoreV1().PersistentVolumes().Create(c, localPV("vol1", "n1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Status.Phase != corev1.VolumePending {
		t.Fatalf("got reclaim policy %q, phase %q, want Retain and Pending", pv.Spec.PersistentVolumeReclaimPolicy, pv.Status.Phase)
	}
	sc, err := e.client.StorageV1().StorageClasses().Create(c, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/fast"}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Fatalf("got %v %v, want Delete and Immediate", *sc.ReclaimPolicy, *sc.VolumeBindingMode)
	}

	t.Run("claim binds once and grows, never shrinks", func(t *testing.T) {
		cur := created.DeepCopy()
		cur.Spec.VolumeName = "vol1"
		cur, err := pvcs.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("bind: %v", err)
		}
		again := cur.DeepCopy()
		again.Spec.VolumeName = "other"
		if _, err := pvcs.Update(c, again, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("rebind: got %v, want Invalid", err)
		}
		shrink := cur.DeepCopy()
		shrink.Spec.Resources.Requests[corev1.ResourceStorage] = apiresource.MustParse("1Mi")
		if _, err := pvcs.Update(c, shrink, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("shrink: got %v, want Invalid", err)
		}
	})

	t.Run("status goes through the status subresource", func(t *testing.T) {
		cur, err := pvcs.Get(c, "data", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Phase = corev1.ClaimBound
		if cur, err = pvcs.Update(c, cur, metav1.UpdateOptions{}); err != nil || cur.Status.Phase != corev1.ClaimPending {
			t.Fatalf("main endpoint: got %v, %v, want the status unchanged", cur.Status.Phase, err)
		}
		cur.Status.Phase = corev1.ClaimBound
		if cur, err = pvcs.UpdateStatus(c, cur, metav1.UpdateOptions{}); err != nil || cur.Status.Phase != corev1.ClaimBound {
			t.Fatalf("status: got %v, %v, want Bound", cur.Status.Phase, err)
		}
	})

	t.Run("volume source is immutable", func(t *testing.T) {
		cur, err := e.client.CoreV1().PersistentVolumes().Get(c, "vol1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Local.Path = "/elsewhere"
		if _, err := e.client.CoreV1().PersistentVolumes().Update(c, cur, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid", err)
		}
	})

	t.Run("storage class provisioner is immutable", func(t *testing.T) {
		cur := sc.DeepCopy()
		cur.Provisioner = "example.com/other"
		if _, err := e.client.StorageV1().StorageClasses().Update(c, cur, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}

func TestDefaultStorageClassAndDiscovery(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	for range 2 { // idempotent
		if err := e.srv.EnsureDefaultStorageClass(c); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := e.client.StorageV1().StorageClasses().Get(c, LocalStorageClass, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Provisioner != LocalProvisioner || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		*sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || sc.Annotations[DefaultStorageClassAnnotation] != "true" {
		t.Fatalf("got %+v, want the local default class", sc)
	}
	core, err := e.client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	storage, err := e.client.Discovery().ServerResourcesForGroupVersion("storage.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	short := map[string]string{}
	for _, r := range append(core.APIResources, storage.APIResources...) {
		for _, s := range r.ShortNames {
			short[s] = r.Name
		}
	}
	for s, want := range map[string]string{"pvc": "persistentvolumeclaims", "pv": "persistentvolumes", "sc": "storageclasses"} {
		if short[s] != want {
			t.Errorf("short name %s: got %q, want %q", s, short[s], want)
		}
	}
}
