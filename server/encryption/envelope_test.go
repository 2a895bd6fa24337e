package encryption

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testRing(t *testing.T, write string, ids ...string) *Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
	}
	r, err := NewKeyring(write, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEnvelopeRoundTrip(t *testing.T) {
	r := testRing(t, "k1", "k1")
	aad := []byte("/core/secrets/default/db")
	for _, plain := range [][]byte{nil, []byte("{}"), []byte(`{"data":{"password":"aHVudGVyMg=="}}`), bytes.Repeat([]byte("x"), 1<<20)} {
		sealed, err := r.Seal(aad, plain)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(sealed), Header+"k1:") {
			t.Fatalf("got prefix %q, want %q", sealed[:min(len(sealed), 30)], Header+"k1:")
		}
		if len(plain) > 8 && bytes.Contains(sealed, plain) {
			t.Fatal("got the plaintext inside the sealed value")
		}
		if id, ok := KeyID(sealed); !ok || id != "k1" {
			t.Fatalf("got key id %q %v, want k1", id, ok)
		}
		got, err := r.Open(aad, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("got %d bytes back, want the %d sealed", len(got), len(plain))
		}
	}
}

func TestEnvelopeNonceIsFresh(t *testing.T) {
	r := testRing(t, "k1", "k1")
	a, _ := r.Seal(nil, []byte("same"))
	b, _ := r.Seal(nil, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("got equal ciphertexts for two seals of one value, want a fresh nonce each")
	}
}

func TestEnvelopePlaintextPassesThrough(t *testing.T) {
	r := testRing(t, "k1", "k1")
	plain := []byte(`{"kind":"Secret"}`)
	got, err := r.Open([]byte("k"), plain)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("got %q, %v, want the plaintext unchanged", got, err)
	}
	if IsSealed(plain) {
		t.Fatal("got IsSealed true for JSON")
	}
}

func TestEnvelopeRejects(t *testing.T) {
	r := testRing(t, "k1", "k1")
	aad := []byte("/core/secrets/default/db")
	sealed, err := r.Seal(aad, []byte("the secret value"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name string
		ring *Keyring
		aad  []byte
		data []byte
		want error
	}{
		{name: "wrong key of the same id", ring: testRing(t, "k1", "k1"), aad: aad, data: sealed, want: ErrTampered},
		{name: "unknown key id", ring: testRing(t, "k2", "k2"), aad: aad, data: sealed, want: ErrUnknownKey},
		{name: "flipped ciphertext byte", ring: r, aad: aad, data: flip(len(sealed) - 20), want: ErrTampered},
		{name: "flipped tag byte", ring: r, aad: aad, data: flip(len(sealed) - 1), want: ErrTampered},
		{name: "flipped nonce byte", ring: r, aad: aad, data: flip(len(Header) + 3), want: ErrTampered},
		{name: "truncated", ring: r, aad: aad, data: sealed[:len(Header)+3+5], want: ErrTampered},
		{name: "moved under another store key", ring: r, aad: []byte("/core/secrets/default/other"), data: sealed, want: ErrTampered},
		{name: "header without key id", ring: r, aad: aad, data: []byte(Header + "nokeyid"), want: ErrTampered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ring.Open(tc.aad, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %q, %v, want %v", got, err, tc.want)
			}
			if strings.Contains(err.Error(), "the secret value") {
				t.Fatalf("got error %q, want no plaintext in it", err)
			}
		})
	}
}

func TestKeyringSeveralKeys(t *testing.T) {
	old := testRing(t, "old", "old")
	sealedOld, _ := old.Seal([]byte("a"), []byte("one"))
	both, err := NewKeyring("new", map[string][]byte{"old": old.raw["old"], "new": mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, _ := both.Seal([]byte("b"), []byte("two"))
	if id, _ := KeyID(sealedNew); id != "new" {
		t.Fatalf("got write key %s, want new", id)
	}
	for _, tc := range []struct {
		aad, data []byte
		want      string
	}{{[]byte("a"), sealedOld, "one"}, {[]byte("b"), sealedNew, "two"}} {
		got, err := both.Open(tc.aad, tc.data)
		if err != nil || string(got) != tc.want {
			t.Fatalf("got %q, %v, want %q", got, err, tc.want)
		}
	}
	if _, err := old.Open([]byte("b"), sealedNew); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v, want ErrUnknownKey from a keyring without the new key", err)
	}
	if got := strings.Join(both.IDs(), ","); got != "new,old" {
		t.Fatalf("got ids %s, want new,old", got)
	}
}

func TestNewKeyringRejects(t *testing.T) {
	k := mustKey(t)
	cases := []struct {
		name  string
		write string
		keys  map[string][]byte
	}{
		{name: "write key missing", write: "b", keys: map[string][]byte{"a": k}},
		{name: "short key", write: "a", keys: map[string][]byte{"a": k[:16]}},
		{name: "colon in id", write: "a:b", keys: map[string][]byte{"a:b": k}},
		{name: "empty id", write: "", keys: map[string][]byte{"": k}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeyring(tc.write, tc.keys); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
