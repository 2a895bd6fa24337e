package proxy

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func (p *UserspaceProxy) serveUDP(l *userspaceListener) {
	defer l.endSessions()
	buf := make([]byte, 65535)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	for {
		n, oobn, _, from, err := l.udp.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("userspace service proxy: UDP read", "listen", l.key.String(), "err", err)
			continue
		}
		key := sessionKey{client: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), local: l.key.addr.Addr()}
		if key.local.IsUnspecified() {
			key.local = pktinfoDst(oob[:oobn])
		}
		s := p.session(l, key)
		if s == nil {
			continue // no endpoint: the datagram is dropped
		}
		s.touch()
		if _, err := s.conn.Write(buf[:n]); err != nil {
			p.log.Debug("userspace service proxy: UDP to endpoint", "endpoint", s.ep.String(), "err", err)
			s.end()
		}
	}
}

// session finds the client's session on l or starts one with an
// endpoint; nil when there is none.
func (p *UserspaceProxy) session(l *userspaceListener, key sessionKey) *udpSession {
	l.mu.Lock()
	s := l.sessions[key]
	l.mu.Unlock()
	if s != nil {
		return s
	}
	r := l.route.Load()
	for i, e := range r.port.order(p.candidates(r, key.client.Addr()), key.client.Addr()) {
		if i == maxDialAttempts {
			break
		}
		var c net.Conn
		err := p.inNetns(func() (err error) {
			c, err = net.Dial("udp4", e.String())
			return err
		})
		if err != nil {
			p.log.Debug("userspace service proxy: UDP socket to endpoint", "endpoint", e.String(), "err", err)
			continue
		}
		s = &udpSession{l: l, key: key, ep: e, conn: c.(*net.UDPConn)}
		s.touch()
		l.mu.Lock()
		l.sessions[key] = s
		l.mu.Unlock()
		r.port.remember(key.client.Addr(), e)
		p.wg.Go(func() { p.relayReplies(s, r.port) })
		return s
	}
	return nil
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

// end forgets the session and closes its socket, which ends its reply
// loop.
func (s *udpSession) end() {
	s.l.mu.Lock()
	if s.l.sessions[s.key] == s {
		delete(s.l.sessions, s.key)
	}
	s.l.mu.Unlock()
	_ = s.conn.Close() // a second close of an ended session is harmless
}

// relayReplies sends the endpoint's datagrams back to the client from the
// listening socket until the session is idle or ended.
func (p *UserspaceProxy) relayReplies(s *udpSession, up *userspacePort) {
	defer s.end()
	defer up.remember(s.key.client.Addr(), s.ep)
	var oob []byte
	if s.l.key.addr.Addr().IsUnspecified() && s.key.local.IsValid() {
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: s.key.local.As4()})
	}
	buf := make([]byte, 65535)
	for {
		idleSince := time.Unix(0, s.last.Load())
		if time.Since(idleSince) >= p.deps.UDPIdleTimeout {
			return
		}
		_ = s.conn.SetReadDeadline(idleSince.Add(p.deps.UDPIdleTimeout)) // fails only on a closed socket, which Read reports
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			// Closed, or the endpoint refused (ICMP port unreachable):
			// the client's next datagram starts a new session.
			return
		}
		s.touch()
		if _, _, err := s.l.udp.WriteMsgUDPAddrPort(buf[:n], oob, s.key.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("userspace service proxy: UDP reply", "client", s.key.client.String(), "err", err)
		}
	}
}

// endStaleSessions ends the sessions whose endpoint is gone.
func (l *userspaceListener) endStaleSessions() {
	eps := l.route.Load().port.state.Load().sp.endpoints
	l.mu.Lock()
	var stale []*udpSession
	for k, s := range l.sessions {
		if !containsEndpoint(eps, s.ep) {
			stale = append(stale, s)
			delete(l.sessions, k)
		}
	}
	l.mu.Unlock()
	for _, s := range stale {
		_ = s.conn.Close() // ends the session's reply loop
	}
}

func (l *userspaceListener) endSessions() {
	l.mu.Lock()
	all := slices.Collect(maps.Values(l.sessions))
	clear(l.sessions)
	l.mu.Unlock()
	for _, s := range all {
		_ = s.conn.Close() // ends the session's reply loop
	}
}

// receivePktinfo asks for the destination address of each datagram.
func receivePktinfo(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt IP_PKTINFO: %w", serr)
	}
	return nil
}

// pktinfoDst is the destination address in a datagram's IP_PKTINFO
// control message; invalid when there is none.
func pktinfoDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo {
			// struct in_pktinfo: ifindex (4 bytes), spec_dst, addr.
			return netip.AddrFrom4([4]byte(m.Data[8:12]))
		}
	}
	return netip.Addr{}
}

func unmapped(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
