package garbagecollector

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestGarbageCollector(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(h *harness)
	}{
		{"background: a deleted replica set's pods go", func(h *harness) {
			rs := h.createReplicaSet("web")
			other := h.createReplicaSet("other")
			h.createPod("web-1", "", rsRef(rs))
			h.createPod("web-2", "", rsRef(rs))
			h.createPod("other-1", "", rsRef(other))
			h.createPod("loner", "")
			h.check(h.cs.AppsV1().ReplicaSets(ns).Delete(h.ctx, "web", metav1.DeleteOptions{}))
			h.want("pods", "loner other-1", h.podNames)
		}},
		{"background: deployment, replica set and pods all go", func(h *harness) {
			d := h.createDeployment("web")
			rs := h.createReplicaSet("web-abc", ownerRef("apps/v1", "Deployment", d, true))
			h.createPod("web-abc-1", "", rsRef(rs))
			h.createPod("web-abc-2", "", rsRef(rs))
			h.check(h.cs.AppsV1().Deployments(ns).Delete(h.ctx, "web", deleteWith(metav1.DeletePropagationBackground)))
			h.want("replica set", "gone", func() string { return h.replicaSet("web-abc") })
			h.want("pods", "", h.podNames)
		}},
		{"foreground: the owners stay until their dependents are gone", func(h *harness) {
			d := h.createDeployment("web")
			rs := h.createReplicaSet("web-abc", ownerRef("apps/v1", "Deployment", d, true))
			h.createPod("web-abc-1", "", rsRef(rs))
			h.createPod("web-abc-2", "node1", rsRef(rs)) // stopped gracefully by its node
			h.check(h.cs.AppsV1().Deployments(ns).Delete(h.ctx, "web", deleteWith(metav1.DeletePropagationForeground)))
			h.want("pods", "web-abc-2(deleting)", h.podNames)
			h.want("replica set", "deleting", func() string { return h.replicaSet("web-abc") })
			if got := h.deployment("web"); got != "deleting" {
				h.t.Fatalf("deployment: got %s, want it kept while a pod is still stopping", got)
			}
			// The node stops the pod.
			h.check(h.cs.CoreV1().Pods(ns).Delete(h.ctx, "web-abc-2", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}))
			h.want("deployment", "gone", func() string { return h.deployment("web") })
			h.want("replica set", "gone", func() string { return h.replicaSet("web-abc") })
			h.want("pods", "", h.podNames)
		}},
		{"orphan: the pods stay without the owner's reference", func(h *harness) {
			rs := h.createReplicaSet("web")
			keep := h.createConfigMap("keep")
			h.createPod("web-1", "", rsRef(rs))
			h.createPod("web-2", "", rsRef(rs), ownerRef("v1", "ConfigMap", keep, false))
			h.check(h.cs.AppsV1().ReplicaSets(ns).Delete(h.ctx, "web", deleteWith(metav1.DeletePropagationOrphan)))
			h.want("replica set", "gone", func() string { return h.replicaSet("web") })
			h.want("pods", "web-1 web-2", h.podNames)
			for name, want := range map[string][]types.UID{"web-1": nil, "web-2": {keep.UID}} {
				p, err := h.cs.CoreV1().Pods(ns).Get(h.ctx, name, metav1.GetOptions{})
				h.check(err)
				if got := refUIDs(p.OwnerReferences); !slices.Equal(got, want) {
					h.t.Fatalf("%s owners: got %v, want %v", name, got, want)
				}
			}
		}},
		{"two owners: the dependent stays while one owner exists", func(h *harness) {
			a, b := h.createConfigMap("owner-a"), h.createConfigMap("owner-b")
			h.createConfigMap("shared", ownerRef("v1", "ConfigMap", a, false), ownerRef("v1", "ConfigMap", b, false))
			h.check(h.cs.CoreV1().ConfigMaps(ns).Delete(h.ctx, "owner-a", metav1.DeleteOptions{}))
			// The reference to the owner that is gone is dropped.
			h.want("shared's owners", fmt.Sprint([]types.UID{b.UID}), func() string {
				cm, err := h.cs.CoreV1().ConfigMaps(ns).Get(h.ctx, "shared", metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				return fmt.Sprint(refUIDs(cm.OwnerReferences))
			})
			h.check(h.cs.CoreV1().ConfigMaps(ns).Delete(h.ctx, "owner-b", metav1.DeleteOptions{}))
			h.want("shared", "gone", func() string {
				cm, err := h.cs.CoreV1().ConfigMaps(ns).Get(h.ctx, "shared", metav1.GetOptions{})
				return state(cm, err)
			})
		}},
		{"an owner that never existed: the dependent goes", func(h *harness) {
			ghost := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "ghost", UID: "6e0d6f1c-0000-4000-8000-000000000001"}
			h.createPod("haunted", "", ghost)
			h.createPod("loner", "")
			h.want("pods", "loner", h.podNames)
		}},
		{"an owner of the same name but another UID: the dependent goes", func(h *harness) {
			rs := h.createReplicaSet("web")
			impostor := rsRef(rs)
			impostor.UID = "6e0d6f1c-0000-4000-8000-000000000002"
			h.createPod("web-1", "", rsRef(rs))
			h.createPod("stale", "", impostor)
			h.want("pods", "web-1", h.podNames)
			if got := h.replicaSet("web"); got != "present" {
				h.t.Fatalf("replica set: got %s, want present", got)
			}
		}},
		{"an owner of a kind the API does not serve: the dependent stays", func(h *harness) {
			h.createPod("widget-1", "", metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "6e0d6f1c-0000-4000-8000-000000000003"})
			h.createPod("widget-2", "", metav1.OwnerReference{APIVersion: "v1", Kind: "Widget", Name: "w", UID: "6e0d6f1c-0000-4000-8000-000000000004"})
			// Created last, collected after the others were looked at.
			h.createPod("haunted", "", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "ghost", UID: "6e0d6f1c-0000-4000-8000-000000000005"})
			h.want("pods", "widget-1 widget-2", h.podNames)
		}},
		{"a cluster-scoped owner: a node deleted in the foreground", func(h *harness) {
			n, err := h.cs.CoreV1().Nodes().Create(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{})
			h.check(err)
			h.createPod("tied", "", ownerRef("v1", "Node", n, true))
			h.check(h.cs.CoreV1().Nodes().Delete(h.ctx, "node1", deleteWith(metav1.DeletePropagationForeground)))
			h.want("pods", "", h.podNames)
			h.want("node", "gone", func() string {
				n, err := h.cs.CoreV1().Nodes().Get(h.ctx, "node1", metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return "gone"
				}
				return state(n, err)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(start(t))
		})
	}
}
