package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/node/endpoint"
	"orch.dev/orch/node/endpoint/endpointtest"
)

// podProxyToken is the token orchctl sends to the stand-in API server.
const podProxyToken = "podproxy-client-token"

// startPodProxy stands in for the API server's pods/log and pods/exec
// proxy: it serves the two Kubernetes paths by handing them to the agent
// endpoint over the real Docker runtime, the way the API server reaches
// the agent of the pod's node. A pod's only container, when the request
// names none, is "app". It returns a kubeconfig for orchctl.
func startPodProxy(t *testing.T, f *endpointtest.Fixture) string {
	t.Helper()
	agent := endpoint.New(endpoint.Config{Runtime: f.Runtime, Token: endpointtest.Token, Resolve: f.Resolve})
	forward := func(route string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+podProxyToken {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401,"message":"Unauthorized"}`)) // a test server
				return
			}
			q := r.URL.Query()
			container := q.Get("container")
			if container == "" {
				container = "app"
			}
			q.Del("container")
			out := r.Clone(r.Context())
			out.URL.Path = "/" + route + "/" + r.PathValue("namespace") + "/" + r.PathValue("pod") + "/" + container
			out.URL.RawPath, out.URL.RawQuery = "", q.Encode()
			out.Header.Set("Authorization", "Bearer "+endpointtest.Token)
			agent.ServeHTTP(w, out)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/pods/{pod}/log", forward("containerLogs"))
	mux.HandleFunc("/api/v1/namespaces/{namespace}/pods/{pod}/exec", forward("exec"))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "podproxy.kubeconfig")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := certs.WriteKubeconfig(kc, "podproxy", srv.URL, ca, podProxyToken); err != nil {
		t.Fatal(err)
	}
	return kc
}
