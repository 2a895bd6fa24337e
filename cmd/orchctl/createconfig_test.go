package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"orch.dev/orch/server/api/apitest"
)

// configFixtures writes the files the create configmap/secret cases read.
func configFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "app.conf", "x=1\n")
	writeFile(t, dir, "conf.d/a.yaml", "a: 1\n")
	writeFile(t, dir, "conf.d/b.yaml", "b: 2\n")
	writeFile(t, dir, "conf.d/sub/ignored", "not read\n")
	writeFile(t, dir, "logo.bin", "\x89PNG\x00\xff\xfe")
	writeFile(t, dir, "app.env", "\ufeff# settings\nMODE=prod\n\n  LEVEL=debug=verbose\nFROM_ENV\nQUOTED=\"kept\"\n")
	writeFile(t, dir, "bad.env", "GOOD=1\n1BAD=2\n")
	writeFile(t, dir, "bad name", "x")
	return dir
}

func TestCreateConfigMap(t *testing.T) {
	t.Setenv("FROM_ENV", "from the environment")
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		wantData   map[string]string
		wantBinary map[string][]byte
	}{
		{name: "literals", args: []string{"--from-literal", "a=1", "--from-literal=b=x=y", "--from-literal", "empty="},
			wantStdout: "configmap/cfg created\n", wantData: map[string]string{"a": "1", "b": "x=y", "empty": ""}},
		{name: "files", args: []string{"--from-file", "DIR/app.conf", "--from-file", "main.conf=DIR/app.conf"},
			wantStdout: "configmap/cfg created\n", wantData: map[string]string{"app.conf": "x=1\n", "main.conf": "x=1\n"}},
		{name: "directory", args: []string{"--from-file", "DIR/conf.d"},
			wantStdout: "configmap/cfg created\n", wantData: map[string]string{"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"}},
		{name: "binary file", args: []string{"--from-file", "DIR/logo.bin", "--from-literal", "t=text"},
			wantStdout: "configmap/cfg created\n", wantData: map[string]string{"t": "text"}, wantBinary: map[string][]byte{"logo.bin": []byte("\x89PNG\x00\xff\xfe")}},
		{name: "env file", args: []string{"--from-env-file", "DIR/app.env"},
			wantStdout: "configmap/cfg created\n", wantData: map[string]string{"MODE": "prod", "LEVEL": "debug=verbose", "FROM_ENV": "from the environment", "QUOTED": `"kept"`}},
		{name: "nothing", args: nil, wantStdout: "configmap/cfg created\n"},
		{name: "literal without =", args: []string{"--from-literal", "x"}, wantCode: 1, wantStderr: `--from-literal "x": expected KEY=VALUE`},
		{name: "literal without key", args: []string{"--from-literal", "=v"}, wantCode: 1, wantStderr: `--from-literal "=v": expected KEY=VALUE`},
		{name: "bad key", args: []string{"--from-literal", "a b=1"}, wantCode: 1, wantStderr: `--from-literal "a b=1": key "a b" is not valid`},
		{name: "duplicate key", args: []string{"--from-literal", "app.conf=1", "--from-file", "DIR/app.conf"}, wantCode: 1,
			wantStderr: `--from-file "DIR/app.conf": duplicate key "app.conf"`},
		{name: "bad file name as key", args: []string{"--from-file", "DIR/bad name"}, wantCode: 1, wantStderr: `key "bad name" is not valid`},
		{name: "missing file", args: []string{"--from-file", "DIR/nope"}, wantCode: 1, wantStderr: `--from-file "DIR/nope": stat`},
		{name: "key for a directory", args: []string{"--from-file", "k=DIR/conf.d"}, wantCode: 1, wantStderr: "a key cannot name a directory"},
		{name: "bad env file", args: []string{"--from-env-file", "DIR/bad.env"}, wantCode: 1, wantStderr: `--from-env-file "DIR/bad.env": line 2: "1BAD" is not a valid variable name`},
		{name: "bad dry-run", args: []string{"--dry-run", "maybe"}, wantCode: 1, wantStderr: `--dry-run "maybe": want none, client or server`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			dir := configFixtures(t)
			args := []string{"create", "configmap", "cfg"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", dir))
			}
			r := orchctl(t, env, "", args...)
			wantStderr := strings.ReplaceAll(tc.wantStderr, "DIR", dir)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || !strings.Contains(r.stderr, wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, tc.wantCode, tc.wantStdout, wantStderr)
			}
			cm, err := env.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "cfg", metav1.GetOptions{})
			if tc.wantCode != 0 {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("got %v, want no configmap after a refused command", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cm.Data) != len(tc.wantData) || (len(tc.wantData) > 0 && !reflect.DeepEqual(cm.Data, tc.wantData)) {
				t.Errorf("got data %q, want %q", cm.Data, tc.wantData)
			}
			if len(cm.BinaryData) != len(tc.wantBinary) || (len(tc.wantBinary) > 0 && !reflect.DeepEqual(cm.BinaryData, tc.wantBinary)) {
				t.Errorf("got binaryData %q, want %q", cm.BinaryData, tc.wantBinary)
			}
		})
	}
}

