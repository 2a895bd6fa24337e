package server

import (
	"context"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/dns"
)

// runDNS serves the cluster zone on Config.DNSAddr, from watches of this
// server's own API, until ctx ends: every server answers Service and pod
// names, so a host's resolver (or an operator's dig) can ask any master.
// Names outside the zone are forwarded to the host's resolvers. A server
// that cannot listen logs why and goes on without DNS.
func (s *Server) runDNS(ctx context.Context) {
	if s.cfg.DNSAddr == "" {
		return
	}
	cs, err := kubernetes.NewForConfig(s.loopbackConfig())
	if err != nil {
		s.log.Warn("no cluster DNS on this server", "err", err)
		return
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	idx, err := dns.NewIndexFromInformers(factory)
	if err != nil {
		s.log.Warn("no cluster DNS on this server", "err", err)
		return
	}
	srv := &dns.Server{Config: dns.Config{Zone: s.cfg.ClusterDomain, Addr: s.cfg.DNSAddr, Logger: s.log.With("loop", "dns")}, Index: idx}
	if err := srv.Listen(); err != nil {
		s.log.Warn("no cluster DNS on this server", "addr", s.cfg.DNSAddr, "err", err)
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	zone := s.cfg.ClusterDomain
	if zone == "" {
		zone = dns.DefaultZone
	}
	s.log.Info("cluster DNS serving", "addr", srv.Addr(), "zone", zone)
	if err := srv.Serve(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("cluster DNS stopped", "err", err)
	}
}
