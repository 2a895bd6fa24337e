// Package apitest starts a real API server over an in-memory store for the
// tests of its clients (orchctl, controllers). Nothing is faked: requests go
// over HTTPS through the same handler a server runs.
package apitest

import (
	"context"
	"encoding/pem"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/api"
	"orch.dev/orch/server/encryption"
)

// Token is the bearer token the test server accepts.
const Token = "apitest-admin-token"

// ClusterToken stands for the cluster token: the test server seals its
// Secrets' data keys with encryption.KEK(ClusterToken), as a server does.
const ClusterToken = "apitest-cluster-token"

// Env is a running test API server.
type Env struct {
	URL        string
	Kubeconfig string // path of an admin kubeconfig for URL
	Config     *rest.Config
	Client     *kubernetes.Clientset
	Store      *raftstore.Node
	API        *api.Server
	// Dir is the store's data directory (raft.db, state.db, snapshots/)
	// for StartOnDisk; empty for Start.
	Dir string
}

// Start starts a server with the initial namespaces; it stops with the test.
func Start(t testing.TB) *Env {
	t.Helper()
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, store)
}

// StartOnDisk is Start over a single-server store on disk, with its Raft
// log fsynced as in production, for benchmarks whose numbers depend on it.
func StartOnDisk(t testing.TB) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := raftstore.Open(raftstore.Config{ID: "apitest", Dir: dir, Listener: ln, PeerKey: []byte("apitest-peer-key")})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Bootstrap([]raftstore.Server{{ID: "apitest", Address: store.Addr()}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	env := start(t, store)
	env.Dir = dir
	return env
}

func start(t testing.TB, store *raftstore.Node) *Env {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	srv := api.New(api.Config{
		Store: store, Operator: store,
		Authenticate:     func(tok string) (string, bool) { return "admin", tok == Token },
		BookmarkInterval: time.Second,
		SecretsKEK:       encryption.KEK(ClusterToken),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ns := range api.InitialNamespaces {
		if err := srv.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.EnsureDefaultStorageClass(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	kc := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := certs.WriteKubeconfig(kc, "orch", hs.URL, caPEM, Token); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: hs.URL, BearerToken: Token, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, QPS: -1}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{URL: hs.URL, Kubeconfig: kc, Config: cfg, Client: cs, Store: store, API: srv}
}
