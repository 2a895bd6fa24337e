package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"orch.dev/orch/internal/peerauth"
)

// Connection types on the peer port. After the token handshake, the dialer
// sends one byte saying what the connection carries.
const (
	connRaft byte = 'R'
	connRPC  byte = 'C'
)

const handshakeTimeout = 10 * time.Second

// mux accepts connections on the peer port, authenticates them with the
// cluster token, and hands each to Raft or to the RPC server.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	key       []byte // nil: no authentication (in-process tests only)
	log       *slog.Logger

	raftCh chan net.Conn
	rpc    func(net.Conn)

	closeOnce sync.Once
	closed    chan struct{}
}

func newMux(ln net.Listener, advertise net.Addr, key []byte, log *slog.Logger) *mux {
	return &mux{ln: ln, advertise: advertise, key: key, log: log, raftCh: make(chan net.Conn, 16), closed: make(chan struct{})}
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Error("peer listener failed", "err", err)
			return
		}
		go m.handle(c)
	}
}

func (m *mux) handle(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // the default; set for clarity, errors are harmless
	}
	if m.key != nil {
		sc, err := peerauth.Server(c, m.key, handshakeTimeout)
		if err != nil {
			m.log.Warn("refused peer connection", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		c = sc
	}
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var typ [1]byte
	if _, err := c.Read(typ[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch typ[0] {
	case connRaft:
		select {
		case m.raftCh <- c:
		case <-m.closed:
			c.Close()
		}
	case connRPC:
		if m.rpc == nil {
			c.Close()
			return
		}
		m.rpc(c)
	default:
		m.log.Warn("unknown peer connection type", "remote", c.RemoteAddr().String(), "type", typ[0])
		c.Close()
	}
}

func (m *mux) dial(addr string, typ byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if m.key != nil {
		sc, err := peerauth.Client(c, m.key, handshakeTimeout)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", addr, err)
		}
		c = sc
	}
	if _, err := c.Write([]byte{typ}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, ErrClosed
	}
}

func (l raftLayer) Close() error   { return l.m.close() }
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(string(address), connRaft, timeout)
}
