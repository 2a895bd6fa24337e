package api

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeleteSemantics(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pods := e.client.CoreV1().Pods("default")

	t.Run("an unscheduled pod goes at once", func(t *testing.T) {
		if _, err := pods.Create(c, pod("unbound", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(c, "unbound", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Get(c, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})

	t.Run("a bound pod is deleted gracefully", func(t *testing.T) {
		p := pod("bound", "node1")
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(45))
		if _, err := pods.Create(c, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(c, "bound", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(c, "bound", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("got %v, want the pod still there while its node stops it", err)
		}
		if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 45 {
			t.Fatalf("got deletionTimestamp %v grace %v, want set with 45", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
		}
		// The node's final delete, with grace 0, removes it.
		if err := pods.Delete(c, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Get(c, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})

	t.Run("finalizers hold an object until they are removed", func(t *testing.T) {
		cm := configMap("held", nil)
		cm.Finalizers = []string{"example.com/cleanup"}
		cms := e.client.CoreV1().ConfigMaps("default")
		if _, err := cms.Create(c, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cms.Delete(c, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		cur, err := cms.Get(c, "held", metav1.GetOptions{})
		if err != nil || cur.DeletionTimestamp == nil {
			t.Fatalf("got %v %v, want the object with a deletionTimestamp", cur, err)
		}
		cur.Finalizers = nil
		if _, err := cms.Update(c, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Get(c, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound once the last finalizer is gone", err)
		}
	})

	t.Run("propagation policies are kept as finalizers for the garbage collector", func(t *testing.T) {
		cms := e.client.CoreV1().ConfigMaps("default")
		for _, tc := range []struct {
			policy    metav1.DeletionPropagation
			finalizer string
		}{
			{metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
			{metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
		} {
			name := "owner-" + strings.ToLower(string(tc.policy))
			if _, err := cms.Create(c, configMap(name, nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cms.Delete(c, name, metav1.DeleteOptions{PropagationPolicy: &tc.policy}); err != nil {
				t.Fatal(err)
			}
			cur, err := cms.Get(c, name, metav1.GetOptions{})
			if err != nil || cur.DeletionTimestamp == nil || len(cur.Finalizers) != 1 || cur.Finalizers[0] != tc.finalizer {
				t.Fatalf("%s: got %+v %v, want it marked with finalizer %s", tc.policy, cur, err, tc.finalizer)
			}
		}
		// Background, the default, deletes at once.
		bg := metav1.DeletePropagationBackground
		if _, err := cms.Create(c, configMap("owner-bg", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cms.Delete(c, "owner-bg", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Get(c, "owner-bg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})

	t.Run("preconditions", func(t *testing.T) {
		cms := e.client.CoreV1().ConfigMaps("default")
		cur, _ := cms.Create(c, configMap("pre", nil), metav1.CreateOptions{})
		err := cms.Delete(c, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(cur.UID + "x")}})
		if !apierrors.IsConflict(err) {
			t.Fatalf("got %v, want Conflict", err)
		}
		if err := cms.Delete(c, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("delete collection by label", func(t *testing.T) {
		for _, n := range []string{"c1", "c2", "c3"} {
			p := pod(n, "")
			if n == "c3" {
				p.Labels = map[string]string{"app": "other"}
			}
			if _, err := pods.Create(c, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := pods.DeleteCollection(c, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=web"}); err != nil {
			t.Fatal(err)
		}
		l, _ := pods.List(c, metav1.ListOptions{})
		if got := podNames(l.Items); got != "c3" {
			t.Fatalf("got %s, want c3", got)
		}
	})
}

func TestNamespaces(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	nss := e.client.CoreV1().Namespaces()
	l, err := nss.List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Items, func(n corev1.Namespace) string { return n.Name }); got != "default,kube-public,kube-system" {
		t.Fatalf("got %s, want the initial namespaces", got)
	}
	def, _ := nss.Get(c, "default", metav1.GetOptions{})
	if def.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("got phase %q, want Active", def.Status.Phase)
	}

	t.Run("protected namespaces cannot be deleted", func(t *testing.T) {
		if err := nss.Delete(c, "default", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("got %v, want Forbidden", err)
		}
	})

	t.Run("a deleted namespace terminates and refuses new content", func(t *testing.T) {
		if _, err := nss.Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CoreV1().ConfigMaps("team").Create(c, configMap("a", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := nss.Delete(c, "team", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ns, err := nss.Get(c, "team", metav1.GetOptions{})
		if err != nil || ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
			t.Fatalf("got %+v %v, want Terminating with a deletionTimestamp", ns, err)
		}
		_, err = e.client.CoreV1().ConfigMaps("team").Create(c, configMap("b", nil), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "being terminated") {
			t.Fatalf("got %v, want Forbidden: being terminated", err)
		}
		// Finalizing (what the namespace controller does once it is empty)
		// and deleting again removes it.
		ns.Spec.Finalizers = nil
		if _, err := nss.Finalize(c, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := nss.Get(c, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound after finalize", err)
		}
	})
}

func TestBinding(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pods := e.client.CoreV1().Pods("default")
	if _, err := pods.Create(c, pod("p", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node1"}}
	if err := pods.Bind(c, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := pods.Get(c, "p", metav1.GetOptions{})
	scheduled := false
	for _, cond := range got.Status.Conditions {
		scheduled = scheduled || (cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionTrue)
	}
	if got.Spec.NodeName != "node1" || !scheduled {
		t.Fatalf("got node %q conditions %+v, want node1 and PodScheduled", got.Spec.NodeName, got.Status.Conditions)
	}
	b.Target.Name = "node2"
	if err := pods.Bind(c, b, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: got %v, want Conflict", err)
	}
}
