package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

// eventView is what every watcher of one store event shares: the objects as
// wire JSON and their selectable projections, each computed once.
type eventView struct {
	ev *raftstore.Event

	// open turns stored values into plaintext (Secrets are sealed at
	// rest). The event's values are opened only when a watcher needs
	// them: a put's previous value may be sealed with a key a rotation
	// has retired since, and a plain watch never needs it.
	open     func(ctx context.Context, kv *raftstore.KeyValue) (*raftstore.KeyValue, error)
	curOnce  sync.Once
	cur      []byte
	curErr   error
	prevOnce sync.Once
	prev     []byte
	prevErr  error

	objOnce sync.Once
	obj     []byte // the new object, for puts
	oldOnce sync.Once
	old     []byte // the previous object at the event's revision
	selOnce sync.Once
	sel     *selectable
	oldSel  *selectable
	selErr  error
}

func (s *Server) viewOf(ev *raftstore.Event) *eventView {
	return ev.Memo(func(e *raftstore.Event) any { return &eventView{ev: e, open: s.plain} }).(*eventView)
}

// openShared opens a value for every watcher of the event. It runs under
// no watcher's context, since the result is shared by all of them; the
// value is already on this replica, so it does not wait for the store.
func (v *eventView) openShared(kv *raftstore.KeyValue) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := v.open(ctx, kv)
	if err != nil {
		return nil, err
	}
	return out.Value, nil
}

// current is the new value of a put, opened.
func (v *eventView) current() ([]byte, error) {
	v.curOnce.Do(func() { v.cur, v.curErr = v.openShared(v.ev.Kv) })
	return v.cur, v.curErr
}

// previous is the value before the event, opened.
func (v *eventView) previous() ([]byte, error) {
	v.prevOnce.Do(func() { v.prev, v.prevErr = v.openShared(v.ev.Prev) })
	return v.prev, v.prevErr
}

func (v *eventView) object() ([]byte, error) {
	cur, err := v.current()
	if err != nil {
		return nil, err
	}
	v.objOnce.Do(func() { v.obj = withRV(cur, v.ev.Kv.ModRevision) })
	return v.obj, nil
}

// oldObject is the previous object stamped with the event's revision: what
// a DELETED event carries, as in Kubernetes.
func (v *eventView) oldObject() ([]byte, error) {
	prev, err := v.previous()
	if err != nil {
		return nil, err
	}
	v.oldOnce.Do(func() { v.old = withRV(prev, v.ev.Kv.ModRevision) })
	return v.old, nil
}

// selectables are the projections filters match. When a put's previous
// value is sealed with a retired key (the rewrite of a key rotation), it
// is taken to match as the new value does: rotation changes no field a
// filter reads.
func (v *eventView) selectables() (*selectable, *selectable, error) {
	v.selOnce.Do(func() {
		put := v.ev.Type == raftstore.EventPut
		if put {
			cur, err := v.current()
			if err != nil {
				v.selErr = err
				return
			}
			v.sel, _ = decodeSelectable(cur) // stored values always decode; a nil result matches nothing
		}
		if v.ev.Prev != nil {
			prev, err := v.previous()
			switch {
			case err == nil:
				v.oldSel, _ = decodeSelectable(prev)
			case put && errors.Is(err, encryption.ErrUnknownKey):
				v.oldSel = v.sel
			default:
				v.selErr = err
			}
		}
	})
	return v.sel, v.oldSel, v.selErr
}

// frame decides what a watcher with filter f sees of the event. An object
// that stops matching is DELETED for that watcher, one that starts matching
// is ADDED. An event whose values cannot be opened (sealed with a retired
// key) is an error: the watcher must list again.
func (v *eventView) frame(f *filter) (string, []byte, bool, error) {
	put := v.ev.Type == raftstore.EventPut
	var cur, was bool
	if f.empty() {
		cur, was = put, v.ev.Prev != nil
	} else {
		sel, oldSel, err := v.selectables()
		if err != nil {
			return "", nil, false, err
		}
		cur = put && sel != nil && f.matches(sel)
		was = oldSel != nil && f.matches(oldSel)
	}
	var typ string
	switch {
	case cur && !was:
		typ = "ADDED"
	case cur && was:
		typ = "MODIFIED"
	case was:
		obj, err := v.oldObject()
		return "DELETED", obj, err == nil, err
	default:
		return "", nil, false, nil
	}
	obj, err := v.object()
	return typ, obj, err == nil, err
}

