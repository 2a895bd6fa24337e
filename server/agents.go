package server

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"
	"time"

	"orch.dev/orch/internal/token"
	"orch.dev/orch/server/api"
)

// NodeUser is the user agents authenticate as.
const NodeUser = "system:node"

// authenticate maps a bearer token to its user: the admin token to the
// admin, the token derived for agents to NodeUser.
func (s *Server) authenticate(tok string) (string, bool) {
	sec := s.secrets.Load()
	if sec == nil {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(sec.adminToken)) == 1 {
		return api.AdminUser, true
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.agentAPIToken)) == 1 {
		return NodeUser, true
	}
	return "", false
}

var errNoSecrets = errors.New("the cluster's bootstrap data has not reached this server yet")

// CABundle returns the cluster CA and its proof for joining agents.
func (s *Server) CABundle() ([]byte, []byte, error) {
	sec := s.secrets.Load()
	if sec == nil {
		return nil, nil, errNoSecrets
	}
	return sec.ca.CertPEM, token.CAProof(s.token, sec.ca.CertPEM), nil
}

// SignNodeCSR signs an agent's serving certificate.
func (s *Server) SignNodeCSR(csr []byte) ([]byte, error) {
	sec := s.secrets.Load()
	if sec == nil {
		return nil, errNoSecrets
	}
	return sec.ca.SignServingCSR(csr)
}

// agentTransport reaches agents over TLS, trusting the cluster CA. It is
// built on first use, once the CA is known.
type agentTransport struct {
	s    *Server
	once sync.Once
	rt   http.RoundTripper
	err  error
}

func (t *agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.once.Do(func() {
		sec := t.s.secrets.Load()
		if sec == nil {
			t.err = errNoSecrets
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(sec.ca.Cert)
		t.rt = &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false, // exec upgrades to WebSocket over HTTP/1.1
		}
	})
	if t.err != nil {
		return nil, t.err
	}
	return t.rt.RoundTrip(r)
}
