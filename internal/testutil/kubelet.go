package testutil

import (
	"testing"

	"k8s.io/client-go/kubernetes"
)

// FakeKubelet plays the agents of every node for the pods of one namespace:
// pods on a node are reported Running and Ready, and the deletion of pods
// being deleted is finished. StopNode makes one node's agent go away.
type FakeKubelet struct {
	*ScriptedKubelet
}

// StartFakeKubelet starts a FakeKubelet for namespace ns that runs until
// the test ends.
func StartFakeKubelet(t testing.TB, client kubernetes.Interface, ns string) *FakeKubelet {
	t.Helper()
	return &FakeKubelet{StartScriptedKubelet(t, client, ns)}
}