// writeErrorEvent ends a watch stream with err as an ERROR event.
func writeErrorEvent(w *bufio.Writer, err error) {
	st := toStatus(storeError(err))
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	b, _ := json.Marshal(st) // a Status always encodes
	writeEvent(w, "ERROR", b)
}

func writeEvent(w *bufio.Writer, typ string, obj []byte) {
	w.WriteString(`{"type":"`)
	w.WriteString(typ)
	w.WriteString(`","object":`)
	w.Write(obj)
	w.WriteString("}\n")
}

func bookmark(res *resource, rev int64, initialEnd bool) []byte {
	b := []byte(`{"kind":"` + res.kind + `","apiVersion":"` + res.apiVersion() + `","metadata":{"resourceVersion":"` + strconv.FormatInt(rev, 10) + `"`)
	if initialEnd {
		b = append(b, `,"annotations":{"`+metav1.InitialEventsAnnotationKey+`":"true"}`...)
	}
	return append(b, "}}"...)
}

func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	res := ri.resource
	if ri.name != "" {
		// A watch on one object's path watches that name.
		q := r.URL.Query()
		fs := "metadata.name=" + ri.name
		if v := q.Get("fieldSelector"); v != "" {
			fs += "," + v
		}
		q.Set("fieldSelector", fs)
		r.URL.RawQuery = q.Encode()
		ri.name = ""
	}
	p, err := parseListParams(r, res)
	if err != nil {
		writeError(w, err)
		return
	}
	sendInitial := p.sendInitial != nil && *p.sendInitial
	if sendInitial {
		if p.rvMatch != string(metav1.ResourceVersionMatchNotOlderThan) {
			writeError(w, badRequest("sendInitialEvents requires resourceVersionMatch=NotOlderThan"))
			return
		}
		if !p.bookmarks {
			writeError(w, badRequest("sendInitialEvents requires allowWatchBookmarks=true"))
			return
		}
	} else if p.rvMatch != "" {
		writeError(w, badRequest("resourceVersionMatch is forbidden for watch unless sendInitialEvents is set"))
		return
	}
	ctx := r.Context()
	if p.hasTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}

	// Where the stream starts, and whether it begins with the current state
	// as ADDED events: with sendInitialEvents, and (as Kubernetes always
	// did) for a watch without a resourceVersion or at "0".
	legacyInitial := p.sendInitial == nil && (p.rv == "" || p.rv == "0")
	var initial [][]byte
	var start int64
	switch {
	case sendInitial || legacyInitial:
		lp := *p
		lp.limit, lp.cont, lp.rvMatch = 0, "", ""
		items, rev, _, err := s.listItems(ctx, ri, &lp)
		if err != nil {
			writeError(w, storeError(err))
			return
		}
		initial, start = items, rev
	case p.rv == "" || p.rv == "0":
		ro, _ := readOptions(p.rv) // "" and "0" always parse
		if err := s.store.Sync(ctx, ro); err != nil {
			writeError(w, storeError(err))
			return
		}
		start = s.store.Revision()
	default:
		start = p.resourceVersion
	}
	watcher, err := s.store.Watch(ctx, res.prefix(ri.namespace), start)
	if err != nil {
		writeError(w, storeError(err))
		return
	}

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute)) // unsupported writers just have no deadline
		if bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, it := range initial {
		writeEvent(bw, "ADDED", it)
	}
	if sendInitial {
		writeEvent(bw, "BOOKMARK", bookmark(res, start, true))
	}
	if !flush() {
		return
	}
	var tick <-chan time.Time
	if p.bookmarks {
		t := time.NewTicker(s.cfg.BookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		evs, err := watcher.NextOrWake(ctx, tick)
		if err != nil {
			if errors.Is(err, raftstore.ErrCompacted) || errors.Is(err, raftstore.ErrClosed) {
				writeErrorEvent(bw, err)
				flush()
			}
			return
		}
		if evs == nil {
			writeEvent(bw, "BOOKMARK", bookmark(res, watcher.Revision(), false))
		}
		for _, ev := range evs {
			typ, obj, ok, err := s.viewOf(ev).frame(p.filter)
			if err != nil {
				s.log.Warn("watch event cannot be served", "key", ev.Kv.Key, "rev", ev.Revision(), "err", err)
				writeErrorEvent(bw, err)
				flush()
				return
			}
			if ok {
				writeEvent(bw, typ, obj)
			}
		}
		if !flush() {
			return
		}
	}
}
