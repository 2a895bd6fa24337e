package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"orch.dev/orch/internal/logging"
	orchversion "orch.dev/orch/internal/version"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

// Store is the replicated store the API keeps objects in.
type Store interface {
	raftstore.Store
}

// Operator is the cluster-level operations behind /orch/v1: Raft membership
// and whole-store snapshots. *raftstore.Node implements it.
type Operator interface {
	Peers() ([]raftstore.Peer, error)
	RemovePeer(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
	Snapshot(ctx context.Context, w io.Writer) error
	Restore(ctx context.Context, r io.Reader) error
}

// Config configures a Server.
type Config struct {
	Store Store
	// Operator serves /orch/v1 raft and snapshot; nil turns them off.
	Operator Operator
	// Cluster serves what joining agents need; nil turns it off.
	Cluster ClusterOps
	// Agents is how to reach node agents for logs and exec.
	Agents *AgentAccess
	// Authenticate maps a bearer token to a user name. Requests without a
	// valid token are refused, except /healthz, /livez, /readyz, /version
	// and /orch/v1/bootstrap/ca. Only AdminUser may use the operator API.
	Authenticate func(token string) (user string, ok bool)
	// Ready reports whether this server can serve; /readyz answers with it.
	Ready  func() error
	Logger *slog.Logger
	// Now is the clock (tests replace it).
	Now func() time.Time
	// RequestTimeout bounds non-watch requests; default 60s.
	RequestTimeout time.Duration
	// BookmarkInterval is how often an idle watch that asked for bookmarks
	// gets one; default 30s.
	BookmarkInterval time.Duration
	// ServiceCIDR is the range Service cluster IPs are allocated from;
	// default 10.43.0.0/16 (ipalloc.DefaultServiceCIDR).
	ServiceCIDR netip.Prefix
	// SecretsKEK is the key-encryption key (encryption.KEK of the cluster
	// token) that seals the data keys Secrets are encrypted with at rest;
	// nil stores Secrets in plaintext.
	SecretsKEK []byte
}

// Server is the Kubernetes-compatible API over the store.
type Server struct {
	cfg   Config
	store Store
	log   *slog.Logger
	reg   *registry
	now   func() time.Time
	enc   *encryption.Transformer // nil: Secrets are stored in plaintext

	// svcRanges is the service IP range, checked on first use.
	svcRanges serviceRanges
}

// New returns an API server over cfg.Store.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.BookmarkInterval == 0 {
		cfg.BookmarkInterval = 30 * time.Second
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, reg: newRegistry(), now: cfg.Now}
	if cfg.SecretsKEK != nil {
		s.enc = encryption.NewTransformer(cfg.Store, cfg.SecretsKEK, s.secretsPrefix())
	}
	return s
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch path {
	case "/healthz", "/livez":
		writeText(w, http.StatusOK, "ok")
		return
	case "/readyz":
		s.serveReady(w)
		return
	case "/version":
		writeObject(w, http.StatusOK, versionInfo())
		return
	case "/orch/v1/bootstrap/ca":
		s.serveBootstrapCA(w, r)
		return
	}
	user, ok := s.authenticate(r)
	if !ok {
		writeError(w, apierrors.NewUnauthorized("a valid bearer token is required (Authorization: Bearer TOKEN); use the admin kubeconfig the server wrote to <data-dir>/admin.kubeconfig"))
		return
	}
	switch {
	case path == "/api" || path == "/api/":
		s.serveAPIVersions(w, r)
		return
	case path == "/apis" || path == "/apis/":
		s.serveAPIGroupList(w)
		return
	case path == "/orch/v1/certificates/node":
		s.serveNodeCertificate(w, r)
		return
	case strings.HasPrefix(path, "/orch/v1/"):
		if user != AdminUser {
			writeError(w, apierrors.NewForbidden(raftPeersGR, "", fmt.Errorf("the operator API is for the cluster admin")))
			return
		}
		s.serveOperator(w, r)
		return
	}
	ri, isResource, err := s.parseResourcePath(path)
	if !isResource {
		if s.serveDiscovery(w, r) {
			return
		}
		writeError(w, pathNotFound(path))
		return
	}
	if err != nil {
		writeError(w, pathNotFound(path))
		return
	}
	ri.verb = verbFor(r, ri)
	s.serveResource(w, r, ri)
}

