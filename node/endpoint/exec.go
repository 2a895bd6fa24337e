package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/node/runtime"
)

// The WebSocket subprotocols of Kubernetes' remote command streams that
// the endpoint speaks, preferred first. Both carry binary messages whose
// first byte names a channel; v5 adds the close signal, which is how a
// client says its stdin has ended.
const (
	ProtocolV5 = "v5.channel.k8s.io"
	ProtocolV4 = "v4.channel.k8s.io"
)

// Channels: the first byte of every binary message.
const (
	channelStdin  byte = 0
	channelStdout byte = 1
	channelStderr byte = 2
	channelError  byte = 3   // one metav1.Status as JSON, then the end
	channelResize byte = 4   // {"Width":W,"Height":H}, one after the other
	channelClose  byte = 255 // v5: the next byte is a channel the client closed
)

// Status reason and cause type of a command that exited non-zero, as
// client-go reads them to return exec.CodeExitError.
const (
	reasonNonZeroExitCode metav1.StatusReason = "NonZeroExitCode"
	causeExitCode         metav1.CauseType    = "ExitCode"
)

const (
	// writeTimeout bounds one message write, so a client that stopped
	// reading does not hold the command's output forever.
	writeTimeout = time.Minute
	// closeTimeout is how long the endpoint waits for the client to answer
	// its close message before dropping the connection.
	closeTimeout = 5 * time.Second
)

// errExecEnded stops the delivery of stdin and resizes once the command
// has exited.
var errExecEnded = errors.New("endpoint: the command has exited")

// execOptions are the query parameters of Kubernetes' PodExecOptions; the
// container comes from the path.
type execOptions struct {
	command                    []string
	stdin, stdout, stderr, tty bool
}

func readExecOptions(r *http.Request) (execOptions, error) {
	o := execOptions{command: r.URL.Query()["command"]}
	if len(o.command) == 0 || o.command[0] == "" {
		return o, errors.New("query parameter command is required: the program, then each argument, as repeated command=... parameters")
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"stdin", &o.stdin}, {"stdout", &o.stdout}, {"stderr", &o.stderr}, {"tty", &o.tty}} {
		v, err := queryBool(r, f.name)
		if err != nil {
			return o, err
		}
		*f.dst = v
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("query parameters stdin, stdout and stderr: at least one must be true")
	}
	// A terminal has one output: with a TTY the command's stderr arrives on
	// stdout, as client-go expects (it opens no stderr stream then).
	if o.tty {
		o.stderr = false
	}
	return o, nil
}

// negotiate picks the subprotocol by the endpoint's preference, whatever
// the order the client listed them in.
func negotiate(r *http.Request) string {
	offered := websocket.Subprotocols(r)
	for _, want := range []string{ProtocolV5, ProtocolV4} {
		for _, p := range offered {
			if p == want {
				return want
			}
		}
	}
	return ""
}

// serveExec runs a command in a container over a WebSocket. Everything
// that can be refused is refused before the upgrade, as a plain HTTP
// status the caller can read.
func (s *server) serveExec(w http.ResponseWriter, r *http.Request) {
	t := targetOf(r)
	o, err := readExecOptions(r)
	if err != nil {
		badRequest(w, "%s", err.Error())
		return
	}
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) {
		badRequest(w, "exec needs a WebSocket upgrade (GET with subprotocol %s or %s); SPDY is not supported", ProtocolV5, ProtocolV4)
		return
	}
	proto := negotiate(r)
	if proto == "" {
		badRequest(w, "none of the offered WebSocket subprotocols [%s] is supported; want %s or %s",
			strings.Join(websocket.Subprotocols(r), ", "), ProtocolV5, ProtocolV4)
		return
	}
	id, ok := s.resolve(w, r, t, false)
	if !ok {
		return
	}
	// Said now, in pod terms, rather than as the engine's error after the
	// upgrade. A container that stops after this check fails the command
	// with the engine's error on the error channel.
	c, err := s.cfg.Runtime.InspectContainer(r.Context(), id)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		notFound(w, t, false)
		return
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "inspecting "+t.String()+": "+err.Error())
		return
	case c.State != runtime.StateRunning:
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("%s is not running (%s)", t, c.State))
		return
	}
	up := websocket.Upgrader{
		// Browsers cannot attach a bearer token to a WebSocket, so a
		// cross-site page could not authenticate anyway; the API server
		// proxying here sets whatever Origin its client sent.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	conn, err := up.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {proto}})
	if err != nil {
		// Upgrade has answered the caller with the reason.
		s.log.Warn("exec: WebSocket upgrade failed", "ns", t.namespace, "pod", t.pod, "container", t.container, "err", err)
		return
	}
	defer conn.Close()
	sess := &execSession{conn: conn, closeSignal: proto == ProtocolV5, log: s.log}
	code, err := sess.run(r.Context(), s.cfg.Runtime, id, o)
	s.log.Info("exec finished", "ns", t.namespace, "pod", t.pod, "container", t.container, "command", o.command[0], "protocol", proto, "exit", code, "err", err)
}

// execSession is one command's WebSocket: the channels in and out of it.
type execSession struct {
	conn        *websocket.Conn
	closeSignal bool // v5: the client closes stdin with channelClose
	log         *slog.Logger

	writeMu sync.Mutex // one message writer at a time, as gorilla requires
}

