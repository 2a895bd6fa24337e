package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

func (p *UserspaceProxy) serveTCP(l *userspaceListener) {
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait rather than spin.
			p.log.Warn("userspace service proxy: accept", "listen", l.key.String(), "err", err)
			select {
			case <-p.stop.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		r := l.route.Load()
		p.wg.Go(func() { p.relayTCP(r, c) })
	}
}

// relayTCP connects client to an endpoint and copies both ways until both
// sides are done. Without an endpoint that answers the client is reset.
func (p *UserspaceProxy) relayTCP(r *route, client *net.TCPConn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	from := unmapped(client.RemoteAddr())
	var up *net.TCPConn
	var ep endpoint
	for i, e := range r.port.order(p.candidates(r, from.Addr()), from.Addr()) {
		if i == maxDialAttempts {
			break
		}
		c, err := p.dialTCP(e)
		if err != nil {
			p.log.Debug("userspace service proxy: endpoint did not answer", "endpoint", e.String(), "err", err)
			continue
		}
		up, ep = c, e
		break
	}
	if up == nil {
		_ = client.SetLinger(0) // a reset tells the client at once; the close follows either way
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	r.port.remember(from.Addr(), ep)
	done := make(chan struct{})
	p.wg.Go(func() {
		defer close(done)
		copyHalf(up, client)
	})
	copyHalf(client, up)
	<-done
	r.port.remember(from.Addr(), ep)
}

func (p *UserspaceProxy) dialTCP(e endpoint) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(p.stop, p.deps.DialTimeout)
	defer cancel()
	var c net.Conn
	err := p.inNetns(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", e.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// copyHalf copies what src sends to dst. When src ends cleanly dst is
// half-closed, so the other direction goes on; when either fails both
// are reset, which ends the other direction too.
func copyHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		for _, c := range []*net.TCPConn{dst, src} {
			_ = c.SetLinger(0) // best effort: a closed connection has nothing to reset
			_ = c.Close()      // the relay's owner closes it again; only the first close counts
		}
		return
	}
	_ = dst.CloseWrite() // fails only when dst is already gone, which its own copy reports
}

// track registers c so that Close can end it; after Close it closes c
// and returns false.
func (p *UserspaceProxy) track(c *net.TCPConn) bool {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.connsClosed {
		_ = c.SetLinger(0) // best effort, as the proxy is going away
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *UserspaceProxy) untrack(c *net.TCPConn) {
	p.connMu.Lock()
	delete(p.conns, c)
	p.connMu.Unlock()
	_ = c.Close() // may already be closed by copyHalf or Close
}
