package api

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/raftstore"
)

// TestPortForwardProxy checks that pods/portforward reaches the pod's
// agent at /portForward/NS/POD with the agent token, its ports query
// renamed to the agent's port.
func TestPortForwardProxy(t *testing.T) {
	var (
		mu  sync.Mutex
		got *http.Request
	)
	agent := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(r.Context())
		mu.Unlock()
		_, _ = io.WriteString(w, "agent answered")
	}))
	defer agent.Close()
	au, err := url.Parse(agent.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(au.Host)
	port, _ := strconv.Atoi(portStr)

	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := New(Config{
		Store: store, Operator: store, BookmarkInterval: 200 * time.Millisecond,
		Authenticate: func(tok string) (string, bool) { return "admin", tok == testToken },
		Agents:       &AgentAccess{Transport: agent.Client().Transport, Token: "agent-token"},
	})
	for _, ns := range InitialNamespaces {
		if err := srv.EnsureNamespace(ctx(t), ns); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: hs.URL, BearerToken: testToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}

	node, err := cs.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx(t), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, node string }{{"web", "n1"}, {"unscheduled", ""}} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name},
			Spec:       corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "a", Image: "img"}, {Name: "b", Image: "img"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name, path string
		wantCode   int
		wantBody   string
		wantPath   string
		wantQuery  url.Values
	}{
		{name: "proxied", path: "/api/v1/namespaces/default/pods/web/portforward?ports=8080&ports=9090",
			wantCode: http.StatusOK, wantBody: "agent answered", wantPath: "/portForward/default/web", wantQuery: url.Values{"port": {"8080", "9090"}}},
		{name: "not scheduled", path: "/api/v1/namespaces/default/pods/unscheduled/portforward?ports=80",
			wantCode: http.StatusBadRequest, wantBody: "pod unscheduled is not scheduled to a node yet"},
		{name: "no such pod", path: "/api/v1/namespaces/default/pods/nope/portforward?ports=80",
			wantCode: http.StatusNotFound, wantBody: `pods \"nope\" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			req, _ := http.NewRequest(http.MethodGet, hs.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("got %d %s, want %d with %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.wantPath == "" {
				if got != nil {
					t.Fatalf("the agent was asked %s", got.URL)
				}
				return
			}
			if got == nil {
				t.Fatal("the agent was never asked")
			}
			if got.URL.Path != tc.wantPath || got.URL.Query().Encode() != tc.wantQuery.Encode() {
				t.Fatalf("the agent got %s, want %s?%s", got.URL, tc.wantPath, tc.wantQuery.Encode())
			}
			if a := got.Header.Get("Authorization"); a != "Bearer agent-token" {
				t.Fatalf("the agent got Authorization %q, want its token", a)
			}
		})
	}
}
