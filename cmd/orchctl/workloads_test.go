package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller/deployment"
	"orch.dev/orch/server/controller/replicaset"
)

// startWorkloads starts a server with the Deployment and ReplicaSet
// controllers and a kubelet that binds pods to a node and reports them
// Ready, except those of an image with "broken" in its name.
func startWorkloads(t *testing.T) *apitest.Env {
	t.Helper()
	// run sets klog's logger once; the controllers below log through klog
	// from their own goroutines, so that must happen before they start.
	quietKlog.Do(func() { klog.SetLogger(logr.Discard()) })
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	rsc := replicaset.New(replicaset.Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	dc := deployment.New(deployment.Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan struct{}, 2)
	go func() { _ = rsc.Run(ctx); done <- struct{}{} }()
	go func() { _ = dc.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		f.Shutdown()
	})
	k := testutil.StartScriptedKubelet(t, env.Client, "default")
	k.BindTo("node-1")
	k.SetReady(func(p *corev1.Pod) bool { return !strings.Contains(p.Spec.Containers[0].Image, "broken") })
	return env
}

// newWebDeployment is the Deployment "web" of replicas pods of image.
func newWebDeployment(replicas int32, image string) *appsv1.Deployment {
	l := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func createDeployment(t *testing.T, env *apitest.Env, d *appsv1.Deployment) {
	t.Helper()
	if _, err := env.Client.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// updateDeployment changes Deployment web, retrying on conflicts with the
// controller.
func updateDeployment(t *testing.T, env *apitest.Env, change func(*appsv1.Deployment)) {
	t.Helper()
	ctx := context.Background()
	testutil.Eventually(t, 10*time.Second, func() string {
		d, err := env.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		change(d)
		if _, err := env.Client.AppsV1().Deployments("default").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

// waitRolledOut waits until Deployment web runs only image, all
// available.
func waitRolledOut(t *testing.T, env *apitest.Env, image string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() string {
		d, err := env.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		st, want := d.Status, replicas(d.Spec.Replicas)
		if img := d.Spec.Template.Spec.Containers[0].Image; img != image {
			return fmt.Sprintf("template runs %s, want %s", img, image)
		}
		if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.Replicas != want || st.AvailableReplicas != want {
			return fmt.Sprintf("status %+v, want %d replicas updated and available", st, want)
		}
		return ""
	})
}
