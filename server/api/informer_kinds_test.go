//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package api

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// TestInformersForEveryKind runs a client-go informer (list, watch and
// resync) for every kind the API serves and checks each sees a new object.
func TestInformersForEveryKind(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	labels := map[string]string{"app": "x"}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	podSpec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "orch/hello:dev"}}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}
	jobTmpl := tmpl.DeepCopy()
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	om := metav1.ObjectMeta{Name: "x"}
	cs := e.client

	factory := informers.NewSharedInformerFactory(cs, time.Second)
	type kind struct {
		name     string
		informer cache.SharedIndexInformer
		key      string
		create   func(context.Context) error
	}
	kinds := []kind{
		{"namespaces", factory.Core().V1().Namespaces().Informer(), "x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: om}, metav1.CreateOptions{})
			return err
		}},
		{"nodes", factory.Core().V1().Nodes().Informer(), "x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: om}, metav1.CreateOptions{})
			return err
		}},
		{"pods", factory.Core().V1().Pods().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: om, Spec: podSpec}, metav1.CreateOptions{})
			return err
		}},
		{"services", factory.Core().V1().Services().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: om, Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
			return err
		}},
		{"endpoints", factory.Core().V1().Endpoints().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Endpoints("default").Create(ctx, &corev1.Endpoints{ObjectMeta: om}, metav1.CreateOptions{})
			return err
		}},
		{"configmaps", factory.Core().V1().ConfigMaps().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: om}, metav1.CreateOptions{})
			return err
		}},
		{"secrets", factory.Core().V1().Secrets().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: om, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
			return err
		}},
		{"events", factory.Core().V1().Events().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: om, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "x", Namespace: "default"}, Reason: "Test", Type: corev1.EventTypeNormal}, metav1.CreateOptions{})
			return err
		}},
		{"replicationcontrollers", factory.Core().V1().ReplicationControllers().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.CoreV1().ReplicationControllers("default").Create(ctx, &corev1.ReplicationController{ObjectMeta: om, Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(1)), Selector: labels, Template: &tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"deployments", factory.Apps().V1().Deployments().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: om, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"replicasets", factory.Apps().V1().ReplicaSets().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: om, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"daemonsets", factory.Apps().V1().DaemonSets().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{ObjectMeta: om, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"statefulsets", factory.Apps().V1().StatefulSets().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.AppsV1().StatefulSets("default").Create(ctx, &appsv1.StatefulSet{ObjectMeta: om, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"jobs", factory.Batch().V1().Jobs().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{ObjectMeta: om, Spec: batchv1.JobSpec{Template: *jobTmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"cronjobs", factory.Batch().V1().CronJobs().Informer(), "default/x", func(ctx context.Context) error {
			_, err := cs.BatchV1().CronJobs("default").Create(ctx, &batchv1.CronJob{ObjectMeta: om, Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: *jobTmpl}}}}, metav1.CreateOptions{})
			return err
		}},
	}
	resynced := make(map[string]chan struct{}, len(kinds))
	for _, k := range kinds {
		ch := make(chan struct{}, 1)
		resynced[k.name] = ch
		_, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			// A resync delivers an update with the same object.
			UpdateFunc: func(old, cur any) {
				if old.(metav1.Object).GetResourceVersion() == cur.(metav1.Object).GetResourceVersion() {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	for _, k := range kinds {
		if !cache.WaitForCacheSync(stop, k.informer.HasSynced) {
			t.Fatalf("%s informer did not sync", k.name)
		}
	}
	for _, k := range kinds {
		if err := k.create(c); err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	// Resyncs run on every informer at once, so the waits overlap.
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			testutil.Eventually(t, 5*time.Second, func() string {
				if _, ok, _ := k.informer.GetStore().GetByKey(k.key); !ok {
					return "the " + k.name + " informer has not seen " + k.key
				}
				return ""
			})
			select {
			case <-resynced[k.name]:
			case <-time.After(5 * time.Second):
				t.Fatalf("the %s informer did not resync", k.name)
			}
		})
	}
}
