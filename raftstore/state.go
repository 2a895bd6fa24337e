package raftstore

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/btree"
)

// state is the replicated state machine's data: the latest value of every
// key, a bounded window of history, and the table of recent request IDs. It
// knows nothing of Raft or disks; the FSM drives it and persists what changed.
//
// Reads and watches take the read lock; the FSM takes the write lock once per
// applied batch.
type state struct {
	mu     sync.RWMutex
	tree   *btree.BTreeG[*KeyValue]
	rev    int64 // revision of the last applied entry
	hist   history
	dedupe dedupeTable
	notify chan struct{} // closed and replaced whenever rev moves
	closed bool

	maxEvents int
	maxBytes  int64
}

func lessKV(a, b *KeyValue) bool { return a.Key < b.Key }

func newState(maxEvents int, maxBytes int64) *state {
	return &state{
		tree:      btree.NewG[*KeyValue](32, lessKV),
		notify:    make(chan struct{}),
		dedupe:    newDedupeTable(),
		maxEvents: maxEvents,
		maxBytes:  maxBytes,
	}
}

// history is the ordered window of recent events, oldest first.
type history struct {
	events     []*Event
	head       int   // events[head:] are live
	bytes      int64 // sum of the live events' value sizes
	compactRev int64 // events at or below this revision are gone
}

func (h *history) live() []*Event { return h.events[h.head:] }

// after returns the index into live() of the first event with a revision
// greater than rev.
func (h *history) after(rev int64) int {
	live := h.live()
	return sort.Search(len(live), func(i int) bool { return live[i].Kv.ModRevision > rev })
}

func (h *history) append(evs []*Event) {
	for _, ev := range evs {
		h.bytes += int64(len(ev.Kv.Value))
	}
	h.events = append(h.events, evs...)
}

// dropThrough removes every event at or below rev.
func (h *history) dropThrough(rev int64) {
	if rev <= h.compactRev {
		return
	}
	for h.head < len(h.events) && h.events[h.head].Kv.ModRevision <= rev {
		h.bytes -= int64(len(h.events[h.head].Kv.Value))
		h.events[h.head] = nil
		h.head++
	}
	h.compactRev = rev
	if h.head > 1024 && h.head > len(h.events)/2 {
		h.events = append(make([]*Event, 0, 2*(len(h.events)-h.head)+16), h.events[h.head:]...)
		h.head = 0
	}
}

// trim drops whole revisions from the front until the window fits its limits.
func (h *history) trim(maxEvents int, maxBytes int64) {
	for len(h.events)-h.head > maxEvents || (h.bytes > maxBytes && len(h.events)-h.head > 1) {
		h.dropThrough(h.events[h.head].Kv.ModRevision)
	}
}

func (h *history) reset(rev int64) {
	h.events, h.head, h.bytes, h.compactRev = nil, 0, 0, rev
}

// changes accumulates what one applied batch must write to the state
// database, in order.
type changes struct {
	puts          []*KeyValue
	deletes       []string
	dedupeAdds    []*dedupeEntry
	dedupeDeletes []int64
}

func (c *changes) reset() {
	c.puts, c.deletes, c.dedupeAdds, c.dedupeDeletes = c.puts[:0], c.deletes[:0], c.dedupeAdds[:0], c.dedupeDeletes[:0]
}

func (s *state) getLocked(key string) *KeyValue {
	kv, _ := s.tree.Get(&KeyValue{Key: key})
	return kv
}

