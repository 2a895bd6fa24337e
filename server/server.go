// Package server is an orch master: it keeps cluster state in the embedded
// Raft store, serves the Kubernetes-compatible API over HTTPS, and, while it
// leads, runs the control loops.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/internal/gossip"
	"orch.dev/orch/internal/hostnet"
	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/peerauth"
	"orch.dev/orch/internal/token"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/api"
	"orch.dev/orch/server/controller/cronjob"
	"orch.dev/orch/server/controller/daemonset"
	"orch.dev/orch/server/controller/deployment"
	"orch.dev/orch/server/controller/disruption"
	"orch.dev/orch/server/controller/endpoints"
	"orch.dev/orch/server/controller/garbagecollector"
	"orch.dev/orch/server/controller/job"
	"orch.dev/orch/server/controller/namespace"
	"orch.dev/orch/server/controller/nodeipam"
	"orch.dev/orch/server/controller/nodelifecycle"
	"orch.dev/orch/server/controller/replicaset"
	"orch.dev/orch/server/controller/servicelb"
	"orch.dev/orch/server/controller/servicerepair"
	"orch.dev/orch/server/controller/statefulset"
	"orch.dev/orch/server/controller/volumebinding"
	"orch.dev/orch/server/encryption"
	"orch.dev/orch/server/ipalloc"
	"orch.dev/orch/server/scheduler"
)

// Config is the configuration of `orchd server`.
type Config struct {
	Name       string
	DataDir    string
	APIAddr    string // host:port
	RaftAddr   string // host:port
	GossipAddr string // host:port
	// AdvertiseAddr is the IP other servers and clients reach this one at;
	// empty: the host of the addresses above, which must then be specific.
	AdvertiseAddr string
	Token         string
	// BootstrapExpect starts a new cluster once this many servers see each
	// other; Join names gossip addresses of existing members instead.
	BootstrapExpect int
	Join            []string
	Logger          *slog.Logger

	// Raft timing; zero takes raftstore's defaults (500 ms).
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration

	// ClusterCIDR is the pod network; each node gets a /NodeCIDRMaskSize
	// subnet of it. Defaults: 10.42.0.0/16 and 24.
	ClusterCIDR      netip.Prefix
	NodeCIDRMaskSize int
	// DefaultTolerationSeconds is how long a pod that does not tolerate
	// the not-ready and unreachable taints stays bound to a failed node
	// before it is evicted; nil means 30 s.
	DefaultTolerationSeconds *int64
	// ServiceCIDR is the range Service cluster IPs come from (default
	// 10.43.0.0/16); every server of a cluster needs the same.
	ServiceCIDR netip.Prefix
	// DisableAutoRollback turns off the automatic rollback of Deployments
	// whose rollout passes its progress deadline, for every Deployment.
	DisableAutoRollback bool

	// DNSAddr is where this server answers DNS for the cluster zone
	// (host:port, UDP and TCP); empty for none. ClusterDomain is the zone
	// (default cluster.local).
	DNSAddr       string
	ClusterDomain string

	// Gossip timing (see internal/gossip); zero takes the defaults.
	GossipProbeInterval time.Duration
	GossipSuspicionMult int
}

// Server is a running master.
type Server struct {
	cfg       Config
	log       *slog.Logger
	token     string
	advertise string
	apiPort   string
	lock      *os.File

	store   *raftstore.Node
	pool    *gossip.Pool
	apiLn   net.Listener
	api     *api.Server
	httpSrv *http.Server

	secrets       atomic.Pointer[clusterSecrets]
	serving       atomic.Bool
	agentAPIToken string

	wg sync.WaitGroup
}

