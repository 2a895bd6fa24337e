package defaulting

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default sets, in place, the server-side defaults for obj. The API server
// calls it on every create and update so stored objects are complete and
// controllers never have to guess what an empty field means.
//
// obj must be a pointer to one of the typed objects orch serves: core/v1
// Namespace, Pod, Node, Service, Endpoints, ConfigMap, Secret, Event,
// ReplicationController, PersistentVolumeClaim, PersistentVolume;
// storage.k8s.io/v1 StorageClass; apps/v1 ReplicaSet, Deployment, DaemonSet,
// StatefulSet; batch/v1 Job, CronJob. Any other type, and a nil pointer of a
// known type, is left untouched.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		if o != nil {
			defaultNamespace(o)
		}
	case *corev1.Pod:
		if o != nil {
			defaultPod(o)
		}
	case *corev1.Node:
		if o != nil {
			defaultNode(o)
		}
	case *corev1.Service:
		if o != nil {
			defaultService(o)
		}
	//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
	case *corev1.Endpoints:
		if o != nil {
			defaultEndpoints(o)
		}
	case *corev1.ConfigMap:
		// Kubernetes sets no defaults on ConfigMaps.
	case *corev1.Secret:
		if o != nil {
			defaultSecret(o)
		}
	case *corev1.Event:
		// Kubernetes sets no defaults on core/v1 Events.
	case *corev1.PersistentVolumeClaim:
		if o != nil {
			defaultPVC(o)
		}
	case *corev1.PersistentVolume:
		if o != nil {
			defaultPV(o)
		}
	case *storagev1.StorageClass:
		if o != nil {
			defaultStorageClass(o)
		}
	case *corev1.ReplicationController:
		if o != nil {
			defaultReplicationController(o)
		}
	case *appsv1.ReplicaSet:
		if o != nil {
			defaultReplicaSet(o)
		}
	case *appsv1.Deployment:
		if o != nil {
			defaultDeployment(o)
		}
	case *appsv1.DaemonSet:
		if o != nil {
			defaultDaemonSet(o)
		}
	case *appsv1.StatefulSet:
		if o != nil {
			defaultStatefulSet(o)
		}
	case *batchv1.Job:
		if o != nil {
			defaultJob(o)
		}
	case *batchv1.CronJob:
		if o != nil {
			defaultCronJob(o)
		}
	}
}

// ptrTo returns a pointer to a copy of v, so each defaulted object owns its
// values and two objects never share a pointer by accident.
func ptrTo[T any](v T) *T {
	return &v
}

// defaultResourceList rounds every quantity up to milli precision, as
// Kubernetes does, so "0.0001" CPU is stored as "1m" and every consumer reads
// the same value the scheduler and the agent act on.
func defaultResourceList(rl corev1.ResourceList) {
	for name, q := range rl {
		// The result only reports whether precision was lost; the rounded
		// value is what we keep either way.
		_ = q.RoundUp(resource.Milli)
		rl[name] = q
	}
}
