package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

func startWithVolumes(t *testing.T) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	ctx := context.Background()
	cs := env.Client
	pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  "pvc-1",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pvc.Spec.AccessModes,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "waiting"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			StorageClassName: storageClassPtr("local"),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              "local",
			ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data", UID: pvc.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/orch/volumes/pvc-1"}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
			}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv.Status.Phase = corev1.VolumeBound
	if _, err := cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return env
}

func storageClassPtr(s string) *string { return &s }

func TestGetStorageTables(t *testing.T) {
	env := startWithVolumes(t)
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"get", "pvc"}, want: []string{
			"NAME      STATUS    VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   AGE",
			"data      Bound     pvc-1    1Gi        RWO            <unset>        AGE",
			"waiting   Pending                                      local          AGE",
		}},
		{args: []string{"get", "pv"}, want: []string{
			"NAME    CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS   CLAIM          STORAGECLASS   REASON   AGE",
			"pvc-1   1Gi        RWO            Delete           Bound    default/data   local                   AGE",
		}},
		{args: []string{"get", "sc"}, want: []string{
			"NAME              PROVISIONER      RECLAIMPOLICY   VOLUMEBINDINGMODE      ALLOWVOLUMEEXPANSION   AGE",
			"local (default)   orch.dev/local   Delete          WaitForFirstConsumer   false                  AGE",
		}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := mustSucceed(t, env, "", tc.args...)
			matchTable(t, r.stdout, tc.want...)
		})
	}
}

func TestDescribeStorage(t *testing.T) {
	env := startWithVolumes(t)
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"describe", "pvc", "data"}, want: []string{"StorageClass:", "Status:", "Bound", "Volume:", "pvc-1", "Capacity:", "1Gi", "Access Modes:", "RWO"}},
		{args: []string{"describe", "pv", "pvc-1"}, want: []string{"Claim:", "default/data", "Reclaim Policy:", "Delete", "kubernetes.io/hostname in [n1]", "LocalVolume", "/var/lib/orch/volumes/pvc-1"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := mustSucceed(t, env, "", tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Fatalf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}