// New checks the configuration, takes the data directory and opens the
// ports. Run starts the server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard
	}
	if cfg.Name == "" {
		return nil, errors.New("--name is required")
	}
	if cfg.BootstrapExpect < 0 {
		return nil, errors.New("--bootstrap-expect must be 1 or more")
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
	}
	if cfg.NodeCIDRMaskSize == 0 {
		cfg.NodeCIDRMaskSize = 24
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = ipalloc.DefaultServiceCIDR
	}
	if _, err := ipalloc.NewServiceIPRange(cfg.ServiceCIDR); err != nil {
		return nil, fmt.Errorf("--service-cidr %s: %w", cfg.ServiceCIDR, err)
	}
	if cfg.ServiceCIDR.Overlaps(cfg.ClusterCIDR) {
		return nil, fmt.Errorf("--service-cidr %s overlaps --cluster-cidr %s; they must be apart", cfg.ServiceCIDR, cfg.ClusterCIDR)
	}
	if cfg.NodeCIDRMaskSize <= cfg.ClusterCIDR.Bits() || cfg.NodeCIDRMaskSize > 30 {
		return nil, fmt.Errorf("--node-cidr-mask-size %d must be larger than the cluster CIDR's /%d and at most 30", cfg.NodeCIDRMaskSize, cfg.ClusterCIDR.Bits())
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("server", cfg.Name)}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	ok := false
	defer func() {
		if !ok {
			s.closePorts()
		}
	}()

	// A fresh single-server cluster may make its own token; a server of a
	// bigger cluster must share one.
	tok, generated, err := token.Resolve(cfg.Token, cfg.DataDir, cfg.BootstrapExpect == 1)
	if err != nil {
		return nil, err
	}
	s.token = tok
	if generated {
		s.log.Info("generated the cluster token; servers and agents joining this cluster need it", "path", filepath.Join(cfg.DataDir, "token"))
	}

	if s.advertise, err = advertiseIP(cfg); err != nil {
		return nil, err
	}
	_, s.apiPort, err = net.SplitHostPort(cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("--api-addr %q: %w", cfg.APIAddr, err)
	}
	if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("--api-addr: %w", err)
	}
	s.apiPort = strconv.Itoa(s.apiLn.Addr().(*net.TCPAddr).Port)
	raftLn, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("--raft-addr: %w", err)
	}
	raftAdvertise := net.JoinHostPort(s.advertise, strconv.Itoa(raftLn.Addr().(*net.TCPAddr).Port))
	s.store, err = raftstore.Open(raftstore.Config{
		ID: cfg.Name, Dir: filepath.Join(cfg.DataDir, "raft"), Listener: raftLn, Advertise: raftAdvertise,
		PeerKey: peerauth.Key(tok), Logger: s.log,
		HeartbeatTimeout: cfg.RaftHeartbeatTimeout, ElectionTimeout: cfg.RaftElectionTimeout,
	})
	if err != nil {
		raftLn.Close()
		return nil, err
	}
	if !s.store.HadState() && cfg.BootstrapExpect == 0 && len(cfg.Join) == 0 {
		return nil, errors.New("a new server needs --bootstrap-expect N (to start a cluster) or --join HOST:PORT (to join one)")
	}
	s.pool, err = gossip.Start(gossip.Config{
		Name: cfg.Name, BindAddr: cfg.GossipAddr, AdvertiseIP: s.advertise, Key: token.Derive(tok, "gossip"),
		Meta: s.gossipMeta(), Logger: s.log,
		ProbeInterval: cfg.GossipProbeInterval, SuspicionMult: cfg.GossipSuspicionMult,
	})
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr: %w", err)
	}
	s.agentAPIToken = token.AgentAPIToken(tok)
	s.api = api.New(api.Config{
		Store: s.store, Operator: s.store, Cluster: s, Logger: s.log,
		Authenticate: s.authenticate,
		Agents:       &api.AgentAccess{Transport: &agentTransport{s: s}, Token: token.AgentEndpointToken(tok)},
		Ready:        s.ready,
		SecretsKEK:   encryption.KEK(tok),
		ServiceCIDR:  s.cfg.ServiceCIDR,
	})
	ok = true
	return s, nil
}

// lockDir makes sure only one process uses a data directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-dir %s is in use by another orchd process", dir)
	}
	return f, nil
}

// advertiseIP picks the address others reach this server at.
func advertiseIP(cfg Config) (string, error) {
	if cfg.AdvertiseAddr != "" {
		ip := net.ParseIP(cfg.AdvertiseAddr)
		if ip == nil || ip.IsUnspecified() {
			return "", fmt.Errorf("--advertise-addr %q must be an IP address others can reach", cfg.AdvertiseAddr)
		}
		return ip.String(), nil
	}
	for _, a := range []string{cfg.RaftAddr, cfg.GossipAddr, cfg.APIAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return ip.String(), nil
		}
	}
	return hostnet.IP()
}

