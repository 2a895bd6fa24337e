package endpoint_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"orch.dev/orch/node/endpoint"
	"orch.dev/orch/node/runtime"
)

const forwardToken = "forward-token"

// echoServer listens on loopback: it greets each connection, echoes its
// lines upper-cased, and says bye when the client has closed its side.
func echoServer(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprint(c, "hello\n")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprint(c, strings.ToUpper(sc.Text())+"\n")
				}
				fmt.Fprint(c, "bye\n")
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

// serveForward starts an endpoint whose only pod, default/web, is this
// host's loopback; default/pending has no network yet.
func serveForward(t *testing.T) *httptest.Server {
	t.Helper()
	h := endpoint.New(endpoint.Config{Token: forwardToken, Logger: testLogger(t),
		PodAddress: func(_ context.Context, ns, pod string) (string, error) {
			switch ns + "/" + pod {
			case "default/web":
				return "127.0.0.1", nil
			case "default/pending":
				return "", fmt.Errorf("%w: pod default/pending is Pending", endpoint.ErrPodNotRunning)
			}
			return "", fmt.Errorf("%w: no pod %s/%s", runtime.ErrNotFound, ns, pod)
		}})
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// forwardConn is a test client of the port-forward protocol.
type forwardConn struct {
	*websocket.Conn
}

func dialForward(t *testing.T, srv *httptest.Server, path, token string, protocols ...string) (*forwardConn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone(),
		Subprotocols:    protocols, HandshakeTimeout: 10 * time.Second,
	}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https")+path, hdr)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return &forwardConn{c}, resp, nil
}

// send writes data on a channel.
func (c *forwardConn) send(t *testing.T, ch byte, data string) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...)); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads messages until done says it has enough, returning what
// each channel carried, or the error that ended the reading (the close).
func (c *forwardConn) readUntil(t *testing.T, done func(map[byte]string) bool) (map[byte]string, error) {
	t.Helper()
	got := map[byte]string{}
	for !done(got) {
		typ, p, err := c.ReadMessage()
		if err != nil {
			return got, err
		}
		if typ != websocket.BinaryMessage || len(p) == 0 {
			t.Fatalf("got a message of type %d, %d bytes: want binary with a channel", typ, len(p))
		}
		got[p[0]] += string(p[1:])
	}
	return got, nil
}

func portBytes(p uint16) string {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], p)
	return string(b[:])
}

