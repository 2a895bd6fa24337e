package endpoint

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/node/runtime"
)

// Config is what the endpoint needs from the agent.
type Config struct {
	// Runtime reads logs and runs commands. Required.
	Runtime runtime.Runtime
	// Token is the bearer token callers (the API server) must send as
	// "Authorization: Bearer <Token>". Requests without it, with another
	// one, or any request at all when Token is empty, get 401.
	Token string
	// Resolve maps a pod's container to the engine's container: the current
	// one, or with previous the last terminated one. It returns an error
	// wrapping runtime.ErrNotFound when there is none. tty says whether the
	// container was made with a TTY; logs and exec do not need it (the
	// runtime already knows), attach will. Required.
	Resolve func(ctx context.Context, namespace, pod, container string, previous bool) (containerID string, tty bool, err error)
	// PodAddress returns the address at which this host reaches a pod's
	// network namespace (its IP on the pod bridge, or a loopback address for
	// a host-network pod), for port forwarding. It returns an error wrapping
	// runtime.ErrNotFound when the pod is not on this node, and one wrapping
	// ErrPodNotRunning when the pod has no running network yet. Without it
	// port forwarding answers 500.
	PodAddress func(ctx context.Context, namespace, pod string) (string, error)
	// Dial connects to a forwarded port; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger receives one line per request that fails after its response
	// started, and per exec and port-forward session; nil discards.
	Logger *slog.Logger
}

// server is the handler New returns.
type server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the endpoint's handler. It does not listen: the agent serves
// it over HTTPS with its own certificate.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.needRuntime(s.serveLogs))
	s.mux.HandleFunc("/exec/{namespace}/{pod}/{container}", s.needRuntime(s.serveExec))
	s.mux.HandleFunc("/portForward/{namespace}/{pod}", s.servePortForward)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("no route for %s %s: the agent endpoint serves GET /containerLogs/NAMESPACE/POD/CONTAINER, /exec/NAMESPACE/POD/CONTAINER and /portForward/NAMESPACE/POD", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP authenticates every request before routing it, so that an
// anonymous caller learns nothing, not even which paths exist.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orch-agent"`)
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "the agent endpoint needs the agent's bearer token")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// needRuntime refuses logs and exec when the endpoint has no runtime or no
// resolver to serve them with.
func (s *server) needRuntime(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Runtime == nil || s.cfg.Resolve == nil {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "the agent endpoint is not configured: it has no runtime or no resolver")
			return
		}
		h(w, r)
	}
}

// authorized compares in constant time so the token cannot be guessed a
// byte at a time from response times.
func (s *server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.Token)) == 1
}

// target is the pod's container a request names.
type target struct {
	namespace, pod, container string
}

func targetOf(r *http.Request) target {
	return target{namespace: r.PathValue("namespace"), pod: r.PathValue("pod"), container: r.PathValue("container")}
}

func (t target) String() string {
	return fmt.Sprintf("container %q of pod %s/%s", t.container, t.namespace, t.pod)
}

// resolve finds the engine's container, answering the request itself when
// there is none.
func (s *server) resolve(w http.ResponseWriter, r *http.Request, t target, previous bool) (string, bool) {
	id, _, err := s.cfg.Resolve(r.Context(), t.namespace, t.pod, t.container, previous)
	switch {
	case err == nil && id != "":
		return id, true
	case err == nil, errors.Is(err, runtime.ErrNotFound):
		notFound(w, t, previous)
	case r.Context().Err() != nil:
		// The caller went away; nobody reads the answer.
	default:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "finding "+t.String()+": "+err.Error())
	}
	return "", false
}

// notFound answers 404 for a container Resolve does not know.
func notFound(w http.ResponseWriter, t target, previous bool) {
	msg := t.String() + " not found on this node"
	if previous {
		msg = "no previous terminated instance of " + t.String() + " on this node"
	}
	writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, msg)
}

// failure is a metav1.Status for a failed request.
func failure(code int, reason metav1.StatusReason, msg string) metav1.Status {
	return metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
}

// writeStatus answers with a metav1.Status, which client-go turns into an
// API error carrying msg.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	body, err := json.Marshal(failure(code, reason, msg))
	if err != nil {
		// A Status always marshals; fall back to the bare message.
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n')) // a caller that went away cannot be told
}

// badRequest answers 400 naming the query parameter at fault.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf(format, args...))
}

// queryBool reads a boolean query parameter; absent is false, and a bare
// "?follow" is true.
func queryBool(r *http.Request, name string) (bool, error) {
	vals, ok := r.URL.Query()[name]
	if !ok {
		return false, nil
	}
	v := vals[0]
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s=%q: want true or false", name, v)
	}
	return b, nil
}

// queryInt reads a non-negative integer query parameter; ok is false when
// it is absent. min is the smallest value allowed.
func queryInt(r *http.Request, name string, min int64) (n int64, ok bool, err error) {
	vals, present := r.URL.Query()[name]
	if !present {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(vals[0], 10, 64)
	if err != nil || n < min {
		return 0, false, fmt.Errorf("query parameter %s=%q: want an integer of at least %d", name, vals[0], min)
	}
	return n, true, nil
}
