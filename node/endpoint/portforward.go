package endpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/node/runtime"
)

// ProtocolPortForward is the name Kubernetes gives its port-forward
// streams; offered as a WebSocket subprotocol, the endpoint speaks the
// same channel framing as v4.channel.k8s.io with it.
const ProtocolPortForward = "portforward.k8s.io"

// ErrPodNotRunning is what Config.PodAddress wraps for a pod that has no
// running network to forward to.
var ErrPodNotRunning = errors.New("pod is not running")

// maxForwardedPorts bounds the ports of one request: two channels each,
// and a channel number is one byte.
const maxForwardedPorts = 64

// readPorts reads the ports to forward: query parameter port (the
// kubelet's name) or ports (the API's), repeated or comma-separated.
func readPorts(r *http.Request) ([]uint16, error) {
	q := r.URL.Query()
	vals := append(q["port"], q["ports"]...)
	if len(vals) == 0 {
		return nil, errors.New("query parameter port is required: the pod's port numbers, repeated or comma-separated")
	}
	var ports []uint16
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("query parameter port=%q: want a port number from 1 to 65535", p)
			}
			ports = append(ports, uint16(n))
		}
	}
	if len(ports) > maxForwardedPorts {
		return nil, fmt.Errorf("query parameter port: %d ports, at most %d in one request", len(ports), maxForwardedPorts)
	}
	return ports, nil
}

// negotiatePortForward picks the subprotocol by the endpoint's preference;
// a client offering none gets the v4 framing, as from the kubelet. ok is
// false when the client offered only protocols the endpoint does not speak.
func negotiatePortForward(r *http.Request) (proto string, ok bool) {
	offered := websocket.Subprotocols(r)
	if len(offered) == 0 {
		return "", true
	}
	for _, want := range []string{ProtocolV5, ProtocolV4, ProtocolPortForward} {
		for _, p := range offered {
			if p == want {
				return want, true
			}
		}
	}
	return "", false
}

// servePortForward connects WebSocket channels to ports of a pod. As with
// exec, everything that can be refused is refused before the upgrade.
func (s *server) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	ports, err := readPorts(r)
	if err != nil {
		badRequest(w, "%s", err.Error())
		return
	}
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) {
		badRequest(w, "port forwarding needs a WebSocket upgrade (GET with subprotocol %s or %s); SPDY is not supported", ProtocolV4, ProtocolPortForward)
		return
	}
	proto, ok := negotiatePortForward(r)
	if !ok {
		badRequest(w, "none of the offered WebSocket subprotocols [%s] is supported; want %s, %s or %s",
			strings.Join(websocket.Subprotocols(r), ", "), ProtocolV5, ProtocolV4, ProtocolPortForward)
		return
	}
	if s.cfg.PodAddress == nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "the agent endpoint is not configured for port forwarding")
		return
	}
	addr, err := s.cfg.PodAddress(r.Context(), ns, pod)
	switch {
	case err == nil && addr != "":
	case err == nil, errors.Is(err, ErrPodNotRunning):
		msg := fmt.Sprintf("pod %s/%s is not running", ns, pod)
		if err != nil {
			msg = err.Error()
		}
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, msg)
		return
	case errors.Is(err, runtime.ErrNotFound):
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pod %s/%s not found on this node: %v", ns, pod, err))
		return
	case r.Context().Err() != nil:
		return
	default:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("finding pod %s/%s: %v", ns, pod, err))
		return
	}
	var hdr http.Header
	if proto != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }} // see serveExec
	conn, err := up.Upgrade(w, r, hdr)
	if err != nil {
		s.log.Warn("port-forward: WebSocket upgrade failed", "ns", ns, "pod", pod, "err", err)
		return
	}
	defer conn.Close()
	dial := s.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	sess := &forwardSession{conn: conn, closeSignal: proto == ProtocolV5, log: s.log, dial: dial,
		what: fmt.Sprintf("pod %s/%s", ns, pod)}
	sess.run(r.Context(), addr, ports)
	s.log.Info("port-forward finished", "ns", ns, "pod", pod, "ports", ports, "protocol", proto)
}