func TestCreateSecretGeneric(t *testing.T) {
	env := apitest.Start(t)
	dir := configFixtures(t)
	mustSucceed(t, env, "", "create", "secret", "generic", "creds", "--from-literal", "user=admin", "--from-file", "key="+filepath.Join(dir, "logo.bin"), "--from-env-file", filepath.Join(dir, "app.env"))
	s, err := env.Client.CoreV1().Secrets("default").Get(context.Background(), "creds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "admin", "key": "\x89PNG\x00\xff\xfe", "MODE": "prod", "LEVEL": "debug=verbose", "FROM_ENV": "", "QUOTED": `"kept"`}
	got := map[string]string{}
	for k, v := range s.Data {
		got[k] = string(v)
	}
	if s.Type != corev1.SecretTypeOpaque || !reflect.DeepEqual(got, want) {
		t.Fatalf("got type %s data %q, want Opaque %q", s.Type, got, want)
	}
	r := mustSucceed(t, env, "", "create", "secret", "generic", "auth", "--type", "kubernetes.io/basic-auth", "--from-literal", "username=u", "--from-literal", "password=p")
	if r.stdout != "secret/auth created\n" {
		t.Fatalf("got %q, want secret/auth created", r.stdout)
	}
	// The server's validation of the type speaks through orchctl.
	r = orchctl(t, env, "", "create", "secret", "generic", "bad", "--type", "kubernetes.io/basic-auth", "--from-literal", "token=t")
	if r.code != 1 || !strings.Contains(r.stderr, "data[username]") {
		t.Fatalf("got %s, want the server's error naming data[username]", r)
	}
	r = orchctl(t, env, "", "create", "secret", "generic", "dup", "--from-literal", "a=1", "--from-literal", "a=2")
	if r.code != 1 || !strings.Contains(r.stderr, `--from-literal "a=2": duplicate key "a"`) {
		t.Fatalf("got %s, want the duplicate key refused", r)
	}
}

// selfSignedPair writes a certificate and its key, and a second key that
// does not match it.
func selfSignedPair(t *testing.T, dir string) (cert, key, otherKey string) {
	t.Helper()
	writeKey := func(name string) (*ecdsa.PrivateKey, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, writeFile(t, dir, name, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
	}
	k, key := writeKey("tls.key")
	_, otherKey = writeKey("other.key")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert = writeFile(t, dir, "tls.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return cert, key, otherKey
}

func TestCreateSecretTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, otherKey := selfSignedPair(t, dir)
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "pair", args: []string{"--cert", cert, "--key", key}},
		{name: "key of another cert", args: []string{"--cert", cert, "--key", otherKey}, wantCode: 1, wantStderr: "not a certificate and its private key"},
		{name: "key and cert swapped", args: []string{"--cert", key, "--key", cert}, wantCode: 1, wantStderr: "not a certificate and its private key"},
		{name: "no key", args: []string{"--cert", cert}, wantCode: 1, wantStderr: "create secret tls needs --cert PATH and --key PATH"},
		{name: "missing cert file", args: []string{"--cert", filepath.Join(dir, "nope"), "--key", key}, wantCode: 1, wantStderr: `--cert "` + filepath.Join(dir, "nope") + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			r := orchctl(t, env, "", append([]string{"create", "secret", "tls", "web"}, tc.args...)...)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stderr containing %q", r, tc.wantCode, tc.wantStderr)
			}
			if tc.wantCode != 0 {
				return
			}
			s, err := env.Client.CoreV1().Secrets("default").Get(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantCert, _ := os.ReadFile(cert)
			wantKey, _ := os.ReadFile(key)
			if s.Type != corev1.SecretTypeTLS || string(s.Data[corev1.TLSCertKey]) != string(wantCert) || string(s.Data[corev1.TLSPrivateKeyKey]) != string(wantKey) {
				t.Fatalf("got type %s keys %d, want kubernetes.io/tls with the files", s.Type, len(s.Data))
			}
		})
	}
}

