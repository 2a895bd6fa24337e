package endpoint_test

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"orch.dev/orch/node/endpoint"
	"orch.dev/orch/node/endpoint/endpointtest"
	"orch.dev/orch/node/runtime"
)

// testServer is the endpoint over HTTPS, as the agent serves it.
type testServer struct {
	*httptest.Server
	// Config is a client config for it, with the endpoint token.
	Config *rest.Config
}

// serve starts the endpoint over rt (the fixture's runtime unless given).
func serve(t *testing.T, f *endpointtest.Fixture, rt runtime.Runtime, token string) *testServer {
	t.Helper()
	if rt == nil {
		rt = f.Runtime
	}
	h := endpoint.New(endpoint.Config{Runtime: rt, Token: token, Resolve: f.Resolve, Logger: testLogger(t)})
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return &testServer{Server: srv, Config: &rest.Config{Host: srv.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}}
}

// get sends a GET with the bearer token (none when empty) and returns the
// status code and body.
func (s *testServer) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// statusMessage decodes a metav1.Status body, failing the test unless it
// is one with the wanted code.
func statusMessage(t *testing.T, body string, code int) string {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" {
		t.Fatalf("got body %q, want a metav1.Status", body)
	}
	if st.Status != metav1.StatusFailure || st.Code != int32(code) {
		t.Fatalf("got status %s code %d, want Failure %d", st.Status, st.Code, code)
	}
	return st.Message
}

// testLogger sends the endpoint's log to the test's log until the test
// ends; hijacked exec connections can outlive the server's Close.
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func TestAuthentication(t *testing.T) {
	f := endpointtest.New(t)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	srv := serve(t, f, nil, endpointtest.Token)
	anonymous := serve(t, f, nil, "")
	const logs = "/containerLogs/default/web/app"
	cases := []struct {
		name     string
		srv      *testServer
		path     string
		header   string
		wantCode int
	}{
		{name: "no token", srv: srv, path: logs, wantCode: http.StatusUnauthorized},
		{name: "wrong token", srv: srv, path: logs, header: "Bearer nope", wantCode: http.StatusUnauthorized},
		{name: "the token as basic auth", srv: srv, path: logs, header: "Basic " + endpointtest.Token, wantCode: http.StatusUnauthorized},
		{name: "a token prefix", srv: srv, path: logs, header: "Bearer " + endpointtest.Token[:5], wantCode: http.StatusUnauthorized},
		{name: "no token on an unknown path", srv: srv, path: "/pods", wantCode: http.StatusUnauthorized},
		{name: "no token for exec", srv: srv, path: "/exec/default/web/app?command=/hello&stdout=true", wantCode: http.StatusUnauthorized},
		{name: "an endpoint without a token refuses the empty token", srv: anonymous, path: logs, header: "Bearer ", wantCode: http.StatusUnauthorized},
		{name: "an endpoint without a token refuses anonymous callers", srv: anonymous, path: logs, wantCode: http.StatusUnauthorized},
		{name: "the token", srv: srv, path: logs, header: "Bearer " + endpointtest.Token, wantCode: http.StatusOK},
		{name: "the token, scheme in lower case", srv: srv, path: logs, header: "bearer " + endpointtest.Token, wantCode: http.StatusOK},
		{name: "the token on an unknown path", srv: srv, path: "/pods", header: "Bearer " + endpointtest.Token, wantCode: http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := tc.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, body, tc.wantCode)
			}
			if tc.wantCode == http.StatusUnauthorized {
				if msg := statusMessage(t, string(body), tc.wantCode); !strings.Contains(msg, "bearer token") {
					t.Fatalf("got message %q, want it to ask for the bearer token", msg)
				}
			}
		})
	}
}
