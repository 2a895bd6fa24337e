package api

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"orch.dev/orch/raftstore"
)

// RaftPeer is one entry of GET /orch/v1/raft/peers, and of
// `orchctl operator raft list-peers -o json`.
type RaftPeer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"` // "leader" or "follower"
	Voter   bool   `json:"voter"`
}

// serveOperator serves the cluster operations under /orch/v1:
//
//	GET    /orch/v1/raft/peers
//	DELETE /orch/v1/raft/peers/NAME
//	POST   /orch/v1/raft/transfer-leadership[?to=NAME]
//	GET    /orch/v1/snapshot   (the whole store, as a stream)
//	PUT    /orch/v1/snapshot   (restore it)
//	POST   /orch/v1/secrets/rotate-key
func (s *Server) serveOperator(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/orch/v1/secrets/rotate-key" {
		s.serveRotateKey(w, r)
		return
	}
	op := s.cfg.Operator
	if op == nil {
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/orch/v1/")
	ctx, cancel := s.requestContext(r)
	defer cancel()
	switch {
	case path == "raft/peers" && r.Method == http.MethodGet:
		peers, err := op.Peers()
		if err != nil {
			writeError(w, storeError(err))
			return
		}
		out := []RaftPeer{}
		for _, p := range peers {
			state := "follower"
			if p.Leader {
				state = "leader"
			}
			out = append(out, RaftPeer{Name: p.ID, Address: p.Address, State: state, Voter: p.Voter})
		}
		writeObject(w, http.StatusOK, out)
	case strings.HasPrefix(path, "raft/peers/") && r.Method == http.MethodDelete:
		name := strings.TrimPrefix(path, "raft/peers/")
		if err := op.RemovePeer(ctx, name); err != nil {
			if errors.Is(err, raftstore.ErrUnknownPeer) {
				writeError(w, apierrors.NewNotFound(raftPeersGR, name))
				return
			}
			writeError(w, storeError(err))
			return
		}
		writeText(w, http.StatusOK, "removed "+name+"\n")
	case path == "raft/transfer-leadership" && r.Method == http.MethodPost:
		to := r.URL.Query().Get("to")
		if err := op.TransferLeadership(ctx, to); err != nil {
			if errors.Is(err, raftstore.ErrUnknownPeer) {
				writeError(w, apierrors.NewNotFound(raftPeersGR, to))
				return
			}
			writeError(w, storeError(err))
			return
		}
		writeText(w, http.StatusOK, "leadership transferred\n")
	case path == "snapshot" && r.Method == http.MethodGet:
		// Buffered, so a failure is a proper error rather than a cut stream.
		var buf bytes.Buffer
		if err := op.Snapshot(ctx, &buf); err != nil {
			writeError(w, storeError(err))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = buf.WriteTo(w) // a client that hangs up has no use for an error
	case path == "snapshot" && r.Method == http.MethodPut:
		if err := op.Restore(ctx, r.Body); err != nil {
			if errors.Is(err, raftstore.ErrBadSnapshot) {
				writeError(w, apierrors.NewBadRequest(err.Error()))
				return
			}
			writeError(w, storeError(err))
			return
		}
		writeText(w, http.StatusOK, "snapshot restored\n")
	default:
		writeError(w, pathNotFound(r.URL.Path))
	}
}

var raftPeersGR = schema.GroupResource{Group: "orch.dev", Resource: "raftpeers"}