func pathNotFound(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource " + path,
	}}
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg) // nothing to do if the client is gone
}

func (s *Server) serveReady(w http.ResponseWriter) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeText(w, http.StatusOK, "ok")
}

// AdminUser is the user the admin token authenticates as.
const AdminUser = "admin"

func (s *Server) authenticate(r *http.Request) (string, bool) {
	if s.cfg.Authenticate == nil {
		return "", false
	}
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return s.cfg.Authenticate(strings.TrimSpace(h[len(prefix):]))
}

func versionInfo() version.Info {
	return version.Info{
		Major: orchversion.KubeMajor, Minor: orchversion.KubeMinor,
		GitVersion: orchversion.GitVersion(), GoVersion: runtime.Version(),
		Compiler: runtime.Compiler, Platform: orchversion.Platform(),
	}
}

// requestContext bounds a non-watch request by ?timeout= or the default.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	d := s.cfg.RequestTimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		if v, err := time.ParseDuration(t); err == nil && v > 0 && v < d {
			d = v
		}
	}
	return context.WithTimeout(r.Context(), d)
}

// Discovery.

func (s *Server) serveAPIVersions(w http.ResponseWriter, r *http.Request) {
	writeObject(w, http.StatusOK, &metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}},
	})
}

func (s *Server) apiGroup(group string) metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: group + "/v1", Version: "v1"}
	return metav1.APIGroup{Name: group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

func (s *Server) serveAPIGroupList(w http.ResponseWriter) {
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range s.reg.groups {
		list.Groups = append(list.Groups, s.apiGroup(g))
	}
	writeObject(w, http.StatusOK, list)
}

// serveDiscovery answers /api/v1, /apis/GROUP and /apis/GROUP/VERSION.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var group, ver string
	switch {
	case len(parts) == 2 && parts[0] == "api":
		ver = parts[1]
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range s.reg.groups {
			if g == parts[1] {
				ag := s.apiGroup(g)
				ag.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
				writeObject(w, http.StatusOK, &ag)
				return true
			}
		}
		return false
	case len(parts) == 3 && parts[0] == "apis":
		group, ver = parts[1], parts[2]
	default:
		return false
	}
	rs := s.reg.resourcesIn(group, ver)
	if len(rs) == 0 {
		return false
	}
	gv := ver
	if group != "" {
		gv = group + "/" + ver
	}
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
	for _, res := range rs {
		verbs := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.name, SingularName: res.singular, Namespaced: res.namespaced, Kind: res.kind,
			Verbs: verbs, ShortNames: res.shortNames, Categories: res.categories,
		})
		if res.status {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: res.name + "/status", Namespaced: res.namespaced, Kind: res.kind, Verbs: metav1.Verbs{"get", "patch", "update"}})
		}
		if res.scale != nil {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: res.name + "/scale", Namespaced: res.namespaced, Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: metav1.Verbs{"get", "patch", "update"}})
		}
		if res.name == "pods" {
			list.APIResources = append(list.APIResources,
				metav1.APIResource{Name: "pods/binding", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"}},
				metav1.APIResource{Name: "pods/eviction", Namespaced: true, Group: "policy", Version: "v1", Kind: "Eviction", Verbs: metav1.Verbs{"create"}},
				metav1.APIResource{Name: "pods/log", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get"}},
				metav1.APIResource{Name: "pods/exec", Namespaced: true, Kind: "PodExecOptions", Verbs: metav1.Verbs{"create", "get"}},
				metav1.APIResource{Name: "pods/portforward", Namespaced: true, Kind: "PodPortForwardOptions", Verbs: metav1.Verbs{"create", "get"}})
		}
		if res.name == "namespaces" {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: "namespaces/finalize", Kind: "Namespace", Verbs: metav1.Verbs{"update"}})
		}
	}
	writeObject(w, http.StatusOK, list)
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func revString(rev int64) string { return strconv.FormatInt(rev, 10) }
