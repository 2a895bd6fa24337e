package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api"
	"orch.dev/orch/server/api/apitest"
)

const ns = "default"

// harness is one API server with a running collector.
type harness struct {
	t   *testing.T
	ctx context.Context
	cs  kubernetes.Interface
}

// start runs a collector over every resource a fresh API server serves.
func start(t *testing.T) *harness {
	t.Helper()
	env := apitest.Start(t)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c := New(Deps{Client: env.Client, Dynamic: dyn, Resources: append(api.NamespacedResources(), api.ClusterResources()...), Logger: logging.Discard})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{t: t, ctx: ctx, cs: env.Client}
}

// ownerRef names owner; block sets blockOwnerDeletion.
func ownerRef(apiVersion, kind string, owner metav1.Object, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), BlockOwnerDeletion: ptr.To(block)}
}

// rsRef names rs as the controller, as a replica set's pods do.
func rsRef(rs *appsv1.ReplicaSet) metav1.OwnerReference {
	r := ownerRef("apps/v1", "ReplicaSet", rs, true)
	r.Controller = ptr.To(true)
	return r
}

var template = corev1.PodTemplateSpec{
	ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
	Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "orch/hello:dev"}}},
}

func (h *harness) createDeployment(name string) *appsv1.Deployment {
	h.t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: template.Labels}, Template: template}}
	out, err := h.cs.AppsV1().Deployments(ns).Create(h.ctx, d, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) createReplicaSet(name string, owners ...metav1.OwnerReference) *appsv1.ReplicaSet {
	h.t.Helper()
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: template.Labels}, Template: template}}
	out, err := h.cs.AppsV1().ReplicaSets(ns).Create(h.ctx, rs, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// createPod makes a pod; one with a node is deleted gracefully and stays
// until the test, playing the node, removes it.
func (h *harness) createPod(name, node string, owners ...metav1.OwnerReference) *corev1.Pod {
	h.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: template.Labels, OwnerReferences: owners}, Spec: *template.Spec.DeepCopy()}
	p.Spec.NodeName = node
	out, err := h.cs.CoreV1().Pods(ns).Create(h.ctx, p, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) createConfigMap(name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	h.t.Helper()
	out, err := h.cs.CoreV1().ConfigMaps(ns).Create(h.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) check(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

func deleteWith(policy metav1.DeletionPropagation) metav1.DeleteOptions {
	return metav1.DeleteOptions{PropagationPolicy: &policy}
}

// podNames lists the pods in the namespace: "a b(deleting)".
func (h *harness) podNames() string {
	l, err := h.cs.CoreV1().Pods(ns).List(h.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, p := range l.Items {
		n := p.Name
		if p.DeletionTimestamp != nil {
			n += "(deleting)"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// state says whether an object exists: "gone", "deleting" or "present".
func state(m metav1.Object, err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "gone"
	case err != nil:
		return err.Error()
	case m.GetDeletionTimestamp() != nil:
		return "deleting"
	}
	return "present"
}

func (h *harness) replicaSet(name string) string {
	rs, err := h.cs.AppsV1().ReplicaSets(ns).Get(h.ctx, name, metav1.GetOptions{})
	return state(rs, err)
}

func (h *harness) deployment(name string) string {
	d, err := h.cs.AppsV1().Deployments(ns).Get(h.ctx, name, metav1.GetOptions{})
	return state(d, err)
}

// want polls until got() returns want.
func (h *harness) want(what string, want string, got func() string) {
	h.t.Helper()
	testutil.Eventually(h.t, 15*time.Second, func() string {
		if g := got(); g != want {
			return fmt.Sprintf("%s: got %q, want %q", what, g, want)
		}
		return ""
	})
}

// refUIDs lists the owner UIDs an object names.
func refUIDs(refs []metav1.OwnerReference) []types.UID {
	var out []types.UID
	for _, r := range refs {
		out = append(out, r.UID)
	}
	return out
}
