package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestIssueAndVerify(t *testing.T) {
	ca, err := NewCA("orch-test")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := again.IssueServer("s1", []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.5")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cases := []struct {
		name string
		host string
		ok   bool
	}{
		{"loopback SAN", "127.0.0.1", true},
		{"advertised SAN", "10.0.0.5", true},
		{"dns SAN", "localhost", true},
		{"other host", "10.0.0.6", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.host})
			if (err == nil) != tc.ok {
				t.Fatalf("verify for %s: got err %v, want ok=%v", tc.host, err, tc.ok)
			}
		})
	}
}

func TestWriteKubeconfig(t *testing.T) {
	ca, _ := NewCA("x")
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := WriteKubeconfig(path, "orch", "https://127.0.0.1:6443", ca.CertPEM, "tok"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "tok" || len(cfg.TLSClientConfig.CAData) == 0 {
		t.Fatalf("got %+v, want host, token and CA", cfg)
	}
}

func TestSignServingCSR(t *testing.T) {
	ca, _ := NewCA("x")
	csr, keyPEM, err := NewServingCSR("node1", []net.IP{net.ParseIP("10.0.0.9")}, []string{"node1"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignServingCSR(csr)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.9"}); err != nil {
		t.Fatalf("got %v, want a certificate valid for 10.0.0.9", err)
	}
	if _, err := ca.SignServingCSR([]byte("junk")); err == nil {
		t.Fatal("got no error for junk")
	}
}
