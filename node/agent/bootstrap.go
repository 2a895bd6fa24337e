package agent

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/internal/gossip"
	"orch.dev/orch/internal/token"
)

// joinGossip starts the agent's gossip membership and keeps joining until
// it knows another member.
func (a *Agent) joinGossip(ctx context.Context) error {
	pool, err := gossip.Start(gossip.Config{
		Name: a.cfg.Name, BindAddr: a.cfg.GossipAddr, AdvertiseIP: a.cfg.NodeIP,
		Key: token.Derive(a.cfg.Token, "gossip"), Meta: gossip.Meta{Role: "agent"}, Logger: a.log,
		ProbeInterval: a.cfg.GossipProbeInterval, SuspicionMult: a.cfg.GossipSuspicionMult,
	})
	if err != nil {
		return fmt.Errorf("--gossip-addr: %w", err)
	}
	a.pool = pool
	go func() {
		for ctx.Err() == nil {
			if len(pool.Members()) <= 1 {
				if _, err := pool.Join(a.cfg.Join); err != nil {
					a.log.Debug("gossip join failed; retrying", "join", a.cfg.Join, "err", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return nil
}

// apiServers returns the API addresses (host:port) of the servers gossip
// knows, alive ones first.
func (a *Agent) apiServers() []string {
	var alive, other []string
	for _, m := range a.pool.Members() {
		if m.Meta.Role != "server" || m.Meta.API == "" {
			continue
		}
		if m.State == "alive" {
			alive = append(alive, m.Meta.API)
		} else {
			other = append(other, m.Meta.API)
		}
	}
	return append(alive, other...)
}

// waitServers waits until gossip names at least one API server.
func (a *Agent) waitServers(ctx context.Context) ([]string, error) {
	for {
		ch := a.pool.Changed()
		if s := a.apiServers(); len(s) > 0 {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no API server found through gossip (--join %s): %w", strings.Join(a.cfg.Join, ","), ctx.Err())
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// fetchCA gets the cluster CA from a server and checks, with the cluster
// token, that a token holder vouches for it. The connection cannot verify
// the server yet (the CA is what is being fetched); the proof is what
// makes the answer trustworthy.
func (a *Agent) fetchCA(ctx context.Context, servers []string) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // verified by the proof below
	}}
	var lastErr error
	for _, s := range servers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s+"/orch/v1/bootstrap/ca", nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("%s: %d %s %v", s, resp.StatusCode, body, err)
			continue
		}
		var b struct {
			CA    string `json:"ca"`
			Proof string `json:"proof"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			lastErr = fmt.Errorf("%s: %v", s, err)
			continue
		}
		proof, err := hex.DecodeString(b.Proof)
		if err != nil || !token.CheckCAProof(a.cfg.Token, []byte(b.CA), proof) {
			return nil, fmt.Errorf("the cluster CA from %s is not vouched for by the cluster token: is --token right?", s)
		}
		return []byte(b.CA), nil
	}
	return nil, fmt.Errorf("fetch the cluster CA: %w", lastErr)
}

// failover sends each request to the API server in use, and switches to
// another server (from gossip) when one cannot be reached. A request that
// could not connect is retried on the next server; one that broke later
// fails, and the caller (informers, the status manager) retries.
type failover struct {
	servers func() []string
	base    http.RoundTripper
	log     interface{ Info(string, ...any) }

	mu      sync.Mutex
	current string
}

const placeholderHost = "orch-api.invalid"

func (f *failover) pick(avoid map[string]bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current != "" && !avoid[f.current] {
		return f.current
	}
	for _, s := range f.servers() {
		if !avoid[s] {
			if s != f.current {
				f.log.Info("using API server", "addr", s)
			}
			f.current = s
			return s
		}
	}
	return ""
}

func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH)
}

func (f *failover) RoundTrip(r *http.Request) (*http.Response, error) {
	tried := map[string]bool{}
	for {
		host := f.pick(tried)
		if host == "" {
			return nil, fmt.Errorf("no API server reachable (tried %d)", len(tried))
		}
		tried[host] = true
		r2 := r.Clone(r.Context())
		r2.URL.Host, r2.Host = host, host
		if r.Body != nil && r.GetBody != nil && len(tried) > 1 {
			body, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			r2.Body = body
		}
		resp, err := f.base.RoundTrip(r2)
		if err == nil || !dialFailed(err) || (r.Body != nil && r.GetBody == nil) {
			return resp, err
		}
		f.mu.Lock()
		if f.current == host {
			f.current = ""
		}
		f.mu.Unlock()
	}
}

// clientConfig is the agent's API client configuration.
func (a *Agent) clientConfig(ca []byte) *rest.Config {
	return &rest.Config{
		Host:            "https://" + placeholderHost,
		BearerToken:     token.AgentAPIToken(a.cfg.Token),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		UserAgent:       "orch-agent/" + a.cfg.Name,
		QPS:             50,
		Burst:           100,
		WrapTransport: func(base http.RoundTripper) http.RoundTripper {
			return &failover{servers: a.apiServers, base: base, log: a.log}
		},
	}
}

// servingCert returns the endpoint's certificate, asking a server to sign
// one when there is none for this node address yet.
func (a *Agent) servingCert(ctx context.Context, client kubernetes.Interface) (tls.Certificate, error) {
	certPath := filepath.Join(a.cfg.DataDir, "endpoint.crt")
	keyPath := filepath.Join(a.cfg.DataDir, "endpoint.key")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && pair.Leaf != nil &&
		time.Until(pair.Leaf.NotAfter) > 30*24*time.Hour && pair.Leaf.VerifyHostname(a.cfg.NodeIP) == nil {
		return pair, nil
	}
	csr, key, err := certs.NewServingCSR(a.cfg.Name, []net.IP{net.ParseIP(a.cfg.NodeIP)}, []string{a.cfg.Name})
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := client.CoreV1().RESTClient().Post().AbsPath("/orch/v1/certificates/node").Body(csr).DoRaw(ctx)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("get the endpoint certificate signed: %w", err)
	}
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certPath, cert, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}