func (s *Server) gossipMeta() gossip.Meta {
	return gossip.Meta{
		Role: "server", Raft: s.store.Addr(), API: net.JoinHostPort(s.advertise, s.apiPort),
		Expect: s.cfg.BootstrapExpect, Bootstrapped: s.store.HadState(),
	}
}

// APIURL is the HTTPS address of this server's API.
func (s *Server) APIURL() string { return "https://" + net.JoinHostPort(s.advertise, s.apiPort) }

// Token is the cluster token.
func (s *Server) Token() string { return s.token }

// WaitReady blocks until the server serves the API.
func (s *Server) WaitReady(ctx context.Context) error {
	for s.ready() != nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server is not ready: %v", s.ready())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// GossipAddr is the address others join this server's gossip at.
func (s *Server) GossipAddr() string { return s.pool.Addr() }

// Store returns the server's replica of the store.
func (s *Server) Store() *raftstore.Node { return s.store }

func (s *Server) ready() error {
	if id, _ := s.store.Leader(); id == "" {
		return errors.New("no Raft leader known")
	}
	if !s.serving.Load() {
		return errors.New("waiting for the cluster's bootstrap data")
	}
	return nil
}

// Run runs the server until ctx ends, then shuts it down.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.log.Info("orchd server starting", "api", s.APIURL(), "raft", s.store.Addr(), "gossip", s.pool.Addr(), "data", s.cfg.DataDir)
	errc := make(chan error, 2)
	s.goRun(func() { s.gossipJoinLoop(ctx) })
	if !s.store.HadState() {
		s.goRun(func() {
			if err := s.formCluster(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		})
	} else {
		s.log.Info("rejoining the cluster with existing data")
	}
	s.goRun(func() { s.leaderLoop(ctx) })
	s.goRun(func() {
		if err := s.serve(ctx); err != nil && ctx.Err() == nil {
			errc <- err
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("server failed", "err", err)
	}
	cancel()
	s.shutdown()
	s.wg.Wait()
	return err
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// gossipJoinLoop joins the configured members, and keeps trying while this
// server knows no other member (for servers started before their peers).
func (s *Server) gossipJoinLoop(ctx context.Context) {
	if len(s.cfg.Join) == 0 {
		return
	}
	for {
		if len(s.pool.Members()) <= 1 {
			if n, err := s.pool.Join(s.cfg.Join); err != nil {
				s.log.Debug("gossip join failed; retrying", "join", s.cfg.Join, "err", err)
			} else {
				s.log.Info("joined gossip", "contacted", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// formCluster makes a new server a Raft member: with --bootstrap-expect, by
// bootstrapping once that many servers see each other (or joining if a
// cluster already exists); with --join, by asking a member to add it.
func (s *Server) formCluster(ctx context.Context) error {
	for {
		changed := s.pool.Changed()
		var expectGroup []gossip.Member
		var bootstrapped []gossip.Member
		for _, m := range s.pool.Members() {
			if m.Meta.Role != "server" || m.Name == s.cfg.Name || m.State != "alive" {
				if m.Name == s.cfg.Name {
					expectGroup = append(expectGroup, m)
				}
				continue
			}
			// Servers started with --join alone count towards an expected
			// group; servers expecting another size do not.
			if m.Meta.Bootstrapped {
				bootstrapped = append(bootstrapped, m)
			} else if s.cfg.BootstrapExpect > 0 && (m.Meta.Expect == s.cfg.BootstrapExpect || m.Meta.Expect == 0) {
				expectGroup = append(expectGroup, m)
			}
		}
		switch {
		case len(bootstrapped) > 0:
			for _, m := range bootstrapped {
				jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := s.store.RequestJoin(jctx, m.Meta.Raft)
				cancel()
				if err == nil {
					s.log.Info("joined the Raft cluster", "via", m.Name)
					return s.markBootstrapped()
				}
				s.log.Warn("join request failed; trying again", "via", m.Name, "err", err)
			}
		case s.cfg.BootstrapExpect > 0 && len(expectGroup) >= s.cfg.BootstrapExpect:
			var servers []raftstore.Server
			for _, m := range expectGroup {
				addr := m.Meta.Raft
				if m.Name == s.cfg.Name {
					addr = s.store.Addr()
				}
				servers = append(servers, raftstore.Server{ID: m.Name, Address: addr})
			}
			s.log.Info("bootstrapping a new Raft cluster", "servers", len(servers))
			if err := s.store.Bootstrap(servers); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			return s.markBootstrapped()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) markBootstrapped() error {
	m := s.gossipMeta()
	m.Bootstrapped = true
	return s.pool.SetMeta(m)
}

// leaderLoop runs the leader's work while this server leads.
func (s *Server) leaderLoop(ctx context.Context) {
	var term *leaderTerm
	defer func() { term.stop(s.log) }()
	for {
		changed := s.store.LeaderChanged()
		switch leading := s.store.IsLeader(); {
		case leading && term == nil:
			s.log.Info("leading the cluster")
			term = startTerm(ctx, s.lead)
		case !leading && term != nil:
			term.stop(s.log)
			term = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// leaderTerm is the leader's work during one term of leadership.
type leaderTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startTerm(ctx context.Context, work func(context.Context)) *leaderTerm {
	lctx, cancel := context.WithCancel(ctx)
	t := &leaderTerm{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		work(lctx)
	}()
	return t
}

func (t *leaderTerm) stop(log *slog.Logger) {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
	log.Info("stopped leading")
}

// lead is the leader's work: the cluster's bootstrap data and initial
// namespaces, then the control loops until leadership ends.
func (s *Server) lead(ctx context.Context) {
	retry(ctx, s.log, "create bootstrap data", func(ctx context.Context) error { return ensureBootstrap(ctx, s.store, s.token) })
	for _, ns := range api.InitialNamespaces {
		retry(ctx, s.log, "create namespace "+ns, func(ctx context.Context) error { return s.api.EnsureNamespace(ctx, ns) })
	}
	retry(ctx, s.log, "create storage class local", s.api.EnsureDefaultStorageClass)
	// The control loops are API clients of this server.
	for !s.serving.Load() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	cfg := s.loopbackConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.log.Error("controllers cannot start", "err", err)
		return
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		s.log.Error("controllers cannot start", "err", err)
		return
	}
	ipam, err := nodeipam.New(nodeipam.Deps{Client: cs, ClusterCIDR: s.cfg.ClusterCIDR, MaskSize: s.cfg.NodeCIDRMaskSize, Logger: s.log.With("controller", "nodeipam")})
	if err != nil {
		s.log.Error("controllers cannot start", "err", err)
		return
	}
	// The workload loops share one set of informers: one watch and one
	// cache per resource, however many loops read it.
	shared := informers.NewSharedInformerFactory(cs, 0)
	defer shared.Shutdown()
	loops := map[string]interface{ Run(context.Context) error }{
		"garbagecollector": garbagecollector.New(garbagecollector.Deps{Client: cs, Dynamic: dyn,
			Resources: append(api.NamespacedResources(), api.ClusterResources()...),
			Logger:    s.log.With("controller", "garbagecollector")}),
		"job":         job.New(job.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "job")}),
		"cronjob":     cronjob.New(cronjob.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "cronjob")}),
		"daemonset":   daemonset.New(daemonset.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "daemonset")}),
		"statefulset": statefulset.New(statefulset.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "statefulset")}),
		"deployment": deployment.New(deployment.Deps{Client: cs, Informers: shared, DisableAutoRollback: s.cfg.DisableAutoRollback,
			Logger: s.log.With("controller", "deployment")}),
		"endpoints":  endpoints.New(endpoints.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "endpoints")}),
		"disruption": disruption.New(disruption.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "disruption")}),
		"servicelb":  servicelb.New(servicelb.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "servicelb")}),
		"servicerepair": servicerepair.New(servicerepair.Deps{Store: s.store, Client: cs, ServiceCIDR: s.cfg.ServiceCIDR,
			Logger: s.log.With("controller", "servicerepair")}),
		"replicaset": replicaset.New(replicaset.Deps{Client: cs, Informers: shared, Logger: s.log.With("controller", "replicaset")}),
		"namespace":  namespace.New(namespace.Deps{Client: cs, Dynamic: dyn, Resources: api.NamespacedResources(), Logger: s.log.With("controller", "namespace")}),
		"nodeipam":   ipam,
		"nodelifecycle": nodelifecycle.New(nodelifecycle.Deps{Client: cs, Informers: shared, Alive: s.aliveAgents, Changed: s.pool.Changed,
			DefaultTolerationSeconds: s.cfg.DefaultTolerationSeconds, Logger: s.log.With("controller", "nodelifecycle")}),
		"scheduler": scheduler.New(scheduler.Deps{Client: cs, Logger: s.log.With("controller", "scheduler")}),
		"volumebinding": volumebinding.New(volumebinding.Deps{Client: cs, Informers: shared,
			Logger: s.log.With("controller", "volumebinding")}),
	}
	shared.Start(ctx.Done())
	var wg sync.WaitGroup
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("controller stopped", "controller", name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// aliveAgents names the agents gossip knows as members.
func (s *Server) aliveAgents() map[string]bool {
	out := map[string]bool{}
	for _, m := range s.pool.Members() {
		if m.Meta.Role == "agent" {
			out[m.Name] = true
		}
	}
	return out
}

// loopbackConfig is the client config the leader's control loops use to
// reach this server's API.
func (s *Server) loopbackConfig() *rest.Config {
	host, _, _ := net.SplitHostPort(s.cfg.APIAddr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	sec := s.secrets.Load()
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, s.apiPort),
		BearerToken:     sec.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: sec.ca.CertPEM},
		UserAgent:       "orchd-controllers",
		QPS:             -1,
	}
}

