package api

import (
	"context"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

var secretKeysGR = schema.GroupResource{Group: "orch.dev", Resource: "secretkeys"}

// secretsPrefix is the store prefix of every Secret.
func (s *Server) secretsPrefix() string {
	return s.reg.lookup("", "v1", "secrets").prefix("")
}

// plain returns kv with its value opened when it is sealed (a Secret
// encrypted at rest); other values are returned as they are.
func (s *Server) plain(ctx context.Context, kv *raftstore.KeyValue) (*raftstore.KeyValue, error) {
	if kv == nil || !encryption.IsSealed(kv.Value) {
		return kv, nil
	}
	if s.enc == nil {
		return nil, errors.New("api: " + kv.Key + " is encrypted, and this server has no key-encryption key")
	}
	v, err := s.enc.Open(ctx, kv.Key, kv.ModRevision, kv.Value)
	if err != nil {
		return nil, err
	}
	out := *kv
	out.Value = v
	return &out, nil
}

// storeTxn runs a write, sealing the Secrets in it when encryption is on.
func (s *Server) storeTxn(ctx context.Context, txn *raftstore.Txn) (raftstore.TxnResult, error) {
	if s.enc == nil {
		return s.store.Txn(ctx, txn)
	}
	return s.enc.Txn(ctx, txn)
}

// serveRotateKey answers POST /orch/v1/secrets/rotate-key: a new data key,
// every Secret sealed again with it, the old keys retired.
func (s *Server) serveRotateKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, apierrors.NewMethodNotSupported(secretKeysGR, r.Method))
		return
	}
	if s.enc == nil {
		writeError(w, apierrors.NewBadRequest("encryption at rest is off on this server (it has no cluster token to derive the key-encryption key from)"))
		return
	}
	// Rotation runs as long as it takes: it is bounded by the number of
	// Secrets, not by the default request timeout.
	res, err := s.enc.Rotate(r.Context())
	if err != nil {
		s.log.Warn("secret key rotation failed", "reencrypted", res.Reencrypted, "err", err)
		writeError(w, storeError(err))
		return
	}
	if res.Retired == nil {
		res.Retired = []string{}
	}
	s.log.Info("rotated the secret data key", "key", res.KeyID, "reencrypted", res.Reencrypted, "retired", res.Retired, "resumed", res.Resumed)
	writeObject(w, http.StatusOK, res)
}
