// Package peerauth secures connections between cluster members (Raft and the
// servers' internal RPC) with nothing but the cluster token.
//
// Both sides run TLS 1.3, the server with a throwaway self-signed certificate.
// Certificates prove nothing here; instead each side then sends an HMAC, keyed
// by a key derived from the cluster token, over keying material exported from
// this very TLS session (RFC 5705). A peer without the token cannot produce the
// proof, and a man in the middle holds two different TLS sessions whose exported
// material differs, so it cannot relay one side's proof to the other. The result
// is an encrypted connection that is mutually authenticated by the token, before
// any cluster CA exists.
package peerauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"
)

// ErrDenied means the other side did not prove that it holds the cluster token.
var ErrDenied = errors.New("peerauth: peer did not prove the cluster token")

const (
	exportLabel = "orch peer auth v1"
	proofSize   = sha256.Size
)

// Key derives the 32-byte peer authentication key from a cluster token.
func Key(token string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(token), []byte("orch cluster token"), "peer auth", 32)
	if err != nil {
		// hkdf.Key only fails for lengths beyond 255*32 bytes.
		panic(err)
	}
	return k
}

var (
	certOnce sync.Once
	cert     tls.Certificate
	certErr  error
)

func ephemeralCert() (tls.Certificate, error) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "orch peer"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return cert, certErr
}

func proof(key, ekm []byte, role string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(ekm)
	return m.Sum(nil)
}

// Client runs the client side of the handshake over conn and returns the
// secured connection. On error conn is closed.
func Client(conn net.Conn, key []byte, timeout time.Duration) (net.Conn, error) {
	tc := tls.Client(conn, &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the peer is authenticated by the token proof below
		ServerName:         "orch-peer",
	})
	return finish(tc, conn, key, timeout, "client", "server")
}

// Server runs the server side of the handshake over conn.
func Server(conn net.Conn, key []byte, timeout time.Duration) (net.Conn, error) {
	c, err := ephemeralCert()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("peerauth: make certificate: %w", err)
	}
	tc := tls.Server(conn, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{c}, SessionTicketsDisabled: true})
	return finish(tc, conn, key, timeout, "server", "client")
}

func finish(tc *tls.Conn, raw net.Conn, key []byte, timeout time.Duration, me, peer string) (net.Conn, error) {
	if timeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(timeout)) // best effort; a failing deadline surfaces as an I/O error
	}
	fail := func(err error) (net.Conn, error) {
		tc.Close()
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		return fail(fmt.Errorf("peerauth: tls handshake: %w", err))
	}
	state := tc.ConnectionState()
	ekm, err := state.ExportKeyingMaterial(exportLabel, nil, 32)
	if err != nil {
		return fail(fmt.Errorf("peerauth: export keying material: %w", err))
	}
	mine := proof(key, ekm, me)
	want := proof(key, ekm, peer)
	got := make([]byte, proofSize)
	// The client proves itself first so that a server never reveals a proof to
	// an unauthenticated peer.
	if me == "client" {
		if _, err := tc.Write(mine); err != nil {
			return fail(fmt.Errorf("peerauth: send proof: %w", err))
		}
		if _, err := io.ReadFull(tc, got); err != nil {
			return fail(fmt.Errorf("peerauth: read proof: %w", err))
		}
		if !hmac.Equal(got, want) {
			return fail(ErrDenied)
		}
	} else {
		if _, err := io.ReadFull(tc, got); err != nil {
			return fail(fmt.Errorf("peerauth: read proof: %w", err))
		}
		if !hmac.Equal(got, want) {
			return fail(ErrDenied)
		}
		if _, err := tc.Write(mine); err != nil {
			return fail(fmt.Errorf("peerauth: send proof: %w", err))
		}
	}
	if timeout > 0 {
		_ = raw.SetDeadline(time.Time{})
	}
	return tc, nil
}
