package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"orch.dev/orch/server/api/apitest"
)

// closedURL is an https URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://" + addr
}

// kubeconfigWithToken copies env's kubeconfig with another token.
func kubeconfigWithToken(t *testing.T, env *apitest.Env, token string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Token = token
	}
	p := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientConfig(t *testing.T) {
	env := startWithObjects(t)
	caFile := writeFile(t, t.TempDir(), "ca.crt", string(env.Config.TLSClientConfig.CAData))
	home := t.TempDir()
	writeFile(t, home, ".orch/config", mustRead(t, env.Kubeconfig))
	down := closedURL(t)
	wrongToken := kubeconfigWithToken(t, env, "wrong")

	cases := []struct {
		name       string
		home       string // $HOME; empty means one without ~/.orch/config
		orchconfig string // $ORCHCONFIG
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "--kubeconfig", args: []string{"--kubeconfig", env.Kubeconfig, "get", "pods", "-o", "name"}, wantStdout: "pod/crash\npod/web-1"},
		{name: "$ORCHCONFIG", orchconfig: env.Kubeconfig, args: []string{"get", "pods", "-o", "name"}, wantStdout: "pod/crash\npod/web-1"},
		{name: "~/.orch/config", home: home, args: []string{"get", "pods", "-o", "name"}, wantStdout: "pod/crash\npod/web-1"},
		{name: "--server and --token with a CA file", args: []string{"--server", env.URL, "--token", apitest.Token,
			"--certificate-authority", caFile, "get", "pods", "-o", "name"}, wantStdout: "pod/crash\npod/web-1"},
		{name: "--server and --token without verification", args: []string{"get", "pods", "-o", "name", "--server", env.URL,
			"--token", apitest.Token, "--insecure-skip-tls-verify"}, wantStdout: "pod/crash\npod/web-1"},
		{name: "--token overrides the file's", args: []string{"--kubeconfig", wrongToken, "--token", apitest.Token, "get", "pods", "-o", "name"},
			wantStdout: "pod/crash\npod/web-1"},
		{name: "no config at all", args: []string{"get", "pods"}, wantCode: 1,
			wantStderr: "error: no client config: pass --kubeconfig FILE, set $ORCHCONFIG"},
		{name: "missing --kubeconfig file", args: []string{"--kubeconfig", "/nonexistent/config", "get", "pods"}, wantCode: 1,
			wantStderr: "error: --kubeconfig /nonexistent/config: stat /nonexistent/config: no such file or directory"},
		{name: "unreachable server", args: []string{"--kubeconfig", env.Kubeconfig, "--server", down, "get", "pods"}, wantCode: 1,
			wantStderr: "error: cannot reach the API server at " + down + ": connection refused; is orchd running, and is --server or the kubeconfig right?"},
		{name: "token refused, from --token", args: []string{"--kubeconfig", env.Kubeconfig, "--token", "wrong", "get", "pods"}, wantCode: 1,
			wantStderr: "error: the API server at " + env.URL + " refused the token given with --token (401 Unauthorized)"},
		{name: "token refused, from the file", args: []string{"--kubeconfig", wrongToken, "get", "pods"}, wantCode: 1,
			wantStderr: "error: the API server at " + env.URL + " refused the token from the client config " + wrongToken + " (401 Unauthorized)"},
		{name: "no token", args: []string{"--server", env.URL, "--certificate-authority", caFile, "get", "pods"}, wantCode: 1,
			wantStderr: "wants a token and none was given"},
		{name: "unknown CA", args: []string{"--server", env.URL, "--token", apitest.Token, "get", "pods"}, wantCode: 1,
			wantStderr: "error: cannot verify the API server at " + env.URL + ": x509: certificate signed by unknown authority"},
		{name: "CA file that is not PEM", args: []string{"--server", env.URL, "--certificate-authority", wrongToken, "get", "pods"}, wantCode: 1,
			wantStderr: "--certificate-authority " + wrongToken + ": no PEM certificate in the file"},
		{name: "version without a server", args: []string{"--server", down, "version"}, wantCode: 1,
			wantStdout: "Client Version: ", wantStderr: "cannot reach the API server at " + down},
		{name: "version", args: []string{"--kubeconfig", env.Kubeconfig, "version"}, wantStdout: "Server Version: v1.37.0-orch."},
		{name: "client version only", args: []string{"version", "--client"}, wantStdout: "Client Version: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.home
			if h == "" {
				h = t.TempDir()
			}
			t.Setenv("HOME", h)
			t.Setenv(configEnv, tc.orchconfig)
			r := orchctl(t, nil, "", tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if !strings.Contains(r.stdout, tc.wantStdout) {
				t.Fatalf("got stdout %q, want it to contain %q", r.stdout, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, ".go:") {
				t.Fatalf("got stderr %q, want no stack trace or log lines", r.stderr)
			}
		})
	}
}

func TestServerWarnings(t *testing.T) {
	t.Run("unknown fields with --validate=warn, printed once each", func(t *testing.T) {
		env := apitest.Start(t)
		two := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nextra: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\nextra: 1\n"
		r := mustSucceed(t, env, two, "apply", "--validate=warn", "-f", "-")
		want := `Warning: unknown field "extra"`
		if got := strings.Count(r.stderr, want); got != 1 {
			t.Fatalf("got %d %q lines in stderr %q, want 1", got, want, r.stderr)
		}
	})
	// The API server sends a Warning header for fields orch stores but
	// does not implement.
	t.Run("unimplemented Kubernetes fields", func(t *testing.T) {
		env := apitest.Start(t)
		pod := `apiVersion: v1
kind: Pod
metadata: {name: spread}
spec:
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]
  containers: [{name: c, image: orch/hello:dev}]
`
		r := mustSucceed(t, env, pod, "apply", "-f", "-")
		if strings.TrimSpace(r.stdout) != "pod/spread created" {
			t.Fatalf("got %q, want pod/spread created", r.stdout)
		}
		if want := "Warning: spec.topologySpreadConstraints"; !strings.HasPrefix(r.stderr, want) {
			t.Fatalf("got stderr %q, want it to start with %q", r.stderr, want)
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