// applyTxnLocked applies t at revision rev and returns its result and the
// events it produced. The caller holds the write lock. Apply must be
// deterministic: it depends only on the state and the entry.
func (s *state) applyTxnLocked(rev int64, t *Txn, ch *changes) (TxnResult, []*Event) {
	for i, c := range t.Compares {
		cur := s.getLocked(c.Key)
		ok := false
		switch {
		case c.ModRevision == Absent:
			ok = cur == nil
		case c.ModRevision == Present:
			ok = cur != nil
		default:
			ok = cur != nil && cur.ModRevision == c.ModRevision
		}
		if !ok {
			return TxnResult{Revision: rev, FailedCompare: i}, nil
		}
	}
	var evs []*Event
	for _, op := range t.Ops {
		prev := s.getLocked(op.Key)
		switch op.Type {
		case OpPut:
			kv := &KeyValue{Key: op.Key, Value: op.Value, CreateRevision: rev, ModRevision: rev, Version: 1}
			if prev != nil {
				kv.CreateRevision = prev.CreateRevision
				kv.Version = prev.Version + 1
			}
			s.tree.ReplaceOrInsert(kv)
			ch.puts = append(ch.puts, kv)
			evs = append(evs, &Event{Type: EventPut, Kv: kv, Prev: prev})
		case OpDelete:
			if prev == nil {
				continue
			}
			s.tree.Delete(prev)
			ch.deletes = append(ch.deletes, op.Key)
			evs = append(evs, &Event{Type: EventDelete, Kv: &KeyValue{Key: op.Key, ModRevision: rev}, Prev: prev})
		}
	}
	return TxnResult{Succeeded: true, Revision: rev, FailedCompare: -1}, evs
}

// publishLocked makes a batch visible: it advances the revision, appends the
// events to the history and wakes every waiter. The caller holds the write lock.
func (s *state) publishLocked(rev int64, evs []*Event) {
	if rev > s.rev {
		s.rev = rev
	}
	if len(evs) > 0 {
		s.hist.append(evs)
		s.hist.trim(s.maxEvents, s.maxBytes)
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// replaceLocked installs a whole new state (restore from a snapshot). Watch
// history cannot span a restore, so it starts empty at the new revision and
// every watcher must start over.
func (s *state) replaceLocked(tree *btree.BTreeG[*KeyValue], rev int64, dedupe dedupeTable) {
	s.tree = tree
	s.rev = rev
	s.dedupe = dedupe
	s.hist.reset(rev)
	close(s.notify)
	s.notify = make(chan struct{})
}

func (s *state) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
	}
}

// Revision returns the revision of the last applied entry.
func (s *state) revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// waitRevision blocks until the state has reached rev.
func (s *state) waitRevision(ctx context.Context, rev int64) error {
	for {
		s.mu.RLock()
		cur, ch, closed := s.rev, s.notify, s.closed
		s.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrFutureRevision
		}
	}
}

func (s *state) get(key string) (*KeyValue, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(key), s.rev
}

// prefixEnd returns the smallest key greater than every key with the prefix,
// or "" when there is none.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// list returns the keys under prefix as of opts.Revision (0: now).
func (s *state) list(prefix string, opts ListOptions) ([]*KeyValue, int64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, false, ErrClosed
	}
	at := s.rev
	if opts.Revision > 0 && opts.Revision < s.rev {
		if opts.Revision < s.hist.compactRev {
			return nil, 0, false, ErrCompacted
		}
		at = opts.Revision
	}
	start := prefix
	if opts.StartKey > start {
		start = opts.StartKey
	}
	end := prefixEnd(prefix)
	inRange := func(k string) bool { return k >= start && (end == "" || k < end) }

	// Keys written after the requested revision take their value from the
	// oldest such event's Prev; walking newest to oldest, the last write wins.
	var changed map[string]*KeyValue
	if at < s.rev {
		changed = map[string]*KeyValue{}
		live := s.hist.live()
		for i := len(live) - 1; i >= 0 && live[i].Kv.ModRevision > at; i-- {
			if k := live[i].Kv.Key; inRange(k) {
				changed[k] = live[i].Prev
			}
		}
	}
	var old []*KeyValue
	for _, kv := range changed {
		if kv != nil {
			old = append(old, kv)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Key < old[j].Key })

	var out []*KeyValue
	more := false
	add := func(kv *KeyValue) bool {
		if opts.Limit > 0 && len(out) == opts.Limit {
			more = true
			return false
		}
		out = append(out, kv)
		return true
	}
	iter := func(kv *KeyValue) bool {
		if end != "" && kv.Key >= end {
			return false
		}
		if changed != nil {
			if _, ok := changed[kv.Key]; ok {
				return true
			}
		}
		for len(old) > 0 && old[0].Key < kv.Key {
			if !add(old[0]) {
				return false
			}
			old = old[1:]
		}
		return add(kv)
	}
	s.tree.AscendGreaterOrEqual(&KeyValue{Key: start}, iter)
	for len(old) > 0 && !more {
		if !add(old[0]) {
			break
		}
		old = old[1:]
	}
	return out, at, more, nil
}

