package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm is the Raft state machine. Each applied batch takes the state's write
// lock once, applies the entries in order, publishes their events, and then
// writes what changed to the state database (if any) in one transaction.
//
// Apply is deterministic: the result depends only on the state and the entry.
// Everything random or time-dependent (request IDs, object UIDs, timestamps)
// is decided before proposing; the only clock read is the entry's AppendedAt,
// which the leader stored in the log.
type fsm struct {
	s   *state
	db  *persister // nil for an in-memory store
	log *slog.Logger
	ch  changes

	// applied counts applied command entries; tests use it to prove that a
	// restart applies no entry twice.
	applied atomic.Int64
}

// commandFunc applies one command entry's payload. It is called with the
// state's write lock held.
type commandFunc func(f *fsm, l *raft.Log, payload []byte) (any, []*Event)

// commands dispatches log commands by their type byte.
var commands = map[byte]commandFunc{
	cmdTxn: applyTxnCommand,
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	f.ch.reset()
	var evs []*Event
	var last int64
	f.s.mu.Lock()
	for i, l := range logs {
		idx := int64(l.Index)
		if idx <= f.s.rev {
			// Already in the state database: a replay after a restart.
			continue
		}
		last = idx
		if l.Type != raft.LogCommand {
			continue
		}
		var e []*Event
		out[i], e = f.applyCommand(l)
		evs = append(evs, e...)
		f.applied.Add(1)
	}
	if last > 0 {
		f.s.publishLocked(last, evs)
	}
	f.s.mu.Unlock()
	if last > 0 && f.db != nil {
		f.db.add(last, &f.ch)
	}
	return out
}

func (f *fsm) applyCommand(l *raft.Log) (any, []*Event) {
	if len(l.Data) == 0 {
		return txnOutcome{Err: fmt.Errorf("raftstore: empty command at index %d", l.Index)}, nil
	}
	fn := commands[l.Data[0]]
	if fn == nil {
		// Every replica rejects the same entry the same way, so they stay equal.
		return txnOutcome{Err: fmt.Errorf("raftstore: unknown command type %d at index %d (written by a newer version?)", l.Data[0], l.Index)}, nil
	}
	return fn(f, l, l.Data[1:])
}

func applyTxnCommand(f *fsm, l *raft.Log, payload []byte) (any, []*Event) {
	id, txn, err := decodeTxn(bytes.Clone(payload))
	if err != nil {
		return txnOutcome{Err: fmt.Errorf("raftstore: decode entry %d: %w", l.Index, err)}, nil
	}
	if e, ok := f.s.dedupe.byID[id]; ok {
		return txnOutcome{Result: e.result}, nil
	}
	rev := int64(l.Index)
	res, evs := f.s.applyTxnLocked(rev, txn, &f.ch)
	f.s.dedupe.add(&dedupeEntry{id: id, rev: rev, appendedAt: l.AppendedAt.UnixNano(), result: res}, &f.ch)
	return txnOutcome{Result: res}, evs
}

// snapshot captures the state in O(1): the tree is cloned copy-on-write.
func (f *fsm) snapshot() *snapshotData {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return &snapshotData{tree: f.s.tree.Clone(), rev: f.s.rev, dedupe: slices.Clone(f.s.dedupe.order)}
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{data: f.snapshot()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	snap, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	return f.install(snap)
}

func (f *fsm) install(snap *snapshotData) error {
	dd := snap.dedupeTable()
	if f.db != nil {
		if err := f.db.replace(snap, dd); err != nil {
			return err
		}
	}
	f.s.mu.Lock()
	f.s.replaceLocked(snap.tree, snap.rev, dd)
	f.s.mu.Unlock()
	f.log.Info("state restored from snapshot", "rev", snap.rev, "keys", snap.tree.Len())
	return nil
}

type fsmSnapshot struct{ data *snapshotData }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.data); err != nil {
		_ = sink.Cancel() // the write error is the one worth reporting
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
