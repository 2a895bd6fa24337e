package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Header starts every sealed value; the key id and a colon follow it.
const Header = "orch:enc:aesgcm:v1:"

var header = []byte(Header)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// Errors of Open. Neither says anything of the value.
var (
	// ErrUnknownKey means the value was sealed with a key this keyring does
	// not hold: a retired key, or another cluster's.
	ErrUnknownKey = errors.New("encryption: value sealed with a key that is not in the keyring")
	// ErrTampered means the value did not authenticate: it was changed,
	// truncated, or moved under another store key.
	ErrTampered = errors.New("encryption: sealed value does not authenticate")
)

// IsSealed reports whether data is an envelope rather than plaintext.
func IsSealed(data []byte) bool { return bytes.HasPrefix(data, header) }

// KeyID returns the id of the key that sealed data.
func KeyID(data []byte) (string, bool) {
	if !IsSealed(data) {
		return "", false
	}
	rest := data[len(header):]
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return "", false
	}
	return string(rest[:i]), true
}

// Keyring is a set of data keys, one of which seals new values. It is
// immutable once built, so callers may share it without locks.
type Keyring struct {
	write string
	keys  map[string]cipher.AEAD
	raw   map[string][]byte
}

// NewKeyID returns a fresh random key id.
func NewKeyID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("encryption: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewKey returns a fresh random data key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	return k, nil
}

// NewKeyring builds a keyring from keys (id to key) with write as the key
// that seals.
func NewKeyring(write string, keys map[string][]byte) (*Keyring, error) {
	if _, ok := keys[write]; !ok {
		return nil, fmt.Errorf("encryption: the write key %q is not among the keys", write)
	}
	r := &Keyring{write: write, keys: make(map[string]cipher.AEAD, len(keys)), raw: make(map[string][]byte, len(keys))}
	for id, k := range keys {
		if id == "" || bytes.ContainsAny([]byte(id), ": \t\n") {
			return nil, fmt.Errorf("encryption: key id %q must be non-empty without colons or spaces", id)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("encryption: key %s is %d bytes, want %d", id, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("encryption: key %s: %w", id, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption: key %s: %w", id, err)
		}
		r.keys[id] = gcm
		r.raw[id] = slices.Clone(k)
	}
	return r, nil
}

// WriteKey is the id of the key that seals new values.
func (r *Keyring) WriteKey() string { return r.write }

// IDs lists the ids of every key, sorted.
func (r *Keyring) IDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Has reports whether the keyring holds key id.
func (r *Keyring) Has(id string) bool { _, ok := r.keys[id]; return ok }

// Seal encrypts plaintext with the write key under a fresh random nonce;
// aad (the store key) is authenticated but not stored.
func (r *Keyring) Seal(aad, plaintext []byte) ([]byte, error) {
	gcm := r.keys[r.write]
	out := make([]byte, 0, len(header)+len(r.write)+1+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out = append(out, header...)
	out = append(out, r.write...)
	out = append(out, ':')
	nonceAt := len(out)
	out = out[:nonceAt+gcm.NonceSize()]
	if _, err := io.ReadFull(rand.Reader, out[nonceAt:]); err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	return gcm.Seal(out, out[nonceAt:], plaintext, aad), nil
}

// Open decrypts what Seal made with aad. Plaintext (no header) is returned
// unchanged.
func (r *Keyring) Open(aad, data []byte) ([]byte, error) {
	if !IsSealed(data) {
		return data, nil
	}
	id, ok := KeyID(data)
	if !ok {
		return nil, ErrTampered
	}
	gcm, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w (key %s)", ErrUnknownKey, id)
	}
	body := data[len(header)+len(id)+1:]
	if len(body) < gcm.NonceSize()+gcm.Overhead() {
		return nil, ErrTampered
	}
	out, err := gcm.Open(nil, body[:gcm.NonceSize()], body[gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}
