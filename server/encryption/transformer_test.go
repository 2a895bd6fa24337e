package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"orch.dev/orch/raftstore"
)

const prefix = "/core/secrets/"

func openStore(t *testing.T) *raftstore.Node {
	t.Helper()
	st, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var kek = KEK("test-cluster-token-0123456789")

func put(t *testing.T, tr *Transformer, key, value string) {
	t.Helper()
	out, err := tr.Txn(testCtx(t), &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: key, Value: []byte(value)}}})
	if err != nil || !out.Succeeded {
		t.Fatalf("put %s: got %+v, %v, want success", key, out, err)
	}
}

func get(t *testing.T, st raftstore.Store, key string) *raftstore.KeyValue {
	t.Helper()
	kv, _, err := st.Get(testCtx(t), key, raftstore.ReadOptions{Linearizable: true})
	if err != nil || kv == nil {
		t.Fatalf("get %s: got %v, %v", key, kv, err)
	}
	return kv
}

func TestKeyringStoredSealed(t *testing.T) {
	st := openStore(t)
	ctx := testCtx(t)
	if err := Ensure(ctx, st, kek); err != nil {
		t.Fatal(err)
	}
	r, rev, err := Load(ctx, st, kek, raftstore.ReadOptions{Linearizable: true})
	if err != nil || r == nil {
		t.Fatalf("got %v, %v, want the keyring", r, err)
	}
	// A second Ensure keeps the keyring.
	if err := Ensure(ctx, st, kek); err != nil {
		t.Fatal(err)
	}
	if kv := get(t, st, KeysKey); kv.ModRevision != rev {
		t.Fatalf("got keyring revision %d after a second Ensure, want %d", kv.ModRevision, rev)
	}
	raw := get(t, st, KeysKey).Value
	key := r.raw[r.WriteKey()]
	for _, form := range [][]byte{key, []byte(base64.StdEncoding.EncodeToString(key)), []byte(fmt.Sprintf("%x", key))} {
		if bytes.Contains(raw, form) {
			t.Fatalf("got the data key in the stored keyring %s", raw)
		}
	}
	if !bytes.Contains(raw, []byte(r.WriteKey())) {
		t.Fatalf("got stored keyring %s, want the key id in the clear", raw)
	}
	if _, _, err := Load(ctx, st, KEK("another-cluster-token-0123"), raftstore.ReadOptions{}); err == nil {
		t.Fatal("got the keyring opened with another token's KEK, want an error")
	}
}

func TestTransformerSealsOnlyThePrefix(t *testing.T) {
	st := openStore(t)
	tr := NewTransformer(st, kek, prefix)
	put(t, tr, prefix+"default/db", `{"data":{"password":"cGxhaW4="}}`)
	put(t, tr, "/core/configmaps/default/db", `{"data":{"x":"y"}}`)
	sec := get(t, st, prefix+"default/db")
	if !IsSealed(sec.Value) || bytes.Contains(sec.Value, []byte("cGxhaW4=")) {
		t.Fatalf("got stored secret %q, want it sealed", sec.Value)
	}
	if cm := get(t, st, "/core/configmaps/default/db"); IsSealed(cm.Value) {
		t.Fatal("got the configmap sealed, want plaintext")
	}
	got, err := tr.Open(testCtx(t), sec.Key, sec.ModRevision, sec.Value)
	if err != nil || string(got) != `{"data":{"password":"cGxhaW4="}}` {
		t.Fatalf("got %q, %v, want the plaintext", got, err)
	}
	// Another server (a fresh transformer) opens it with the same KEK
	// and cannot with another.
	if _, err := NewTransformer(st, kek, prefix).Open(testCtx(t), sec.Key, sec.ModRevision, sec.Value); err != nil {
		t.Fatalf("got %v from another server, want the plaintext", err)
	}
	if _, err := NewTransformer(st, KEK("another-cluster-token-0123"), prefix).Open(testCtx(t), sec.Key, sec.ModRevision, sec.Value); err == nil {
		t.Fatal("got the value opened with another token, want an error")
	}
}

// A server whose cached keyring is older than a rotation another server
// made seals its next write with the new key, not the retired one.
func TestTransformerStaleKeyringRetries(t *testing.T) {
	st := openStore(t)
	a := NewTransformer(st, kek, prefix)
	b := NewTransformer(st, kek, prefix)
	put(t, a, prefix+"default/one", `{"v":1}`)
	oldKey, _ := KeyID(get(t, st, prefix+"default/one").Value)
	res, err := b.Rotate(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyID == oldKey || res.Reencrypted != 1 || len(res.Retired) != 1 || res.Retired[0] != oldKey {
		t.Fatalf("got %+v, want a new key, 1 re-encrypted, %s retired", res, oldKey)
	}
	put(t, a, prefix+"default/two", `{"v":2}`)
	for _, k := range []string{"one", "two"} {
		kv := get(t, st, prefix+"default/"+k)
		if id, _ := KeyID(kv.Value); id != res.KeyID {
			t.Fatalf("%s: got key %s, want the new write key %s", k, id, res.KeyID)
		}
		if _, err := a.Open(testCtx(t), kv.Key, kv.ModRevision, kv.Value); err != nil {
			t.Fatalf("%s: got %v from the once stale server, want the plaintext", k, err)
		}
	}
}

// A compare of the caller that fails is reported at its own index, as if
// the keyring compare were not there.
func TestTransformerTxnKeepsCallerCompares(t *testing.T) {
	st := openStore(t)
	tr := NewTransformer(st, kek, prefix)
	put(t, tr, prefix+"default/x", `{}`)
	out, err := tr.Txn(testCtx(t), &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: prefix + "default/x", ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: prefix + "default/x", Value: []byte(`{}`)}},
	})
	if err != nil || out.Succeeded || out.FailedCompare != 0 {
		t.Fatalf("got %+v, %v, want a failed compare 0", out, err)
	}
}

