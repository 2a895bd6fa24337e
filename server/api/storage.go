package api

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/raftstore"
)

// The built-in storage class: volumes in a directory on the node that runs
// the claim's first pod.
const (
	LocalStorageClass = "local"
	LocalProvisioner  = "orch.dev/local"
	// DefaultStorageClassAnnotation marks the class claims without one get.
	DefaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class"
)

// LocalStorageClassObject is the StorageClass every cluster starts with.
func LocalStorageClassObject() *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        LocalStorageClass,
			Annotations: map[string]string{DefaultStorageClassAnnotation: "true"},
		},
		Provisioner:       LocalProvisioner,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &mode,
	}
}

// EnsureDefaultStorageClass creates the built-in "local" StorageClass unless
// a class of that name exists (a user's changes to it are kept). It is safe
// to call on every start of the leader.
func (s *Server) EnsureDefaultStorageClass(ctx context.Context) error {
	res := s.reg.lookup("storage.k8s.io", "v1", "storageclasses")
	sc := LocalStorageClassObject()
	key := res.key("", sc.Name)
	kv, _, err := s.store.Get(ctx, key, raftstore.ReadOptions{Linearizable: true})
	if err != nil {
		return fmt.Errorf("read storage class %s: %w", sc.Name, err)
	}
	if kv != nil {
		return nil
	}
	s.prepareCreate(res, sc)
	applyDefaults(sc)
	if errs := validateCreate(sc); len(errs) > 0 {
		return fmt.Errorf("storage class %s: %v", sc.Name, errs.ToAggregate())
	}
	stored, err := encodeForStore(res, sc)
	if err != nil {
		return err
	}
	_, err = s.store.Txn(ctx, &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: key, ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: key, Value: stored}},
	})
	if err != nil {
		return fmt.Errorf("create storage class %s: %w", sc.Name, err)
	}
	return nil
}