// run runs the command until it exits or the client goes away, then sends
// its outcome on the error channel and closes the connection. It returns
// the exit code and the error of the run, for the log.
func (e *execSession) run(ctx context.Context, rt runtime.Runtime, id string, o execOptions) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	opts := runtime.ExecOptions{Cmd: o.command, TTY: o.tty}
	ended := make(chan struct{}) // closed when the command has exited
	var (
		stdinR        *io.PipeReader
		stdin, resize *io.PipeWriter
	)
	if o.stdin {
		stdinR, stdin = io.Pipe()
		opts.Stdin = stdinR
	}
	if o.tty {
		var r *io.PipeReader
		r, resize = io.Pipe()
		sizes := make(chan runtime.TermSize)
		go e.decodeResizes(r, sizes, ended)
		opts.Resize = sizes
	}
	if o.stdout {
		opts.Stdout = channelWriter{e, channelStdout}
	}
	if o.stderr {
		opts.Stderr = channelWriter{e, channelStderr}
	}

	readDone := make(chan error, 1)
	go func() {
		err := e.readLoop(stdin, resize)
		// The client is gone or has closed: the command loses its stdin
		// and, if it still runs, its session.
		if stdin != nil {
			stdin.Close()
		}
		if resize != nil {
			resize.Close()
		}
		cancel()
		readDone <- err
	}()

	code, err := rt.Exec(ctx, id, opts)
	// Stdin the command did not read, and late resizes, go nowhere; the
	// read loop must not wait for readers that are gone.
	close(ended)
	if stdinR != nil {
		stdinR.CloseWithError(errExecEnded)
	}
	if ctx.Err() == nil {
		if werr := e.writeStatus(exitStatus(code, err)); werr != nil {
			e.log.Warn("exec: the outcome could not be sent", "exit", code, "err", werr)
		} else {
			_ = e.conn.WriteControl(websocket.CloseMessage, // a failed close is the same as a dropped one
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
		}
	}
	// Wait for the client's close, so it reads the status before the
	// connection drops; give up on clients that never answer.
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-readDone:
	case <-timer.C:
	}
	return code, err
}

// exitStatus is the message of the error channel: Success, the exit code
// of a command that failed, or why it could not run.
func exitStatus(code int, err error) metav1.Status {
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		return failure(http.StatusNotFound, metav1.StatusReasonNotFound, err.Error())
	case err != nil:
		return failure(http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case code != 0:
		st := failure(http.StatusInternalServerError, reasonNonZeroExitCode, fmt.Sprintf("command terminated with non-zero exit code %d", code))
		st.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: causeExitCode, Message: strconv.Itoa(code)}}}
		return st
	}
	return metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess}
}

func (e *execSession) writeStatus(st metav1.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("endpoint: encode exec status: %w", err)
	}
	return e.write(channelError, b)
}

// write sends one message on a channel.
func (e *execSession) write(ch byte, p []byte) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	w, err := e.conn.NextWriter(websocket.BinaryMessage)
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

// channelWriter is the command's stdout or stderr, or a forwarded port's
// data: a message per write.
type channelWriter struct {
	e  interface{ write(ch byte, p []byte) error }
	ch byte
}

func (c channelWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.e.write(c.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readLoop delivers the client's messages: stdin data, terminal sizes and
// (v5) the close signal. It also keeps the connection alive, since gorilla
// answers pings while a reader waits. It returns when the connection
// closes. A channel whose consumer has stopped is dropped.
func (e *execSession) readLoop(stdin, resize *io.PipeWriter) error {
	var head [2]byte
	for {
		typ, r, err := e.conn.NextReader()
		if err != nil {
			return err
		}
		if typ != websocket.BinaryMessage {
			continue // text messages belong to the base64 protocols, not offered
		}
		if _, err := io.ReadFull(r, head[:1]); err != nil {
			continue // an empty message says nothing
		}
		switch head[0] {
		case channelStdin:
			if stdin != nil {
				if _, err := io.Copy(stdin, r); err != nil {
					stdin = nil
				}
			}
		case channelResize:
			if resize != nil {
				if _, err := io.Copy(resize, r); err != nil {
					resize = nil
				}
			}
		case channelClose:
			if !e.closeSignal {
				continue
			}
			if _, err := io.ReadFull(r, head[1:2]); err != nil {
				continue
			}
			switch head[1] {
			case channelStdin:
				if stdin != nil {
					stdin.Close()
					stdin = nil
				}
			case channelResize:
				if resize != nil {
					resize.Close()
					resize = nil
				}
			}
		}
	}
}

// decodeResizes turns the resize channel's JSON stream into terminal
// sizes for the runtime until the command has ended. A client sending
// garbage loses resizing, not its session.
func (e *execSession) decodeResizes(r *io.PipeReader, sizes chan<- runtime.TermSize, ended <-chan struct{}) {
	defer r.CloseWithError(errExecEnded)
	dec := json.NewDecoder(r)
	for {
		var sz runtime.TermSize
		if err := dec.Decode(&sz); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, errExecEnded) && !errors.Is(err, io.ErrClosedPipe) {
				e.log.Warn("exec: bad terminal size; resizing stops", "err", err)
			}
			return
		}
		select {
		case sizes <- sz:
		case <-ended:
			return
		}
	}
}
