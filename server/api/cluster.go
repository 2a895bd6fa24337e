package api

import (
	"encoding/hex"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ClusterOps are what agents need from the servers to join: the cluster CA
// (with a proof that only a holder of the cluster token can check) and a
// serving certificate for their endpoint.
type ClusterOps interface {
	CABundle() (caPEM, proof []byte, err error)
	SignNodeCSR(csrPEM []byte) (certPEM []byte, err error)
}

// CABundle is the answer of GET /orch/v1/bootstrap/ca.
type CABundle struct {
	CA    string `json:"ca"`    // PEM
	Proof string `json:"proof"` // hex HMAC of CA with a key derived from the cluster token
}

// serveBootstrapCA answers anonymously: the CA is not secret, and the proof
// lets an agent with the token tell the real one from an impostor's.
func (s *Server) serveBootstrapCA(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Cluster == nil || r.Method != http.MethodGet {
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	ca, proof, err := s.cfg.Cluster.CABundle()
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable("the cluster CA is not available yet: "+err.Error()))
		return
	}
	writeObject(w, http.StatusOK, CABundle{CA: string(ca), Proof: hex.EncodeToString(proof)})
}

// serveNodeCertificate signs an agent's serving certificate request.
func (s *Server) serveNodeCertificate(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Cluster == nil || r.Method != http.MethodPost {
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	csr, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, badRequest("read the certificate request: %v", err))
		return
	}
	cert, err := s.cfg.Cluster.SignNodeCSR(csr)
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cert) // nothing to do if the agent went away
}
