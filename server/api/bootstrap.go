package api

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/raftstore"
)

// InitialNamespaces exist from the start of every cluster.
var InitialNamespaces = []string{"default", "kube-system", "kube-public"}

// EnsureNamespace creates the namespace unless it exists. It is safe to
// call on every server and every start.
func (s *Server) EnsureNamespace(ctx context.Context, name string) error {
	res := s.reg.lookup("", "v1", "namespaces")
	key := res.key("", name)
	kv, _, err := s.store.Get(ctx, key, raftstore.ReadOptions{Linearizable: true})
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	if kv != nil {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	s.prepareCreate(res, ns)
	applyDefaults(ns)
	if errs := validateCreate(ns); len(errs) > 0 {
		return fmt.Errorf("namespace %s: %v", name, errs.ToAggregate())
	}
	stored, err := encodeForStore(res, ns)
	if err != nil {
		return err
	}
	_, err = s.store.Txn(ctx, &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: key, ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: key, Value: stored}},
	})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
