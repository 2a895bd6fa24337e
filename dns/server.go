package dns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults for Config.
const (
	DefaultZone       = "cluster.local"
	DefaultTTL        = 5 * time.Second
	DefaultAddr       = ":53"
	DefaultResolvConf = "/etc/resolv.conf"
)

// maxSlowQueries bounds the queries answered off the fast path at once
// (mostly forwarded ones waiting on upstreams); beyond it UDP queries are
// dropped and clients retry.
const maxSlowQueries = 1024

// Config says what a Server serves and where.
type Config struct {
	// Zone is the cluster domain; DefaultZone if empty.
	Zone string
	// TTL of the records in the zone, and the negative-answer TTL in its
	// SOA; DefaultTTL if zero.
	TTL time.Duration
	// Addr is the UDP and TCP address to listen on; DefaultAddr if empty.
	// Port 0 picks a free port (the same for both).
	Addr string
	// Upstreams are the resolvers (host or host:port) for names outside
	// the zone. If empty, the nameservers of ResolvConf are used, without
	// the server's own address.
	Upstreams []string
	// ResolvConf is read when Upstreams is empty; DefaultResolvConf if empty.
	ResolvConf string
	// NoForward answers names outside the zone with REFUSED.
	NoForward bool
	// Logger; nothing is logged if nil.
	Logger *slog.Logger
}

// Server serves the cluster zone from an Index over UDP and TCP.
type Server struct {
	Config
	Index *Index

	udp     *net.UDPConn
	tcp     net.Listener
	handler *handler
	ctx     context.Context
	cancel  context.CancelFunc
}

// ListenAndServe listens (Listen) and serves until ctx ends (Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Listen binds the UDP and TCP sockets and reads the upstream resolvers.
// Addr is valid after it returns.
func (s *Server) Listen() error {
	if s.Index == nil {
		return errors.New("dns: server without an index")
	}
	addr := s.Config.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	udp, tcp, err := listenBoth(addr)
	if err != nil {
		return err
	}
	fwd, err := s.forwarder(udp.LocalAddr())
	if err != nil {
		udp.Close()
		tcp.Close()
		return err
	}
	zone := s.Zone
	if zone == "" {
		zone = DefaultZone
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.udp, s.tcp = udp, tcp
	s.handler = newHandler(s.ctx, s.Index, zone, uint32(ttl/time.Second), fwd, s.Logger)
	return nil
}

func (s *Server) forwarder(self net.Addr) (*forwarder, error) {
	if s.NoForward {
		return nil, nil
	}
	var ups []string
	if len(s.Upstreams) > 0 {
		for _, u := range s.Upstreams {
			n, err := normalizeUpstream(u)
			if err != nil {
				return nil, err
			}
			if !isSelf(n, self) {
				ups = append(ups, n)
			}
		}
	} else {
		path := s.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		var err error
		if ups, err = upstreamsFromResolvConf(path, self); err != nil {
			return nil, err
		}
	}
	if len(ups) == 0 {
		return nil, nil
	}
	if s.Logger != nil {
		s.Logger.Info("dns: forwarding names outside the zone", "upstreams", ups)
	}
	return newForwarder(ups), nil
}

// listenBoth binds UDP and TCP on the same address; with port 0 it retries
// until the port UDP got is free for TCP too.
func listenBoth(addr string) (*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: listen address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen address %q: %w", addr, err)
		}
		udp, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		got := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, got))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || attempt >= 20 {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", net.JoinHostPort(host, got), err)
		}
	}
}

// Addr is the address the server listens on (UDP and TCP), once Listen
// has returned.
func (s *Server) Addr() string {
	if s.udp == nil {
		return ""
	}
	return s.udp.LocalAddr().String()
}

// Serve answers queries until ctx ends. Listen must have succeeded.
func (s *Server) Serve(ctx context.Context) error {
	if s.handler == nil {
		return errors.New("dns: Serve before Listen")
	}
	defer s.handler.close()
	defer s.cancel()
	started := make(chan struct{})
	tcpSrv := &dns.Server{
		Listener:          s.tcp,
		Handler:           s.handler,
		MsgAcceptFunc:     acceptQueries,
		NotifyStartedFunc: func() { close(started) },
	}
	tcpErr := make(chan error, 1)
	go func() { tcpErr <- tcpSrv.ActivateAndServe() }()
	select { // Shutdown refuses a server that has not started yet
	case <-started:
	case err := <-tcpErr:
		s.udp.Close()
		return fmt.Errorf("dns: tcp: %w", err)
	}

	var wg sync.WaitGroup
	slots := make(chan struct{}, maxSlowQueries)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveUDP(slots)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-tcpErr:
		err = fmt.Errorf("dns: tcp: %w", err)
	}
	s.cancel()
	s.udp.Close()
	if shutErr := tcpSrv.Shutdown(); shutErr != nil && err == nil {
		err = fmt.Errorf("dns: tcp shutdown: %w", shutErr)
	}
	wg.Wait()
	for range maxSlowQueries { // wait for queries still being answered
		slots <- struct{}{}
	}
	return err
}

// serveUDP reads queries and answers them. Queries the fast path answers
// are written from this goroutine without allocating; the others are
// answered in goroutines of their own, since forwarding waits on upstreams.
func (s *Server) serveUDP(slots chan struct{}) {
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535)
	h := s.handler
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp, ok := h.answerFast(buf[:n], out[:0]); ok {
			if _, err := s.udp.WriteToUDPAddrPort(resp, from); err != nil {
				h.log.Debug("dns: write answer", "err", err)
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		q := bytes.Clone(buf[:n])
		go func() {
			defer func() { <-slots }()
			if resp := h.answerSlow(s.ctx, q, true); resp != nil {
				if _, err := s.udp.WriteToUDPAddrPort(resp, from); err != nil && !errors.Is(err, net.ErrClosed) {
					h.log.Debug("dns: write answer", "err", err)
				}
			}
		}()
	}
}

// acceptQueries lets every query through to the handler (which answers
// bad ones with FORMERR or NOTIMP itself) and drops responses.
func acceptQueries(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
