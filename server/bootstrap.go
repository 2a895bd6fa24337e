package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/internal/token"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

// bootstrapKey holds the cluster's own secrets, created once by the first
// leader: the CA and the admin token. The secret parts are sealed with a key
// derived from the cluster token, so the Raft log, snapshots and state files
// never hold them in the clear, and a server can open them only when it has
// the token.
const bootstrapKey = "/orch/bootstrap"

type bootstrapData struct {
	CACert     []byte `json:"caCert"`
	CAKey      []byte `json:"caKey"`      // sealed
	AdminToken []byte `json:"adminToken"` // sealed
}

// clusterSecrets are the opened bootstrap data.
type clusterSecrets struct {
	ca         *certs.CA
	adminToken string
}

func sealKey(tok string) []byte { return token.Derive(tok, "bootstrap data") }

// ensureBootstrap creates the bootstrap data and the data keys Secrets are
// encrypted with at rest (sealed with their own token-derived key) unless
// they exist. Only the leader calls it; the compares make a second creator
// harmless.
func ensureBootstrap(ctx context.Context, store raftstore.Store, tok string) error {
	if err := encryption.Ensure(ctx, store, encryption.KEK(tok)); err != nil {
		return fmt.Errorf("create the secret data keys: %w", err)
	}
	kv, _, err := store.Get(ctx, bootstrapKey, raftstore.ReadOptions{Linearizable: true})
	if err != nil {
		return err
	}
	if kv != nil {
		return nil
	}
	ca, err := certs.NewCA("orch-ca")
	if err != nil {
		return fmt.Errorf("generate cluster CA: %w", err)
	}
	admin, err := token.Generate()
	if err != nil {
		return err
	}
	key := sealKey(tok)
	sealedKey, err := token.Seal(key, ca.KeyPEM)
	if err != nil {
		return err
	}
	sealedAdmin, err := token.Seal(key, []byte(admin))
	if err != nil {
		return err
	}
	data, err := json.Marshal(bootstrapData{CACert: ca.CertPEM, CAKey: sealedKey, AdminToken: sealedAdmin})
	if err != nil {
		return err
	}
	_, err = store.Txn(ctx, &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: bootstrapKey, ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: bootstrapKey, Value: data}},
	})
	return err
}

// waitBootstrap waits until the bootstrap data reaches the local replica
// and opens it.
func waitBootstrap(ctx context.Context, store raftstore.Store, tok string) (*clusterSecrets, error) {
	for {
		kv, rev, err := store.Get(ctx, bootstrapKey, raftstore.ReadOptions{})
		if err != nil {
			return nil, err
		}
		if kv != nil {
			return openBootstrap(kv.Value, tok)
		}
		w, err := store.Watch(ctx, bootstrapKey, rev)
		if err != nil {
			if errors.Is(err, raftstore.ErrCompacted) {
				continue
			}
			return nil, err
		}
		if _, err := w.Next(ctx); err != nil && !errors.Is(err, raftstore.ErrCompacted) {
			return nil, err
		}
	}
}

func openBootstrap(data []byte, tok string) (*clusterSecrets, error) {
	var bd bootstrapData
	if err := json.Unmarshal(data, &bd); err != nil {
		return nil, fmt.Errorf("read bootstrap data: %w", err)
	}
	key := sealKey(tok)
	caKey, err := token.Open(key, bd.CAKey)
	if err != nil {
		return nil, fmt.Errorf("open the cluster CA key: %w", err)
	}
	admin, err := token.Open(key, bd.AdminToken)
	if err != nil {
		return nil, fmt.Errorf("open the admin token: %w", err)
	}
	ca, err := certs.LoadCA(bd.CACert, caKey)
	if err != nil {
		return nil, err
	}
	return &clusterSecrets{ca: ca, adminToken: string(admin)}, nil
}