// forwardSession is one port-forward WebSocket: per port, a data channel
// (2*i) and an error channel (2*i+1).
type forwardSession struct {
	conn        *websocket.Conn
	closeSignal bool // v5: the client ends a data channel with channelClose
	log         *slog.Logger
	dial        func(ctx context.Context, network, address string) (net.Conn, error)
	what        string // the pod, for error messages

	writeMu sync.Mutex
}

// run forwards every port until each one's connection has ended or the
// client goes away, then closes the WebSocket.
func (f *forwardSession) run(ctx context.Context, addr string, ports []uint16) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writers := make([]*io.PipeWriter, len(ports))
	var wg sync.WaitGroup
	for i, port := range ports {
		// Every channel starts with its port, little-endian, as the kubelet
		// sends it.
		var head [2]byte
		binary.LittleEndian.PutUint16(head[:], port)
		if f.write(byte(2*i), head[:]) != nil || f.write(byte(2*i+1), head[:]) != nil {
			return
		}
		pr, pw := io.Pipe()
		writers[i] = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.forward(ctx, net.JoinHostPort(addr, strconv.Itoa(int(port))), port, byte(2*i), pr)
		}()
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		f.readLoop(writers)
		// The client is gone: so are its connections.
		cancel()
	}()
	wg.Wait()
	if ctx.Err() == nil {
		_ = f.conn.WriteControl(websocket.CloseMessage, // a failed close is the same as a dropped one
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
	}
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-readDone:
	case <-timer.C:
	}
}

// forward connects one port and copies both ways until the pod's side
// ends. A connection that cannot be made is reported on the error channel.
func (f *forwardSession) forward(ctx context.Context, addr string, port uint16, data byte, fromClient *io.PipeReader) {
	defer fromClient.CloseWithError(io.ErrClosedPipe) // later client data goes nowhere
	c, err := f.dial(ctx, "tcp", addr)
	if err != nil {
		msg := fmt.Sprintf("error forwarding port %d to %s: %v", port, f.what, err)
		f.log.Info("port-forward: dial failed", "addr", addr, "err", err)
		_ = f.write(data+1, []byte(msg)) // a client that went away cannot be told
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	go func() {
		_, err := io.Copy(c, fromClient)
		if err == nil {
			// The client closed its side: so does the connection, which
			// may still answer.
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}
	}()
	_, _ = io.Copy(channelWriter{f, data}, c)
}

// write sends one message on a channel.
func (f *forwardSession) write(ch byte, p []byte) error {
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	if err := f.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	w, err := f.conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{ch}); err != nil {
		w.Close()
		return err
	}
	if _, err := w.Write(p); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// readLoop delivers the client's data to each port's connection until the
// WebSocket closes. Messages on error channels, or for ports whose
// connection has ended, are dropped.
func (f *forwardSession) readLoop(writers []*io.PipeWriter) {
	defer func() {
		for _, w := range writers {
			if w != nil {
				w.CloseWithError(io.ErrUnexpectedEOF)
			}
		}
	}()
	var head [2]byte
	for {
		typ, r, err := f.conn.NextReader()
		if err != nil {
			return
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		if _, err := io.ReadFull(r, head[:1]); err != nil {
			continue
		}
		ch := head[0]
		if ch == channelClose && f.closeSignal {
			if _, err := io.ReadFull(r, head[1:2]); err != nil {
				continue
			}
			if i := int(head[1]); head[1]%2 == 0 && i/2 < len(writers) && writers[i/2] != nil {
				writers[i/2].Close()
				writers[i/2] = nil
			}
			continue
		}
		if i := int(ch); ch%2 == 0 && i/2 < len(writers) && writers[i/2] != nil {
			if _, err := io.Copy(writers[i/2], r); err != nil {
				writers[i/2] = nil
			}
		}
	}
}