func TestRotateReencryptsEverything(t *testing.T) {
	st := openStore(t)
	tr := NewTransformer(st, kek, prefix)
	ctx := testCtx(t)
	// Values written before encryption was on are plaintext.
	if _, err := st.Txn(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: prefix + "default/legacy", Value: []byte(`{"legacy":true}`)}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // more than one page
		put(t, tr, fmt.Sprintf("%sns/s%03d", prefix, i), fmt.Sprintf(`{"i":%d}`, i))
	}
	first, _ := KeyID(get(t, st, prefix+"ns/s000").Value)
	res, err := tr.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reencrypted != 301 || res.Resumed || len(res.Retired) != 1 || res.Retired[0] != first {
		t.Fatalf("got %+v, want 301 re-encrypted and %s retired", res, first)
	}
	kvs, _, _, err := st.List(ctx, prefix, raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if id, _ := KeyID(kv.Value); id != res.KeyID {
			t.Fatalf("%s: got key %q, want %s", kv.Key, id, res.KeyID)
		}
	}
	r, _, _ := Load(ctx, st, kek, raftstore.ReadOptions{Linearizable: true})
	if ids := r.IDs(); len(ids) != 1 || ids[0] != res.KeyID {
		t.Fatalf("got keys %v, want only %s", ids, res.KeyID)
	}
	// A second rotation moves everything again.
	res2, err := tr.Rotate(ctx)
	if err != nil || res2.Reencrypted != 301 || res2.KeyID == res.KeyID {
		t.Fatalf("got %+v, %v, want another key and 301 re-encrypted", res2, err)
	}
}

func TestRotateWithoutKeyringSealsPlaintext(t *testing.T) {
	st := openStore(t)
	ctx := testCtx(t)
	if _, err := st.Txn(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: prefix + "default/legacy", Value: []byte(`{"legacy":true}`)}}}); err != nil {
		t.Fatal(err)
	}
	res, err := NewTransformer(st, kek, prefix).Rotate(ctx)
	if err != nil || res.Reencrypted != 1 || len(res.Retired) != 0 {
		t.Fatalf("got %+v, %v, want 1 sealed, nothing retired", res, err)
	}
	if id, _ := KeyID(get(t, st, prefix+"default/legacy").Value); id != res.KeyID {
		t.Fatalf("got key %q, want %s", id, res.KeyID)
	}
}

// An interrupted rotation leaves two keys; the next run finishes it with
// the key it made, and values rewritten meanwhile are not counted twice.
func TestRotateResumesInterrupted(t *testing.T) {
	st := openStore(t)
	tr := NewTransformer(st, kek, prefix)
	ctx := testCtx(t)
	for _, n := range []string{"a", "b", "c"} {
		put(t, tr, prefix+"default/"+n, `{"n":"`+n+`"}`)
	}
	old, _ := KeyID(get(t, st, prefix+"default/a").Value)
	begun, r, rev, err := tr.beginRotation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The interrupted run got as far as one value; a client wrote another.
	if _, err := tr.reencryptOne(ctx, r, rev, get(t, st, prefix+"default/a")); err != nil {
		t.Fatal(err)
	}
	put(t, tr, prefix+"default/b", `{"n":"b2"}`)
	// Reads work in between, with both keys.
	for _, n := range []string{"a", "b", "c"} {
		kv := get(t, st, prefix+"default/"+n)
		if _, err := tr.Open(ctx, kv.Key, kv.ModRevision, kv.Value); err != nil {
			t.Fatalf("%s: got %v during the rotation, want the plaintext", n, err)
		}
	}
	res, err := NewTransformer(st, kek, prefix).Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.KeyID != begun.KeyID || res.Reencrypted != 1 || len(res.Retired) != 1 || res.Retired[0] != old {
		t.Fatalf("got %+v, want the rotation to %s resumed, 1 re-encrypted (c), %s retired", res, begun.KeyID, old)
	}
	// Run again: a fresh rotation, nothing left of the old key.
	res, err = tr.Rotate(ctx)
	if err != nil || res.Resumed || res.Reencrypted != 3 {
		t.Fatalf("got %+v, %v, want a fresh rotation of 3", res, err)
	}
}

func TestOpenRetiredKey(t *testing.T) {
	st := openStore(t)
	tr := NewTransformer(st, kek, prefix)
	ctx := testCtx(t)
	put(t, tr, prefix+"default/a", `{}`)
	before := get(t, st, prefix+"default/a")
	if _, err := tr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Open(ctx, before.Key, before.ModRevision, before.Value); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v for a value sealed with a retired key, want ErrUnknownKey", err)
	}
}