func TestPortForward(t *testing.T) {
	srv := serveForward(t)
	port := echoServer(t)
	never := func(map[byte]string) bool { return false }

	t.Run("v4 round trip", func(t *testing.T) {
		c, _, err := dialForward(t, srv, "/portForward/default/web?port="+strconv.Itoa(int(port)), forwardToken, endpoint.ProtocolV4)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subprotocol() != endpoint.ProtocolV4 {
			t.Fatalf("got subprotocol %q", c.Subprotocol())
		}
		got, err := c.readUntil(t, func(m map[byte]string) bool { return len(m[0]) >= 8 && len(m[1]) >= 2 })
		if err != nil {
			t.Fatal(err)
		}
		if want := portBytes(port) + "hello\n"; got[0] != want {
			t.Fatalf("data channel %q, want %q", got[0], want)
		}
		if got[1] != portBytes(port) {
			t.Fatalf("error channel %q, want only the port", got[1])
		}
		c.send(t, 0, "ping\n")
		got, err = c.readUntil(t, func(m map[byte]string) bool { return len(m[0]) >= 5 })
		if err != nil || got[0] != "PING\n" {
			t.Fatalf("got %q, %v; want PING", got[0], err)
		}
	})

	t.Run("v5 half close", func(t *testing.T) {
		c, _, err := dialForward(t, srv, "/portForward/default/web?ports="+strconv.Itoa(int(port)), forwardToken, "portforward.k8s.io", endpoint.ProtocolV5)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subprotocol() != endpoint.ProtocolV5 {
			t.Fatalf("got subprotocol %q", c.Subprotocol())
		}
		c.send(t, 0, "a\nb\n")
		c.send(t, 255, "\x00")
		got, err := c.readUntil(t, never)
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("got %v, want a normal close", err)
		}
		if want := portBytes(port) + "hello\nA\nB\nbye\n"; got[0] != want {
			t.Fatalf("data channel %q, want %q", got[0], want)
		}
	})

	t.Run("two ports, one refused", func(t *testing.T) {
		refused := closedPort(t)
		c, _, err := dialForward(t, srv, fmt.Sprintf("/portForward/default/web?port=%d,%d", port, refused), forwardToken, endpoint.ProtocolPortForward)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.readUntil(t, func(m map[byte]string) bool { return len(m[0]) >= 8 && len(m[3]) > 2 })
		if err != nil {
			t.Fatal(err)
		}
		if want := portBytes(port) + "hello\n"; got[0] != want {
			t.Fatalf("first data channel %q, want %q", got[0], want)
		}
		want := portBytes(refused) + fmt.Sprintf("error forwarding port %d to pod default/web: ", refused)
		if !strings.HasPrefix(got[3], want) || !strings.Contains(got[3], "refused") {
			t.Fatalf("second error channel %q, want %q and connection refused", got[3], want)
		}
		c.send(t, 0, "x\n")
		got, err = c.readUntil(t, func(m map[byte]string) bool { return len(m[0]) >= 2 })
		if err != nil || got[0] != "X\n" {
			t.Fatalf("got %q, %v; the first port still works", got[0], err)
		}
	})

	t.Run("the client going away ends the connection", func(t *testing.T) {
		accepted := make(chan net.Conn, 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				accepted <- c
			}
		}()
		c, _, err := dialForward(t, srv, fmt.Sprintf("/portForward/default/web?port=%d", ln.Addr().(*net.TCPAddr).Port), forwardToken)
		if err != nil {
			t.Fatal(err)
		}
		var pc net.Conn
		select {
		case pc = <-accepted:
		case <-time.After(30 * time.Second):
			t.Fatal("the endpoint never connected")
		}
		defer pc.Close()
		c.Close()
		_ = pc.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadAll(pc); err != nil {
			t.Fatalf("the pod's connection did not end: %v", err)
		}
	})

	refusals := []struct {
		name, path, token string
		protocols         []string
		wantCode          int
		want              string
	}{
		{name: "anonymous", path: "/portForward/default/web?port=80", wantCode: http.StatusUnauthorized, want: "bearer token"},
		{name: "wrong token", path: "/portForward/default/web?port=80", token: "nope", wantCode: http.StatusUnauthorized, want: "bearer token"},
		{name: "no port", path: "/portForward/default/web", token: forwardToken, wantCode: http.StatusBadRequest, want: "query parameter port is required"},
		{name: "port not a number", path: "/portForward/default/web?port=http", token: forwardToken, wantCode: http.StatusBadRequest, want: `port=\"http\"`},
		{name: "port zero", path: "/portForward/default/web?port=0", token: forwardToken, wantCode: http.StatusBadRequest, want: `port=\"0\"`},
		{name: "port too big", path: "/portForward/default/web?port=65536", token: forwardToken, wantCode: http.StatusBadRequest, want: `port=\"65536\"`},
		{name: "unknown subprotocol", path: "/portForward/default/web?port=80", token: forwardToken, protocols: []string{"SPDY/3.1+portforward.k8s.io"},
			wantCode: http.StatusBadRequest, want: "none of the offered WebSocket subprotocols [SPDY/3.1+portforward.k8s.io]"},
		{name: "unknown pod", path: "/portForward/default/nope?port=80", token: forwardToken, wantCode: http.StatusNotFound, want: "pod default/nope not found on this node"},
		{name: "pod not running", path: "/portForward/default/pending?port=80", token: forwardToken, wantCode: http.StatusConflict, want: "pod default/pending is Pending"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dialForward(t, srv, tc.path, tc.token, tc.protocols...)
			if err == nil || resp == nil {
				t.Fatalf("got %v, want a refusal", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.want) {
				t.Fatalf("got %d %s, want %d with %q", resp.StatusCode, body, tc.wantCode, tc.want)
			}
		})
	}

	t.Run("without an upgrade", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/portForward/default/web?port=80", nil)
		req.Header.Set("Authorization", "Bearer "+forwardToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "needs a WebSocket upgrade") {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
}

func TestPortForwardUnconfigured(t *testing.T) {
	srv := httptest.NewTLSServer(endpoint.New(endpoint.Config{Token: forwardToken}))
	defer srv.Close()
	_, resp, err := dialForward(t, srv, "/portForward/default/web?port=80", forwardToken)
	if err == nil || resp == nil {
		t.Fatalf("got %v, want a refusal", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "not configured for port forwarding") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}
