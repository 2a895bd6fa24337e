package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"orch.dev/orch/node/endpoint"
	"orch.dev/orch/node/endpoint/endpointtest"
	"orch.dev/orch/node/runtime"
)

// execURL is the exec route for pod web's container with the query
// client-go would send for these choices.
func execURL(srv *testServer, container string, stdin, tty bool, command ...string) string {
	q := url.Values{"command": command, "stdout": {"true"}}
	if stdin {
		q.Set("stdin", "true")
	}
	if tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	return srv.URL + "/exec/default/web/" + container + "?" + q.Encode()
}

// execResult is what a client saw of one command.
type execResult struct {
	stdout, stderr string
	err            error
}

// execute runs a command through client-go's WebSocket executor, as
// kubectl and orchctl do.
func execute(t *testing.T, srv *testServer, u string, protocols []string, opts remotecommand.StreamOptions) execResult {
	t.Helper()
	ex, err := remotecommand.NewWebSocketExecutorForProtocols(srv.Config, http.MethodGet, u, protocols...)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	opts.Stdout = &stdout
	if !opts.Tty {
		opts.Stderr = &stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, opts)
	return execResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// exitCode is the remote command's exit code in a client-go error: 0 for
// none, -1 for an error that carries no code.
func exitCode(err error) int {
	var ce exec.CodeExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		return ce.Code
	}
	return -1
}

