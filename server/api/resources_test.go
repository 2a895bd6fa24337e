package api

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestServedResourceLists(t *testing.T) {
	namespaced, cluster := NamespacedResources(), ClusterResources()
	want := []schema.GroupVersionResource{{Version: "v1", Resource: "namespaces"}, {Version: "v1", Resource: "nodes"},
		{Version: "v1", Resource: "persistentvolumes"}, {Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}}
	if !slices.Equal(cluster, want) {
		t.Fatalf("cluster resources: got %v, want %v", cluster, want)
	}
	if !slices.Contains(namespaced, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}) {
		t.Fatalf("namespaced resources: got %v, want replicasets.apps among them", namespaced)
	}
	if got, want := len(namespaced)+len(cluster), len(resources); got != want {
		t.Fatalf("got %d resources in the two lists, want all %d served", got, want)
	}
}
