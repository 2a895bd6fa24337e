package endpoint

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/node/runtime"
)

// logOptions are the query parameters of Kubernetes' PodLogOptions that
// the endpoint reads; the container comes from the path.
type logOptions struct {
	follow, previous, timestamps bool
	tail                         int // lines from the end; -1: all
	since                        time.Time
	limitBytes                   int64 // 0: no limit
}

func readLogOptions(r *http.Request, now time.Time) (logOptions, error) {
	o := logOptions{tail: -1}
	var err error
	if o.follow, err = queryBool(r, "follow"); err != nil {
		return o, err
	}
	if o.previous, err = queryBool(r, "previous"); err != nil {
		return o, err
	}
	if o.timestamps, err = queryBool(r, "timestamps"); err != nil {
		return o, err
	}
	tail, ok, err := queryInt(r, "tailLines", 0)
	if err != nil {
		return o, err
	}
	if ok {
		o.tail = int(min(tail, int64(1<<31-1)))
	}
	secs, hasSeconds, err := queryInt(r, "sinceSeconds", 1)
	if err != nil {
		return o, err
	}
	if hasSeconds {
		o.since = now.Add(-time.Duration(min(secs, int64(time.Duration(1<<63-1)/time.Second))) * time.Second)
	}
	if v := r.URL.Query().Get("sinceTime"); v != "" {
		if hasSeconds {
			return o, errors.New("query parameters sinceSeconds and sinceTime: give at most one")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, errors.New("query parameter sinceTime=" + v + ": want an RFC 3339 time such as 2006-01-02T15:04:05Z")
		}
		o.since = t
	}
	if o.limitBytes, _, err = queryInt(r, "limitBytes", 1); err != nil {
		return o, err
	}
	return o, nil
}

// serveLogs streams a container's output as plain text. When following it
// flushes every chunk as the engine delivers it, and ends when the
// container's log ends (it stopped) or the caller goes away.
func (s *server) serveLogs(w http.ResponseWriter, r *http.Request) {
	t := targetOf(r)
	o, err := readLogOptions(r, time.Now())
	if err != nil {
		badRequest(w, "%s", err.Error())
		return
	}
	id, ok := s.resolve(w, r, t, o.previous)
	if !ok {
		return
	}
	ctx := r.Context()
	rc, err := s.cfg.Runtime.Logs(ctx, id, runtime.LogOptions{Follow: o.follow, Tail: o.tail, Timestamps: o.timestamps, Since: o.since})
	if err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			// Removed between Resolve and Logs.
			notFound(w, t, o.previous)
			return
		}
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "reading the logs of "+t.String()+": "+err.Error())
		return
	}
	defer rc.Close()
	var src io.Reader = rc
	if o.limitBytes > 0 {
		src = io.LimitReader(rc, o.limitBytes)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := io.Writer(w)
	if o.follow {
		fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
		// The headers go now, so the caller knows the stream is open even
		// while the container is quiet.
		if err := fw.flush(); err != nil {
			s.logStreamError(ctx, t, err)
			return
		}
		out = fw
	}
	if _, err := io.Copy(out, src); err != nil {
		s.logStreamError(ctx, t, err)
	}
}

// logStreamError records a log stream that broke after its headers went
// out, when it is not simply the caller hanging up.
func (s *server) logStreamError(ctx context.Context, t target, err error) {
	if ctx.Err() != nil {
		return
	}
	s.log.Warn("container log stream failed", "ns", t.namespace, "pod", t.pod, "container", t.container, "err", err)
}

// flushWriter sends every write to the caller at once, for followed logs.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.flush()
}

// flush pushes buffered output; a writer that cannot flush (some test
// recorders) writes through anyway, which is as good.
func (f *flushWriter) flush() error {
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
