package nodelifecycle

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// membership stands in for the gossip pool (a process boundary).
type membership struct {
	mu     sync.Mutex
	alive  map[string]bool
	notify chan struct{}
}

func (m *membership) Alive() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for k, v := range m.alive {
		out[k] = v
	}
	return out
}

func (m *membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notify
}

func (m *membership) set(name string, alive bool) {
	m.mu.Lock()
	m.alive[name] = alive
	close(m.notify)
	m.notify = make(chan struct{})
	m.mu.Unlock()
}

func TestNodeWhoseAgentLeftBecomesUnknown(t *testing.T) {
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &membership{alive: map[string]bool{"a": true, "b": true}, notify: make(chan struct{})}
	for _, name := range []string{"a", "b"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if _, err := env.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := New(Deps{Client: env.Client, Alive: m.Alive, Changed: m.Changed, Logger: logging.Discard, Grace: 100 * time.Millisecond})
	go func() { _ = c.Run(ctx) }() // ends with ctx
	ready := func(name string) corev1.ConditionStatus {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return readyStatus(n)
	}
	m.set("b", false)
	testutil.Eventually(t, 5*time.Second, func() string {
		if s := ready("b"); s != corev1.ConditionUnknown {
			return "node b is Ready=" + string(s)
		}
		return ""
	})
	// The pass that marked b looked at a too, whose agent is alive.
	if s := ready("a"); s != corev1.ConditionTrue {
		t.Fatalf("node a: got Ready=%s, want True (its agent is alive)", s)
	}
}