// compact drops history at or below rev.
func (s *state) compact(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.rev {
		rev = s.rev
	}
	s.hist.dropThrough(rev)
}

// dedupeEntry remembers the outcome of one proposal.
type dedupeEntry struct {
	id         requestID
	rev        int64
	appendedAt int64 // unix nanoseconds, from the leader's log entry
	result     TxnResult
}

// dedupeTable is the replicated table of recent request IDs. It is part of
// the state machine: every replica must prune it identically, so pruning
// depends only on log entries (their AppendedAt), never on local clocks.
type dedupeTable struct {
	byID  map[requestID]*dedupeEntry
	order []*dedupeEntry // by revision
}

func newDedupeTable() dedupeTable {
	return dedupeTable{byID: map[requestID]*dedupeEntry{}}
}

const (
	dedupeRetention = int64(120e9) // nanoseconds a request ID is remembered
	dedupeMax       = 100_000      // and at most this many
)

func (d *dedupeTable) add(e *dedupeEntry, ch *changes) {
	d.byID[e.id] = e
	d.order = append(d.order, e)
	ch.dedupeAdds = append(ch.dedupeAdds, e)
	n := 0
	for n < len(d.order) && (len(d.order)-n > dedupeMax || d.order[n].appendedAt < e.appendedAt-dedupeRetention) {
		old := d.order[n]
		delete(d.byID, old.id)
		ch.dedupeDeletes = append(ch.dedupeDeletes, old.rev)
		d.order[n] = nil
		n++
	}
	if n > 0 {
		d.order = d.order[n:]
	}
}

// Watcher delivers, in revision order, every event under a prefix after a
// revision. It reads the shared history window directly, so a watcher costs
// no memory per event; one that falls behind the window gets ErrCompacted.
type Watcher struct {
	s      *state
	prefix string
	after  int64
}

const maxWatchBatch = 512

// Revision returns the revision up to which events have been delivered.
func (w *Watcher) Revision() int64 { return w.after }

// Next blocks until events are available and returns them, oldest first.
// Events of one revision are never split across calls.
func (w *Watcher) Next(ctx context.Context) ([]*Event, error) {
	return w.NextOrWake(ctx, nil)
}

// NextOrWake is Next that also returns (nil, nil) when wake delivers, so a
// caller can do periodic work (bookmarks) without a timer per call.
func (w *Watcher) NextOrWake(ctx context.Context, wake <-chan time.Time) ([]*Event, error) {
	for {
		s := w.s
		s.mu.RLock()
		if w.after < s.hist.compactRev {
			s.mu.RUnlock()
			return nil, ErrCompacted
		}
		if s.closed {
			s.mu.RUnlock()
			return nil, ErrClosed
		}
		if s.rev > w.after {
			live := s.hist.live()
			var out []*Event
			i := s.hist.after(w.after)
			last := s.rev
			for ; i < len(live); i++ {
				ev := live[i]
				if len(out) >= maxWatchBatch && ev.Kv.ModRevision != out[len(out)-1].Kv.ModRevision {
					last = out[len(out)-1].Kv.ModRevision
					break
				}
				if len(ev.Kv.Key) >= len(w.prefix) && ev.Kv.Key[:len(w.prefix)] == w.prefix {
					out = append(out, ev)
				}
			}
			w.after = last
			s.mu.RUnlock()
			if len(out) > 0 {
				return out, nil
			}
			continue
		}
		ch := s.notify
		s.mu.RUnlock()
		select {
		case <-ch:
		case <-wake:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *state) watch(prefix string, after int64) (*Watcher, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if after < s.hist.compactRev {
		return nil, ErrCompacted
	}
	return &Watcher{s: s, prefix: prefix, after: after}, nil
}
