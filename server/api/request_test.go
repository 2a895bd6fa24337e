package api

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// do sends a raw request and returns status and body.
func (e *testEnv) do(t *testing.T, method, path, contentType, body string, auth bool) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRequestErrors(t *testing.T) {
	e := newEnv(t)
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 3<<20) + `"}}`
	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		noAuth      bool
		wantCode    int
		wantInBody  string
	}{
		{name: "no token", method: "GET", path: "/api/v1/namespaces", noAuth: true, wantCode: 401, wantInBody: "bearer token"},
		{name: "healthz is anonymous", method: "GET", path: "/healthz", noAuth: true, wantCode: 200, wantInBody: "ok"},
		{name: "version is anonymous", method: "GET", path: "/version", noAuth: true, wantCode: 200, wantInBody: "gitVersion"},
		{name: "unknown field", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labelz":{}},"data":{}}`, wantCode: 400, wantInBody: `unknown field \"metadata.labelz\"`},
		{name: "duplicate field", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, wantCode: 400, wantInBody: `duplicate field \"metadata.name\"`},
		{name: "unknown field with fieldValidation=Warn", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Warn", contentType: "application/json",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"warned"},"extra":1}`, wantCode: 201},
		{name: "yaml body", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/yaml",
			body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n", wantCode: 201, wantInBody: `"from-yaml"`},
		{name: "wrong kind for the path", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json",
			body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}`, wantCode: 400, wantInBody: "does not match the expected kind"},
		{name: "body over 3 MiB", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json", body: big, wantCode: 413, wantInBody: "3 MiB"},
		{name: "namespace mismatch", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"kube-system"}}`, wantCode: 400, wantInBody: "does not match the namespace"},
		{name: "unknown resource", method: "GET", path: "/api/v1/widgets", wantCode: 404},
		{name: "not JSON", method: "POST", path: "/api/v1/namespaces/default/configmaps", contentType: "application/json", body: `{`, wantCode: 400, wantInBody: "invalid JSON"},
		{name: "bad resourceVersion", method: "GET", path: "/api/v1/namespaces/default/configmaps?resourceVersion=abc", wantCode: 400, wantInBody: "resourceVersion"},
		{name: "bad limit", method: "GET", path: "/api/v1/namespaces/default/configmaps?limit=-1", wantCode: 400, wantInBody: "limit"},
		{name: "sendInitialEvents without NotOlderThan", method: "GET", path: "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true", wantCode: 400, wantInBody: "NotOlderThan"},
		{name: "too large resourceVersion times out with a retry hint", method: "GET", path: "/api/v1/namespaces/default/configmaps/x?resourceVersion=999999999&timeout=200ms", wantCode: 504, wantInBody: "Too large resource version"},
		{name: "unsupported patch type", method: "PATCH", path: "/api/v1/namespaces/default/configmaps/x", contentType: "text/plain", body: "x", wantCode: 415},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := e.do(t, tc.method, tc.path, tc.contentType, tc.body, !tc.noAuth)
			if code != tc.wantCode || !strings.Contains(body, tc.wantInBody) {
				if len(body) > 300 {
					body = body[:300]
				}
				t.Fatalf("got %d %s, want %d containing %q", code, body, tc.wantCode, tc.wantInBody)
			}
		})
	}

	t.Run("warn mode sends a Warning header", func(t *testing.T) {
		_, _, h := e.do(t, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Warn", "application/json", `{"metadata":{"name":"w2"},"extra":1}`, true)
		if w := h.Get("Warning"); !strings.Contains(w, `unknown field \"extra\"`) {
			t.Fatalf("got Warning %q, want one naming extra", w)
		}
	})
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	dc, err := discovery.NewDiscoveryClientForConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	groups, resources, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var gs []string
	for _, g := range groups {
		gs = append(gs, g.Name)
	}
	if got := strings.Join(gs, ","); got != ",apps,batch,policy,storage.k8s.io" {
		t.Fatalf("got groups %q, want core, apps, batch, policy and storage.k8s.io", got)
	}
	found := map[schema.GroupVersionResource]bool{}
	for _, rl := range resources {
		gv, _ := schema.ParseGroupVersion(rl.GroupVersion)
		for _, r := range rl.APIResources {
			found[gv.WithResource(r.Name)] = true
		}
	}
	for _, want := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "pods"}, {Version: "v1", Resource: "pods/status"}, {Version: "v1", Resource: "events"},
		{Group: "apps", Version: "v1", Resource: "deployments/scale"}, {Group: "batch", Version: "v1", Resource: "cronjobs"},
		{Version: "v1", Resource: "replicationcontrollers/scale"},
		{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}, {Group: "policy", Version: "v1", Resource: "poddisruptionbudgets/status"},
	} {
		if !found[want] {
			t.Errorf("discovery lacks %s", want)
		}
	}
	v, err := dc.ServerVersion()
	if err != nil || v.Major != "1" || !strings.Contains(v.GitVersion, "orch") {
		t.Fatalf("got version %+v %v, want 1.x orch", v, err)
	}
}

func TestOperatorEndpoints(t *testing.T) {
	e := newEnv(t)
	code, body, _ := e.do(t, "GET", "/orch/v1/raft/peers", "", "", true)
	if code != 200 || !strings.Contains(body, `"state":"leader"`) || !strings.Contains(body, `"voter":true`) {
		t.Fatalf("peers: got %d %s", code, body)
	}
	code, snap, _ := e.do(t, "GET", "/orch/v1/snapshot", "", "", true)
	if code != 200 || !bytes.HasPrefix([]byte(snap), []byte("ORCHSNP1")) {
		t.Fatalf("snapshot: got %d and %d bytes", code, len(snap))
	}
	code, body, _ = e.do(t, "PUT", "/orch/v1/snapshot", "application/octet-stream", "garbage", true)
	if code != 400 || !strings.Contains(body, "snapshot") {
		t.Fatalf("restore of garbage: got %d %s, want 400", code, body)
	}
	code, _, _ = e.do(t, "PUT", "/orch/v1/snapshot", "application/octet-stream", snap, true)
	if code != 200 {
		t.Fatalf("restore: got %d", code)
	}
	code, _, _ = e.do(t, "DELETE", "/orch/v1/raft/peers/nope", "", "", true)
	if code != 404 {
		t.Fatalf("remove unknown peer: got %d, want 404", code)
	}
}
