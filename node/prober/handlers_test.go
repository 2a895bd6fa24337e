package prober

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rt "orch.dev/orch/node/runtime"
)

// fakeExec plays the runtime's Exec: it answers commands from a table and
// records what ran.
type fakeExec struct {
	mu   sync.Mutex
	ran  [][]string
	run  func(ctx context.Context, cmd []string, out func(string)) (int, error)
	onID string
}

func (f *fakeExec) Exec(ctx context.Context, id string, opts rt.ExecOptions) (int, error) {
	f.mu.Lock()
	f.ran = append(f.ran, opts.Cmd)
	f.mu.Unlock()
	if f.onID != "" && id != f.onID {
		return -1, fmt.Errorf("exec in %q: %w", id, rt.ErrNotFound)
	}
	return f.run(ctx, opts.Cmd, func(s string) { _, _ = opts.Stdout.Write([]byte(s)) })
}

func (f *fakeExec) commands() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.ran...)
}

// shell answers a few commands as a container would.
func shell(ctx context.Context, cmd []string, out func(string)) (int, error) {
	switch cmd[0] {
	case "true":
		return 0, nil
	case "false":
		return 1, nil
	case "say":
		out(strings.Join(cmd[1:], " ") + "\n")
		return 3, nil
	case "hang":
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return 127, nil
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

func TestHTTPGet(t *testing.T) {
	var gotUA, gotHost, gotHeader string
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUA, gotHost, gotHeader = r.UserAgent(), r.Host, r.Header.Get("X-Probe")
		mu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/moved-to-fail", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/fail", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("x") != "1" {
			http.Error(w, "want x=1", http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	_, tlsPort := splitHostPort(t, tlsSrv.Listener.Addr().String())

	target := Target{PodIP: host, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	cases := []struct {
		name    string
		get     corev1.HTTPGetAction
		target  Target
		wantOK  bool
		wantMsg string
	}{
		{name: "200 passes", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port))}, wantOK: true},
		{name: "named port", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http")}, wantOK: true},
		{name: "unknown port name", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("nope")}, wantMsg: `couldn't find port "nope"`},
		{name: "500 fails", get: corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt32(int32(port))}, wantMsg: "HTTP probe failed with statuscode: 500"},
		{name: "path without slash and a query", get: corev1.HTTPGetAction{Path: "query?x=1", Port: intstr.FromInt32(int32(port))}, wantOK: true},
		{name: "same-host redirect is followed", get: corev1.HTTPGetAction{Path: "/moved", Port: intstr.FromInt32(int32(port))}, wantOK: true},
		{name: "same-host redirect to a failure fails", get: corev1.HTTPGetAction{Path: "/moved-to-fail", Port: intstr.FromInt32(int32(port))}, wantMsg: "statuscode: 500"},
		{name: "redirect to another host is not followed and passes", get: corev1.HTTPGetAction{Path: "/elsewhere", Port: intstr.FromInt32(int32(port))}, wantOK: true},
		{name: "HTTPS without certificate verification", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(tlsPort)), Scheme: corev1.URISchemeHTTPS}, wantOK: true},
		{name: "timeout", get: corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt32(int32(port))}, wantMsg: "deadline exceeded"},
		{name: "connection refused", get: corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(closedPort(t)))}, wantMsg: "refused"},
		{name: "explicit host", get: corev1.HTTPGetAction{Host: host, Path: "/ok", Port: intstr.FromInt32(int32(port))}, target: Target{PodIP: "192.0.2.1"}, wantOK: true},
		{name: "no pod IP yet", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port))}, target: Target{}, wantMsg: "no IP"},
		{name: "port out of range", get: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(70000)}, wantMsg: "invalid port"},
	}
	r := NewRunner(nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := target
			if tc.target.PodIP != "" || tc.name == "no pod IP yet" {
				tgt = tc.target
			}
			res := r.HTTPGet(context.Background(), &tc.get, tgt, 300*time.Millisecond)
			checkResult(t, res, tc.wantOK, tc.wantMsg)
		})
	}

	t.Run("headers, host header and user agent", func(t *testing.T) {
		g := &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port)), HTTPHeaders: []corev1.HTTPHeader{
			{Name: "Host", Value: "app.example"}, {Name: "X-Probe", Value: "yes"},
		}}
		checkResult(t, r.HTTPGet(context.Background(), g, target, time.Second), true, "")
		mu.Lock()
		host, header, ua := gotHost, gotHeader, gotUA
		mu.Unlock()
		if host != "app.example" || header != "yes" || !strings.HasPrefix(ua, "kube-probe/") {
			t.Fatalf("got host %q, X-Probe %q, user agent %q; want app.example, yes, kube-probe/...", host, header, ua)
		}
		g.HTTPHeaders = []corev1.HTTPHeader{{Name: "user-agent", Value: "mine"}}
		checkResult(t, r.HTTPGet(context.Background(), g, target, time.Second), true, "")
		mu.Lock()
		defer mu.Unlock()
		if gotUA != "mine" {
			t.Fatalf("got user agent %q, want the probe's own", gotUA)
		}
	})
}

