// Package token handles the cluster token: the one secret a server or agent
// needs to join. Every other cluster secret (the key that authenticates peer
// connections, the gossip encryption key, the key that seals bootstrap data
// in the store) is derived from it, each with its own label, so that one
// derived key never reveals another or the token.
package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MinLength is the shortest token accepted.
const MinLength = 16

// Generate returns a new random token (32 random bytes, hex).
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Check says what is wrong with a token, if anything.
func Check(tok string) error {
	if len(tok) < MinLength {
		return fmt.Errorf("the token must be at least %d characters (generate one with `orchd token generate`)", MinLength)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return errors.New("the token must not contain whitespace")
	}
	return nil
}

// Derive returns a 32-byte key for purpose, derived from the token.
func Derive(tok, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(tok), []byte("orch cluster token"), purpose, 32)
	if err != nil {
		panic(err) // only for lengths over 255*32 bytes
	}
	return k
}

// Seal encrypts plaintext with AES-256-GCM under key; the nonce leads.
func Seal(key, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plaintext, nil), nil
}

// ErrWrongKey means sealed data could not be opened: another token sealed it.
var ErrWrongKey = errors.New("token: cannot decrypt (sealed under another cluster token)")

// Open decrypts what Seal made.
func Open(key, sealed []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, ErrWrongKey
	}
	out, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
	if err != nil {
		return nil, ErrWrongKey
	}
	return out, nil
}

// Resolve decides a server's token: the flag, else the one saved in the
// data directory, else (only when allowed, for a new single-server
// cluster) a new one. The result is saved to DIR/token (mode 0600).
func Resolve(flag, dir string, mayGenerate bool) (tok string, generated bool, err error) {
	path := filepath.Join(dir, "token")
	saved, rerr := os.ReadFile(path)
	savedTok := strings.TrimSpace(string(saved))
	switch {
	case flag != "":
		if err := Check(flag); err != nil {
			return "", false, fmt.Errorf("--token: %w", err)
		}
		if rerr == nil && savedTok != "" && savedTok != flag {
			return "", false, fmt.Errorf("--token differs from the token this data directory's cluster uses (%s); use that one, or another --data-dir for another cluster", path)
		}
		tok = flag
	case rerr == nil && savedTok != "":
		tok = savedTok
	case mayGenerate:
		if tok, err = Generate(); err != nil {
			return "", false, err
		}
		generated = true
	default:
		return "", false, fmt.Errorf("--token is required: every server and agent of a cluster must use the same token (generate one with `orchd token generate`)")
	}
	if rerr != nil || savedTok != tok {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			return "", false, fmt.Errorf("save token: %w", err)
		}
	}
	return tok, generated, nil
}

// AgentAPIToken is the bearer token agents present to the API. Every token
// holder can derive it, which is the point: joining needs the cluster token
// and nothing else.
func AgentAPIToken(tok string) string { return hex.EncodeToString(Derive(tok, "agent api token")) }

// AgentEndpointToken is the bearer token servers present to an agent's
// endpoint (logs, exec); the agent refuses every other caller.
func AgentEndpointToken(tok string) string {
	return hex.EncodeToString(Derive(tok, "agent endpoint token"))
}

// CAProof binds the cluster CA to the token: a server hands an agent the CA
// with this proof, and the agent, holding the token, checks it before it
// trusts the CA. Without the token the proof cannot be forged.
func CAProof(tok string, caPEM []byte) []byte {
	m := hmac.New(sha256.New, Derive(tok, "ca proof"))
	m.Write(caPEM)
	return m.Sum(nil)
}

// CheckCAProof reports whether proof was made for caPEM with tok.
func CheckCAProof(tok string, caPEM, proof []byte) bool {
	return hmac.Equal(CAProof(tok, caPEM), proof)
}
