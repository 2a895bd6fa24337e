package encryption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"orch.dev/orch/internal/token"
	"orch.dev/orch/raftstore"
)

// KeysKey is the store key of the sealed keyring.
const KeysKey = "/orch/secrets/keys"

// KEK derives the key-encryption key that seals the data keys from the
// cluster token. Its label is its own, so it reveals no other derived key.
func KEK(tok string) []byte { return token.Derive(tok, "secret data keys") }

// storedKeyring is the keyring as kept under KeysKey: ids in the clear, the
// keys sealed with the KEK.
type storedKeyring struct {
	Write string      `json:"write"`
	Keys  []storedKey `json:"keys"`
}

type storedKey struct {
	ID     string `json:"id"`
	Sealed []byte `json:"sealed"`
}

// marshalKeyring seals every key of r with kek.
func marshalKeyring(r *Keyring, kek []byte) ([]byte, error) {
	sk := storedKeyring{Write: r.write}
	for _, id := range r.IDs() {
		sealed, err := token.Seal(kek, r.raw[id])
		if err != nil {
			return nil, fmt.Errorf("encryption: seal key %s: %w", id, err)
		}
		sk.Keys = append(sk.Keys, storedKey{ID: id, Sealed: sealed})
	}
	return json.Marshal(sk)
}

// unmarshalKeyring opens what marshalKeyring made.
func unmarshalKeyring(data, kek []byte) (*Keyring, error) {
	var sk storedKeyring
	if err := json.Unmarshal(data, &sk); err != nil {
		return nil, fmt.Errorf("encryption: read keyring: %w", err)
	}
	keys := make(map[string][]byte, len(sk.Keys))
	for _, k := range sk.Keys {
		raw, err := token.Open(kek, k.Sealed)
		if err != nil {
			if errors.Is(err, token.ErrWrongKey) {
				return nil, fmt.Errorf("encryption: open data key %s: sealed under another cluster token: %w", k.ID, err)
			}
			return nil, fmt.Errorf("encryption: open data key %s: %w", k.ID, err)
		}
		keys[k.ID] = raw
	}
	return NewKeyring(sk.Write, keys)
}

// newKeyring makes a keyring of one fresh key.
func newKeyring() (*Keyring, error) {
	id, err := NewKeyID()
	if err != nil {
		return nil, err
	}
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	return NewKeyring(id, map[string][]byte{id: k})
}

// withKey returns r plus a fresh key that becomes the write key.
func (r *Keyring) withNewWriteKey() (*Keyring, error) {
	id, err := NewKeyID()
	if err != nil {
		return nil, err
	}
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	keys := map[string][]byte{id: k}
	for old, raw := range r.raw {
		keys[old] = raw
	}
	return NewKeyring(id, keys)
}

// onlyWriteKey returns r without the keys other than the write key.
func (r *Keyring) onlyWriteKey() (*Keyring, error) {
	return NewKeyring(r.write, map[string][]byte{r.write: r.raw[r.write]})
}

// Load reads and opens the keyring. A missing keyring is (nil, revision of
// the read, nil); otherwise the revision is the keyring's ModRevision.
func Load(ctx context.Context, store raftstore.Store, kek []byte, opts raftstore.ReadOptions) (*Keyring, int64, error) {
	kv, _, err := store.Get(ctx, KeysKey, opts)
	if err != nil {
		return nil, 0, err
	}
	if kv == nil {
		return nil, 0, nil
	}
	r, err := unmarshalKeyring(kv.Value, kek)
	if err != nil {
		return nil, 0, err
	}
	return r, kv.ModRevision, nil
}

// Ensure creates the keyring with one fresh key unless it exists. The
// first leader calls it at bootstrap; the compare makes a second creator
// harmless.
func Ensure(ctx context.Context, store raftstore.Store, kek []byte) error {
	r, _, err := Load(ctx, store, kek, raftstore.ReadOptions{Linearizable: true})
	if err != nil || r != nil {
		return err
	}
	r, err = newKeyring()
	if err != nil {
		return err
	}
	data, err := marshalKeyring(r, kek)
	if err != nil {
		return err
	}
	_, err = store.Txn(ctx, &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: KeysKey, ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: KeysKey, Value: data}},
	})
	return err
}

// putKeyring replaces the keyring at revision rev with r.
func putKeyring(ctx context.Context, store raftstore.Store, kek []byte, r *Keyring, rev int64) (raftstore.TxnResult, error) {
	data, err := marshalKeyring(r, kek)
	if err != nil {
		return raftstore.TxnResult{}, err
	}
	return store.Txn(ctx, &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: KeysKey, ModRevision: rev}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: KeysKey, Value: data}},
	})
}
