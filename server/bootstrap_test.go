package server

import (
	"context"
	"testing"
	"time"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

func TestEnsureBootstrapMakesSecretKeys(t *testing.T) {
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const tok = "bootstrap-test-token-0123456789"
	for range 2 { // the second call finds everything in place
		if err := ensureBootstrap(ctx, store, tok); err != nil {
			t.Fatal(err)
		}
	}
	ring, _, err := encryption.Load(ctx, store, encryption.KEK(tok), raftstore.ReadOptions{Linearizable: true})
	if err != nil || ring == nil || len(ring.IDs()) != 1 {
		t.Fatalf("got keyring %v, %v, want one data key", ring, err)
	}
	if _, _, err := encryption.Load(ctx, store, encryption.KEK("another-token-0123456789"), raftstore.ReadOptions{}); err == nil {
		t.Fatal("got the data keys opened with another token, want an error")
	}
	if _, err := waitBootstrap(ctx, store, tok); err != nil {
		t.Fatal(err)
	}
}
