package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/raftstore"
)

const testToken = "test-token"

type testEnv struct {
	srv    *Server
	store  *raftstore.Node
	http   *httptest.Server
	client *kubernetes.Clientset
	config *rest.Config
}

// newEnv starts an API server over an in-memory store, with the initial
// namespaces, and a client-go clientset for it.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := New(Config{
		Store:            store,
		Operator:         store,
		Authenticate:     func(tok string) (string, bool) { return "admin", tok == testToken },
		BookmarkInterval: 200 * time.Millisecond,
	})
	for _, ns := range InitialNamespaces {
		if err := srv.EnsureNamespace(ctx(t), ns); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	cfg := &rest.Config{Host: hs.URL, BearerToken: testToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: -1}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{srv: srv, store: store, http: hs, client: cs, config: cfg}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