// retry calls f until it succeeds or ctx ends.
func retry(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(fctx)
		cancel()
		if err == nil {
			return
		}
		log.Warn(what+" failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serve waits for the cluster's secrets, makes this server's certificate
// and admin kubeconfig, and serves the API over HTTPS.
func (s *Server) serve(ctx context.Context) error {
	sec, err := waitBootstrap(ctx, s.store, s.token)
	if err != nil {
		return err
	}
	s.secrets.Store(sec)
	ips := []net.IP{net.ParseIP(s.advertise), net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if host, _, err := net.SplitHostPort(s.cfg.APIAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	}
	dns := []string{"localhost", s.cfg.Name}
	if h, err := os.Hostname(); err == nil {
		dns = append(dns, h)
	}
	cert, err := sec.ca.IssueServer(s.cfg.Name, ips, dns)
	if err != nil {
		return fmt.Errorf("issue the serving certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, "ca.crt"), sec.ca.CertPEM, 0o644); err != nil {
		return fmt.Errorf("write ca.crt: %w", err)
	}
	kubeconfig := filepath.Join(s.cfg.DataDir, "admin.kubeconfig")
	if err := certs.WriteKubeconfig(kubeconfig, "orch", s.APIURL(), sec.ca.CertPEM, sec.adminToken); err != nil {
		return fmt.Errorf("write %s: %w", kubeconfig, err)
	}
	s.httpSrv = &http.Server{
		Handler:           s.api,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logging.Std(s.log, "http"),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 2000},
	}
	s.serving.Store(true)
	s.log.Info("serving the API", "url", s.APIURL(), "kubeconfig", kubeconfig)
	s.goRun(func() { s.runDNS(ctx) })
	err = s.httpSrv.ServeTLS(s.apiLn, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops serving, hands leadership over (so the others need not
// wait for an election timeout), leaves gossip and closes the store.
func (s *Server) shutdown() {
	s.log.Info("orchd server stopping")
	s.serving.Store(false)
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			s.httpSrv.Close()
		}
		cancel()
	}
	if s.store.IsLeader() {
		if peers, err := s.store.Peers(); err == nil && len(peers) > 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := s.store.TransferLeadership(ctx, ""); err != nil {
				s.log.Warn("could not hand leadership over before stopping", "err", err)
			}
			cancel()
		}
	}
	if err := s.pool.Leave(2 * time.Second); err != nil {
		s.log.Debug("leaving gossip", "err", err)
	}
	s.closePorts()
}

func (s *Server) closePorts() {
	if s.apiLn != nil {
		s.apiLn.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Error("closing the store", "err", err)
		}
	}
	if s.lock != nil {
		s.lock.Close()
	}
}