func TestCreateSecretDockerRegistry(t *testing.T) {
	env := apitest.Start(t)
	r := mustSucceed(t, env, "", "create", "secret", "docker-registry", "pull", "--docker-server", "registry.local:5000", "--docker-username", "u", "--docker-password", "p", "--docker-email", "u@example.com")
	if r.stdout != "secret/pull created\n" {
		t.Fatalf("got %q, want secret/pull created", r.stdout)
	}
	s, err := env.Client.CoreV1().Secrets("default").Get(context.Background(), "pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg dockerConfigJSON
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	want := dockerConfigEntry{Username: "u", Password: "p", Email: "u@example.com", Auth: base64.StdEncoding.EncodeToString([]byte("u:p"))}
	if s.Type != corev1.SecretTypeDockerConfigJson || cfg.Auths["registry.local:5000"] != want {
		t.Fatalf("got type %s config %+v, want kubernetes.io/dockerconfigjson with %+v", s.Type, cfg, want)
	}
	r = orchctl(t, env, "", "create", "secret", "docker-registry", "nopass", "--docker-username", "u")
	if r.code != 1 || !strings.Contains(r.stderr, "create secret docker-registry needs --docker-password") {
		t.Fatalf("got %s, want the missing flag named", r)
	}
}

func TestCreateConfigDryRun(t *testing.T) {
	env := apitest.Start(t)
	r := mustSucceed(t, env, "", "create", "secret", "generic", "s", "--from-literal", "k=v", "--dry-run=client", "-o", "yaml", "-n", "kube-system")
	var s corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(r.stdout), &s); err != nil {
		t.Fatalf("got %q: %v", r.stdout, err)
	}
	if s.Kind != "Secret" || s.APIVersion != "v1" || s.Name != "s" || s.Namespace != "kube-system" || string(s.Data["k"]) != "v" || s.Type != corev1.SecretTypeOpaque {
		t.Fatalf("got %+v, want the Secret printed", s)
	}
	r = mustSucceed(t, env, "", "create", "configmap", "c", "--from-literal", "k=v", "--dry-run=server")
	if r.stdout != "configmap/c created (server dry run)\n" {
		t.Fatalf("got %q, want the server dry run reported", r.stdout)
	}
	r = mustSucceed(t, env, "", "create", "configmap", "c", "--from-literal", "k=v", "--dry-run=client", "-o", "name")
	if r.stdout != "configmap/c\n" {
		t.Fatalf("got %q, want configmap/c", r.stdout)
	}
	for _, get := range []error{
		func() error {
			_, err := env.Client.CoreV1().Secrets("kube-system").Get(context.Background(), "s", metav1.GetOptions{})
			return err
		}(),
		func() error {
			_, err := env.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "c", metav1.GetOptions{})
			return err
		}(),
	} {
		if !apierrors.IsNotFound(get) {
			t.Fatalf("got %v, want nothing created by a dry run", get)
		}
	}
	// A client dry run needs no server at all.
	r = orchctl(t, nil, "", "--server", "https://127.0.0.1:1", "create", "configmap", "c", "--from-literal", "k=v", "--dry-run=client", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"kind": "ConfigMap"`) {
		t.Fatalf("got %s, want the ConfigMap printed without a server", r)
	}
}

func TestOperatorRotateSecretKey(t *testing.T) {
	env := apitest.Start(t)
	for _, n := range []string{"a", "b"} {
		mustSucceed(t, env, "", "create", "secret", "generic", n, "--from-literal", "k=v")
	}
	r := mustSucceed(t, env, "", "operator", "secrets", "rotate-key")
	if !strings.HasPrefix(r.stdout, "rotated: 2 Secrets re-encrypted with key ") || !strings.Contains(r.stdout, "; retired ") {
		t.Fatalf("got %q, want 2 Secrets re-encrypted and the old key retired", r.stdout)
	}
	s, err := env.Client.CoreV1().Secrets("default").Get(context.Background(), "a", metav1.GetOptions{})
	if err != nil || string(s.Data["k"]) != "v" {
		t.Fatalf("got %v, %v, want the secret readable after rotation", s, err)
	}
	if r := orchctl(t, env, "", "operator", "secrets", "rotate-key", "extra"); r.code != 1 || !strings.Contains(r.stderr, "rotate-key takes no arguments") {
		t.Fatalf("got %s, want arguments refused", r)
	}
}