func checkResult(t *testing.T, res Result, wantOK bool, wantMsg string) {
	t.Helper()
	if res.Success != wantOK {
		t.Fatalf("got success=%v (%q), want %v", res.Success, res.Message, wantOK)
	}
	if !strings.Contains(res.Message, wantMsg) {
		t.Fatalf("got message %q, want it to contain %q", res.Message, wantMsg)
	}
}

// closedPort returns a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p := splitHostPort(t, l.Addr().String())
	l.Close()
	return p
}

func TestTCPSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	host, port := splitHostPort(t, l.Addr().String())
	target := Target{PodIP: host, Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: int32(port)}}}
	cases := []struct {
		name    string
		port    intstr.IntOrString
		wantOK  bool
		wantMsg string
	}{
		{"open port", intstr.FromInt32(int32(port)), true, ""},
		{"named port", intstr.FromString("db"), true, ""},
		{"closed port", intstr.FromInt32(int32(closedPort(t))), false, "refused"},
		{"port zero", intstr.FromInt32(0), false, "invalid port"},
	}
	r := NewRunner(nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, r.TCPSocket(context.Background(), &corev1.TCPSocketAction{Port: tc.port}, target, time.Second), tc.wantOK, tc.wantMsg)
		})
	}
}

func TestExec(t *testing.T) {
	fe := &fakeExec{run: shell, onID: "c1"}
	r := NewRunner(fe, nil)
	target := Target{ContainerID: "c1"}
	cases := []struct {
		name    string
		cmd     []string
		target  Target
		wantOK  bool
		wantMsg string
	}{
		{name: "exit 0 passes", cmd: []string{"true"}, wantOK: true},
		{name: "exit 1 fails", cmd: []string{"false"}, wantMsg: `command "false" exited with 1`},
		{name: "output is the message", cmd: []string{"say", "not", "yet"}, wantMsg: "not yet"},
		{name: "timeout", cmd: []string{"hang"}, wantMsg: "timed out"},
		{name: "another container", cmd: []string{"true"}, target: Target{ContainerID: "c2"}, wantMsg: "not found"},
		{name: "no command", cmd: nil, wantMsg: "no command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := target
			if tc.target.ContainerID != "" {
				tgt = tc.target
			}
			checkResult(t, r.Exec(context.Background(), tc.cmd, tgt, 200*time.Millisecond), tc.wantOK, tc.wantMsg)
		})
	}
	t.Run("no runtime", func(t *testing.T) {
		checkResult(t, NewRunner(nil, nil).Exec(context.Background(), []string{"true"}, target, time.Second), false, "not available")
	})
}

func TestGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }() // ends with Stop
	defer srv.Stop()
	bare := grpc.NewServer() // no health service
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bare.Serve(lb) }()
	defer bare.Stop()
	host, port := splitHostPort(t, l.Addr().String())
	_, barePort := splitHostPort(t, lb.Addr().String())
	cases := []struct {
		name    string
		action  corev1.GRPCAction
		wantOK  bool
		wantMsg string
	}{
		{name: "serving", action: corev1.GRPCAction{Port: int32(port)}, wantOK: true},
		{name: "named service not serving", action: corev1.GRPCAction{Port: int32(port), Service: ptr.To("db")}, wantMsg: `responded with "NOT_SERVING"`},
		{name: "unknown service", action: corev1.GRPCAction{Port: int32(port), Service: ptr.To("nope")}, wantMsg: "NotFound"},
		{name: "no health service", action: corev1.GRPCAction{Port: int32(barePort)}, wantMsg: "does not implement the grpc health protocol"},
		{name: "nothing listening", action: corev1.GRPCAction{Port: int32(closedPort(t))}, wantMsg: "health rpc probe failed"},
	}
	r := NewRunner(nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, r.GRPC(context.Background(), &tc.action, Target{PodIP: host}, 2*time.Second), tc.wantOK, tc.wantMsg)
		})
	}
}

func TestProbeDispatch(t *testing.T) {
	fe := &fakeExec{run: shell}
	r := NewRunner(fe, nil)
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}}
	checkResult(t, r.Probe(context.Background(), p, Target{ContainerID: "c"}), false, "exited with 1")
	checkResult(t, r.Probe(context.Background(), &corev1.Probe{}, Target{}), false, "no handler")
	if got := fe.commands(); len(got) != 1 || got[0][0] != "false" {
		t.Fatalf("got commands %v, want [false]", got)
	}
}
