package encryption

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"orch.dev/orch/raftstore"
)

// Transformer seals and opens the values under one store prefix for one
// server. It caches the opened keyring and reloads it when a value names a
// key it does not know or a write finds the keyring changed.
type Transformer struct {
	store  raftstore.Store
	kek    []byte
	prefix string

	mu   sync.Mutex
	ring *Keyring
	rev  int64 // the cached keyring's ModRevision
}

// NewTransformer seals the values under prefix in store, with the data keys
// sealed by kek under KeysKey.
func NewTransformer(store raftstore.Store, kek []byte, prefix string) *Transformer {
	return &Transformer{store: store, kek: kek, prefix: prefix}
}

// Covers reports whether values under key are sealed.
func (t *Transformer) Covers(key string) bool { return strings.HasPrefix(key, t.prefix) }

func (t *Transformer) cached() (*Keyring, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ring, t.rev
}

// reload reads the keyring with opts, unless the cache is already newer
// than staleRev (another caller reloaded meanwhile); a negative staleRev
// always reads.
func (t *Transformer) reload(ctx context.Context, opts raftstore.ReadOptions, staleRev int64) (*Keyring, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if staleRev >= 0 && t.ring != nil && t.rev > staleRev {
		return t.ring, t.rev, nil
	}
	r, rev, err := Load(ctx, t.store, t.kek, opts)
	if err != nil {
		return nil, 0, err
	}
	t.ring, t.rev = r, rev
	return r, rev, nil
}

// Open returns the plaintext of a stored value of key, written at rev.
// Plaintext passes through without a keyring.
func (t *Transformer) Open(ctx context.Context, key string, rev int64, value []byte) ([]byte, error) {
	if !IsSealed(value) {
		return value, nil
	}
	id, _ := KeyID(value)
	r, _ := t.cached()
	if r == nil || !r.Has(id) {
		// The keyring that holds the key was written before the value,
		// so a replica that has the value has it too, unless the key is
		// retired.
		var err error
		if r, _, err = t.reload(ctx, raftstore.ReadOptions{MinRevision: rev}, -1); err != nil {
			return nil, fmt.Errorf("encryption: load keyring: %w", err)
		}
		if r == nil {
			return nil, fmt.Errorf("%w (key %s; the store has no keyring)", ErrUnknownKey, id)
		}
	}
	return r.Open([]byte(key), value)
}

// writeRing is the keyring new values are sealed with, created when the
// store has none yet.
func (t *Transformer) writeRing(ctx context.Context) (*Keyring, int64, error) {
	if r, rev := t.cached(); r != nil {
		return r, rev, nil
	}
	for {
		r, rev, err := t.reload(ctx, raftstore.ReadOptions{Linearizable: true}, 0)
		if err != nil || r != nil {
			return r, rev, err
		}
		if err := Ensure(ctx, t.store, t.kek); err != nil {
			return nil, 0, err
		}
	}
}

// Txn runs txn with every put under the prefix sealed with the current
// write key. The keyring's revision is an extra compare, checked after the
// caller's: when another server rotated the keys the write is sealed again
// with the new keyring, so the caller sees the result as if the compare
// were not there.
func (t *Transformer) Txn(ctx context.Context, txn *raftstore.Txn) (raftstore.TxnResult, error) {
	if !slices.ContainsFunc(txn.Ops, func(op raftstore.Op) bool { return op.Type == raftstore.OpPut && t.Covers(op.Key) }) {
		return t.store.Txn(ctx, txn)
	}
	for attempt := 0; attempt < 10; attempt++ {
		r, rev, err := t.writeRing(ctx)
		if err != nil {
			return raftstore.TxnResult{}, fmt.Errorf("encryption: load keyring: %w", err)
		}
		sealed := &raftstore.Txn{
			Compares: append(slices.Clone(txn.Compares), raftstore.Compare{Key: KeysKey, ModRevision: rev}),
			Ops:      slices.Clone(txn.Ops),
		}
		for i, op := range sealed.Ops {
			if op.Type != raftstore.OpPut || !t.Covers(op.Key) {
				continue
			}
			if sealed.Ops[i].Value, err = r.Seal([]byte(op.Key), op.Value); err != nil {
				return raftstore.TxnResult{}, err
			}
		}
		out, err := t.store.Txn(ctx, sealed)
		if err != nil || out.Succeeded || out.FailedCompare != len(txn.Compares) {
			return out, err
		}
		if _, _, err := t.reload(ctx, raftstore.ReadOptions{MinRevision: out.Revision}, rev); err != nil {
			return raftstore.TxnResult{}, fmt.Errorf("encryption: load keyring: %w", err)
		}
	}
	return raftstore.TxnResult{}, errors.New("encryption: the keyring kept changing during a write; try again")
}
