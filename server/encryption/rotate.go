package encryption

import (
	"context"
	"errors"
	"fmt"

	"orch.dev/orch/raftstore"
)

// RotateResult says what a rotation did.
type RotateResult struct {
	// KeyID is the write key after the rotation.
	KeyID string `json:"keyID"`
	// Reencrypted counts the values sealed again with it.
	Reencrypted int `json:"reencrypted"`
	// Retired lists the ids of the keys removed from the keyring.
	Retired []string `json:"retired"`
	// Resumed is true when an interrupted rotation was finished instead
	// of a new key made.
	Resumed bool `json:"resumed"`
}

// ErrKeyringChanged means another rotation changed the keyring while this
// one was re-encrypting; running the rotation again finishes the work.
var ErrKeyringChanged = errors.New("encryption: the keyring changed during the rotation (another rotation ran); run it again")

// Rotate makes a new write key, seals every value under the prefix with it
// and then retires every other key. A keyring that already holds more than
// one key is the trace of an interrupted rotation: Rotate finishes that one
// instead of adding another key, so running it again after any failure is
// safe and converges.
func (t *Transformer) Rotate(ctx context.Context) (RotateResult, error) {
	res, r, rev, err := t.beginRotation(ctx)
	if err != nil {
		return res, err
	}
	n, err := t.reencrypt(ctx, r, rev)
	res.Reencrypted = n
	if err != nil {
		return res, err
	}
	res.Retired, err = t.retire(ctx, r, rev)
	return res, err
}

// beginRotation makes a fresh key the write key, keeping the old ones for
// reading, unless an interrupted rotation left several keys.
func (t *Transformer) beginRotation(ctx context.Context) (RotateResult, *Keyring, int64, error) {
	for {
		r, rev, err := t.reload(ctx, raftstore.ReadOptions{Linearizable: true}, -1)
		if err != nil {
			return RotateResult{}, nil, 0, err
		}
		if r == nil {
			// No keyring yet: the first key is the rotation, and the
			// pass seals any plaintext values.
			if err := Ensure(ctx, t.store, t.kek); err != nil {
				return RotateResult{}, nil, 0, err
			}
			r, rev, err = t.reload(ctx, raftstore.ReadOptions{Linearizable: true}, -1)
			if err != nil {
				return RotateResult{}, nil, 0, err
			}
			return RotateResult{KeyID: r.WriteKey()}, r, rev, nil
		}
		if len(r.keys) > 1 {
			return RotateResult{KeyID: r.WriteKey(), Resumed: true}, r, rev, nil
		}
		next, err := r.withNewWriteKey()
		if err != nil {
			return RotateResult{}, nil, 0, err
		}
		out, err := putKeyring(ctx, t.store, t.kek, next, rev)
		if err != nil {
			return RotateResult{}, nil, 0, err
		}
		if out.Succeeded {
			t.mu.Lock()
			if t.rev < out.Revision {
				t.ring, t.rev = next, out.Revision
			}
			t.mu.Unlock()
			return RotateResult{KeyID: next.WriteKey()}, next, out.Revision, nil
		}
		// Someone else changed the keyring first: look again.
	}
}

// reencrypt seals every value under the prefix that is not sealed with r's
// write key, each with a compare on the value's and the keyring's revision.
// It returns how many values it rewrote.
func (t *Transformer) reencrypt(ctx context.Context, r *Keyring, ringRev int64) (int, error) {
	count := 0
	opts := raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{MinRevision: ringRev}, Limit: 256}
	for {
		kvs, _, more, err := t.store.List(ctx, t.prefix, opts)
		if err != nil {
			return count, err
		}
		for _, kv := range kvs {
			done, err := t.reencryptOne(ctx, r, ringRev, kv)
			if err != nil {
				return count, err
			}
			if done {
				count++
			}
		}
		if !more || len(kvs) == 0 {
			return count, nil
		}
		opts.StartKey = kvs[len(kvs)-1].Key + "\x00"
	}
}

// reencryptOne seals one value with the write key unless it already is,
// reading it again when a concurrent write got there first.
func (t *Transformer) reencryptOne(ctx context.Context, r *Keyring, ringRev int64, kv *raftstore.KeyValue) (bool, error) {
	for attempt := 0; attempt < 20; attempt++ {
		if id, ok := KeyID(kv.Value); ok && id == r.WriteKey() {
			return false, nil
		}
		plain, err := r.Open([]byte(kv.Key), kv.Value)
		if err != nil {
			return false, fmt.Errorf("re-encrypt %s: %w", kv.Key, err)
		}
		sealed, err := r.Seal([]byte(kv.Key), plain)
		if err != nil {
			return false, err
		}
		out, err := t.store.Txn(ctx, &raftstore.Txn{
			Compares: []raftstore.Compare{{Key: kv.Key, ModRevision: kv.ModRevision}, {Key: KeysKey, ModRevision: ringRev}},
			Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: kv.Key, Value: sealed}},
		})
		switch {
		case err != nil:
			return false, err
		case out.Succeeded:
			return true, nil
		case out.FailedCompare == 1:
			return false, ErrKeyringChanged
		}
		// The value changed under us: read it again.
		if kv, _, err = t.store.Get(ctx, kv.Key, raftstore.ReadOptions{MinRevision: out.Revision}); err != nil {
			return false, err
		}
		if kv == nil {
			return false, nil // deleted meanwhile
		}
	}
	return false, fmt.Errorf("re-encrypt %s: too many concurrent writers; run the rotation again", kv.Key)
}

// retire drops every key but the write key, once no value uses them.
func (t *Transformer) retire(ctx context.Context, r *Keyring, ringRev int64) ([]string, error) {
	var retired []string
	for _, id := range r.IDs() {
		if id != r.WriteKey() {
			retired = append(retired, id)
		}
	}
	if len(retired) == 0 {
		return nil, nil
	}
	next, err := r.onlyWriteKey()
	if err != nil {
		return nil, err
	}
	out, err := putKeyring(ctx, t.store, t.kek, next, ringRev)
	if err != nil {
		return nil, err
	}
	if !out.Succeeded {
		// A concurrent rotation of the same keys may have retired them.
		cur, _, err := t.reload(ctx, raftstore.ReadOptions{Linearizable: true}, -1)
		if err != nil {
			return nil, err
		}
		if cur != nil && cur.WriteKey() == r.WriteKey() && len(cur.keys) == 1 {
			return retired, nil
		}
		return nil, ErrKeyringChanged
	}
	t.mu.Lock()
	if t.rev < out.Revision {
		t.ring, t.rev = next, out.Revision
	}
	t.mu.Unlock()
	return retired, nil
}
