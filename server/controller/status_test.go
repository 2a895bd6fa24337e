package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"orch.dev/orch/server/api/apitest"
)

func TestUpdateStatus(t *testing.T) {
	env := apitest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name string
		// cached makes the pod and returns the copy the loop's cache holds.
		cached    func(t *testing.T, pods typedcorev1.PodInterface) *corev1.Pod
		wantErr   func(error) bool
		wantPhase corev1.PodPhase // of the pod in the API afterwards; "" when none
	}{
		{name: "cache up to date", cached: createPod, wantPhase: corev1.PodRunning},
		{name: "cache behind the last write", cached: func(t *testing.T, pods typedcorev1.PodInterface) *corev1.Pod {
			p := createPod(t, pods)
			changed := p.DeepCopy()
			changed.Labels = map[string]string{"changed": "yes"}
			if _, err := pods.Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			return p
		}, wantPhase: corev1.PodRunning},
		{name: "made again under the same name", cached: func(t *testing.T, pods typedcorev1.PodInterface) *corev1.Pod {
			p := createPod(t, pods)
			deletePod(t, pods, p.Name)
			createPod(t, pods)
			return p
		}, wantPhase: corev1.PodPending},
		{name: "gone", cached: func(t *testing.T, pods typedcorev1.PodInterface) *corev1.Pod {
			p := createPod(t, pods)
			deletePod(t, pods, p.Name)
			return p
		}, wantErr: apierrors.IsNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := createNamespace(t, env.Client)
			pods := env.Client.CoreV1().Pods(ns)
			cached := tc.cached(t, pods)
			err := UpdateStatus(ctx, pods, cached.DeepCopy(), func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Fatalf("got error %v, want a NotFound", err)
			}
			var phase corev1.PodPhase
			if got, err := pods.Get(ctx, "p", metav1.GetOptions{}); err == nil {
				phase = got.Status.Phase
			}
			if phase != tc.wantPhase {
				t.Errorf("got phase %q, want %q", phase, tc.wantPhase)
			}
		})
	}
}

func createNamespace(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "status-"}}
	ns, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createPod(t *testing.T, pods typedcorev1.PodInterface) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "orch/hello:dev"}}},
	}
	p, err := pods.Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deletePod(t *testing.T, pods typedcorev1.PodInterface, name string) {
	t.Helper()
	if err := pods.Delete(context.Background(), name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod %s still there after a delete with grace period 0: %v", name, err)
	}
}