func TestExec(t *testing.T) {
	f := endpointtest.New(t)
	srv := serve(t, f, nil, endpointtest.Token)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	done := f.Run(t, "default", "web", "done", runtime.ContainerSpec{Args: []string{"exit", "0"}})
	f.WaitExit(t, done)
	v5, v4 := []string{endpoint.ProtocolV5}, []string{endpoint.ProtocolV4}
	cases := []struct {
		name       string
		url        string
		protocols  []string
		stdin      string
		tty        bool
		partial    bool // stdout need only contain wantStdout
		wantStdout string
		wantStderr string
		wantCode   int    // the remote exit code; -1: an error without one
		wantErr    string // with wantCode -1: part of the error
	}{
		{name: "stdin to stdout", url: execURL(srv, "app", true, false, "/hello", "cat"), protocols: v5, stdin: "ping\npong\n", wantStdout: "ping\npong\n"},
		{name: "empty stdin", url: execURL(srv, "app", true, false, "/hello", "cat"), protocols: v5, stdin: ""},
		{name: "exit code", url: execURL(srv, "app", false, false, "/hello", "exit", "3"), protocols: v5, wantStdout: "exiting with 3\n", wantCode: 3},
		{name: "stderr", url: execURL(srv, "app", false, false, "/hello", "exit"), protocols: v5, wantStderr: "hello: usage: hello exit CODE [DELAY]\n", wantCode: 2},
		{name: "v4 exit code", url: execURL(srv, "app", false, false, "/hello", "exit", "4"), protocols: v4, wantStdout: "exiting with 4\n", wantCode: 4},
		{name: "tty", url: execURL(srv, "app", false, true, "/hello", "env"), protocols: v5, tty: true, partial: true, wantStdout: "TERM=xterm\r\n"},
		// Docker reports a program it cannot start as exit code 126, with
		// its reason on the command's output.
		{name: "no such program", url: execURL(srv, "app", false, false, "/nope"), protocols: v5, wantCode: 126, partial: true,
			wantStdout: `exec: "/nope": stat /nope: no such file or directory`},
		{name: "unknown container", url: execURL(srv, "nope", false, false, "/hello", "env"), protocols: v5, wantCode: -1,
			wantErr: `container "nope" of pod default/web not found on this node`},
		{name: "exited container", url: execURL(srv, "done", false, false, "/hello", "env"), protocols: v5, wantCode: -1,
			wantErr: `container "done" of pod default/web is not running (exited)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := remotecommand.StreamOptions{Tty: tc.tty}
			if strings.Contains(tc.url, "stdin=true") {
				opts.Stdin = strings.NewReader(tc.stdin)
			}
			r := execute(t, srv, tc.url, tc.protocols, opts)
			if got := exitCode(r.err); got != tc.wantCode {
				t.Fatalf("got exit code %d (%v), want %d; stdout %q stderr %q", got, r.err, tc.wantCode, r.stdout, r.stderr)
			}
			if tc.wantCode == -1 && !strings.Contains(r.err.Error(), tc.wantErr) {
				t.Fatalf("got error %q, want it to contain %q", r.err, tc.wantErr)
			}
			if tc.partial {
				if !strings.Contains(r.stdout, tc.wantStdout) {
					t.Fatalf("got stdout %q, want it to contain %q", r.stdout, tc.wantStdout)
				}
				return
			}
			if r.stdout != tc.wantStdout || r.stderr != tc.wantStderr {
				t.Fatalf("got stdout %q stderr %q, want %q and %q", r.stdout, r.stderr, tc.wantStdout, tc.wantStderr)
			}
		})
	}

	t.Run("refusals before the upgrade", func(t *testing.T) {
		upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
		cases := []struct {
			name     string
			path     string
			header   http.Header
			protocol string
			wantCode int
			want     string
		}{
			{name: "no command", path: "/exec/default/web/app?stdout=true", header: upgrade, protocol: endpoint.ProtocolV5,
				wantCode: http.StatusBadRequest, want: "query parameter command is required"},
			{name: "no stream", path: "/exec/default/web/app?command=/hello", header: upgrade, protocol: endpoint.ProtocolV5,
				wantCode: http.StatusBadRequest, want: "at least one must be true"},
			{name: "no upgrade", path: "/exec/default/web/app?command=/hello&stdout=true",
				wantCode: http.StatusBadRequest, want: "exec needs a WebSocket upgrade"},
			{name: "unsupported subprotocol", path: "/exec/default/web/app?command=/hello&stdout=true", header: upgrade, protocol: "base64.channel.k8s.io",
				wantCode: http.StatusBadRequest, want: "none of the offered WebSocket subprotocols [base64.channel.k8s.io] is supported"},
			{name: "unknown container", path: "/exec/default/web/nope?command=/hello&stdout=true", header: upgrade, protocol: endpoint.ProtocolV5,
				wantCode: http.StatusNotFound, want: `container "nope" of pod default/web not found`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					req.Header[k] = v
				}
				if tc.protocol != "" {
					req.Header.Set("Sec-Websocket-Protocol", tc.protocol)
				}
				req.Header.Set("Authorization", "Bearer "+endpointtest.Token)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.wantCode {
					t.Fatalf("got %d %q, want %d", resp.StatusCode, body, tc.wantCode)
				}
				if msg := statusMessage(t, string(body), tc.wantCode); !strings.Contains(msg, tc.want) {
					t.Fatalf("got message %q, want it to contain %q", msg, tc.want)
				}
			})
		}
	})

	t.Run("v5 is preferred", func(t *testing.T) {
		d := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
			Subprotocols: []string{"base64.channel.k8s.io", endpoint.ProtocolV4, endpoint.ProtocolV5}}
		u := "wss" + strings.TrimPrefix(execURL(srv, "app", false, false, "/hello", "exit", "0"), "https")
		conn, resp, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + endpointtest.Token}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp.Body.Close()
		if got := conn.Subprotocol(); got != endpoint.ProtocolV5 {
			t.Fatalf("got subprotocol %q, want %q", got, endpoint.ProtocolV5)
		}
	})

	t.Run("client-go sees the API error of a refused upgrade", func(t *testing.T) {
		r := execute(t, srv, execURL(srv, "nope", false, false, "/hello"), v5, remotecommand.StreamOptions{})
		// The upgrade failure does not unwrap; its Cause is the API error.
		var uf *httpstream.UpgradeFailureError
		if !errors.As(r.err, &uf) || !apierrors.IsNotFound(uf.Cause) {
			t.Fatalf("got %v, want a NotFound API error inside the upgrade failure", r.err)
		}
	})
}

// recorder is the Docker runtime, noting the execs that start and end and
// the terminal sizes that reach it.
type recorder struct {
	runtime.Runtime
	started chan struct{} // a value per exec started
	ended   chan error    // the error of every exec that returned
	gotSize chan struct{} // closed at the first size

	mu    sync.Mutex
	sizes []runtime.TermSize
}

func newRecorder(rt runtime.Runtime) *recorder {
	return &recorder{Runtime: rt, started: make(chan struct{}, 10), ended: make(chan error, 10), gotSize: make(chan struct{})}
}

func (r *recorder) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	if in := opts.Resize; in != nil {
		out := make(chan runtime.TermSize)
		opts.Resize = out
		go r.forwardSizes(ctx, in, out)
	}
	r.started <- struct{}{}
	code, err := r.Runtime.Exec(ctx, id, opts)
	r.ended <- err
	return code, err
}

func (r *recorder) forwardSizes(ctx context.Context, in <-chan runtime.TermSize, out chan<- runtime.TermSize) {
	for {
		select {
		case sz := <-in:
			r.mu.Lock()
			r.sizes = append(r.sizes, sz)
			if len(r.sizes) == 1 {
				close(r.gotSize)
			}
			r.mu.Unlock()
			select {
			case out <- sz:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// syncBuffer is a bytes.Buffer that a test reads while a stream writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sizeQueue hands out terminal sizes, then says there are no more.
type sizeQueue struct {
	sizes chan *remotecommand.TerminalSize
}

func (q sizeQueue) Next() *remotecommand.TerminalSize { return <-q.sizes }

func TestExecTerminal(t *testing.T) {
	f := endpointtest.New(t)
	rec := newRecorder(f.Runtime)
	srv := serve(t, f, rec, endpointtest.Token)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})

	queue := sizeQueue{sizes: make(chan *remotecommand.TerminalSize, 1)}
	queue.sizes <- &remotecommand.TerminalSize{Width: 100, Height: 40}
	close(queue.sizes) // Next returns nil after the first size: no more resizes

	// cat runs until the terminal reads end-of-file (Ctrl-D). The test types
	// a line once the size has reached the runtime, and Ctrl-D once cat has
	// copied the line: Docker drops a TTY's last output when the command
	// exits right after writing it.
	var stdout syncBuffer
	stdinR, stdinW := io.Pipe()
	typed := make(chan string, 1)
	go func() {
		defer stdinW.Close()
		select {
		case <-rec.gotSize:
		case <-time.After(20 * time.Second):
			typed <- "the terminal size did not reach the runtime"
			return
		}
		if _, err := stdinW.Write([]byte("ping\n")); err != nil {
			typed <- err.Error()
			return
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stdout.String(), "ping\r\nping\r\n"); {
			if time.Now().After(deadline) {
				typed <- "cat did not copy the line"
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, err := stdinW.Write([]byte{4})
		if err != nil {
			typed <- err.Error()
			return
		}
		typed <- ""
	}()
	ex, err := remotecommand.NewWebSocketExecutor(srv.Config, http.MethodGet, execURL(srv, "app", true, true, "/hello", "cat"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout, Tty: true, TerminalSizeQueue: queue})
	if msg := <-typed; msg != "" {
		t.Fatalf("%s; stdout %q", msg, stdout.String())
	}
	if err != nil {
		t.Fatalf("got %v, want success; stdout %q", err, stdout.String())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.sizes) != 1 || rec.sizes[0] != (runtime.TermSize{Width: 100, Height: 40}) {
		t.Fatalf("got sizes %v at the runtime, want [{100 40}]", rec.sizes)
	}
	// The terminal echoes the line, then cat writes it, both with CRLF.
	if got := stdout.String(); !strings.HasPrefix(got, "ping\r\nping\r\n") {
		t.Fatalf("got stdout %q, want the echo and cat's copy", got)
	}
}

func TestExecClientGoesAway(t *testing.T) {
	f := endpointtest.New(t)
	rec := newRecorder(f.Runtime)
	srv := serve(t, f, rec, endpointtest.Token)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	ex, err := remotecommand.NewWebSocketExecutor(srv.Config, http.MethodGet, execURL(srv, "app", true, false, "/hello", "cat"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdinR, stdinW := io.Pipe() // never written: cat waits for ever
	defer stdinW.Close()
	streamed := make(chan error, 1)
	go func() {
		streamed <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: io.Discard, Stderr: io.Discard})
	}()
	select {
	case <-rec.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the exec did not start")
	}
	cancel()
	if err := <-streamed; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v from the client, want context.Canceled", err)
	}
	select {
	case err := <-rec.ended:
		if err == nil {
			t.Fatal("got a clean end of an exec whose client went away, want its context's error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the exec still runs after its client went away")
	}
}
