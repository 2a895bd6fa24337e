package raftstore

import (
	"context"
	"errors"
	"sync"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrCompacted means the requested revision is older than the history
	// window this replica still holds; the caller must list again.
	ErrCompacted = errors.New("raftstore: revision compacted")
	// ErrFutureRevision means the replica did not reach the requested
	// revision before the context ended.
	ErrFutureRevision = errors.New("raftstore: revision not reached yet")
	// ErrNoLeader means no leader could be reached before the context ended.
	ErrNoLeader = errors.New("raftstore: no leader")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("raftstore: closed")
	// ErrNotLeader is returned by leader-only operations called elsewhere
	// when they cannot be forwarded.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrValueTooLarge means a value is larger than MaxValueSize.
	ErrValueTooLarge = errors.New("raftstore: value too large")
	// ErrBadSnapshot means a snapshot could not be decoded or failed its checksum.
	ErrBadSnapshot = errors.New("raftstore: bad snapshot")
)

// MaxValueSize bounds one value, so one write cannot stall replication.
const MaxValueSize = 4 << 20

// KeyValue is one key at one revision. Stores never modify a KeyValue after
// handing it out: readers may keep it.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision that created the key.
	CreateRevision int64
	// ModRevision is the revision of the last write to the key.
	ModRevision int64
	// Version counts writes since the key was created (1 after the create).
	Version int64
}

// EventType says what happened to a key.
type EventType uint8

// Event types.
const (
	EventPut    EventType = 1
	EventDelete EventType = 2
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change in the ordered history. For a delete, Kv holds the key
// and the deletion revision and no value. Prev is the key's state before the
// change, or nil when the key did not exist.
type Event struct {
	Type EventType
	Kv   *KeyValue
	Prev *KeyValue

	memoOnce sync.Once
	memo     any
}

// Revision is the revision of the write that produced the event.
func (e *Event) Revision() int64 { return e.Kv.ModRevision }

// Memo returns fn(e), computed once per event and shared by every caller.
// Events are shared by all watchers of a replica, so work derived from one
// (decoding, encoding a wire frame) is done once, not once per watcher.
func (e *Event) Memo(fn func(*Event) any) any {
	e.memoOnce.Do(func() { e.memo = fn(e) })
	return e.memo
}

// CompareTarget values for Compare.ModRevision with a special meaning.
const (
	// Absent requires that the key does not exist.
	Absent int64 = 0
	// Present requires that the key exists, at any revision.
	Present int64 = -1
)

// Compare is one precondition of a transaction: the key's ModRevision must
// equal ModRevision, or the key must be Absent or Present.
type Compare struct {
	Key         string
	ModRevision int64
}

// OpType is the kind of a write.
type OpType uint8

// Operation types.
const (
	OpPut    OpType = 1
	OpDelete OpType = 2
)

// Op is one write of a transaction. Deleting a missing key is a no-op.
type Op struct {
	Type  OpType
	Key   string
	Value []byte
}

// Txn is an atomic compare-and-write: when every Compare holds, all Ops are
// applied at one new revision; otherwise nothing is written.
type Txn struct {
	Compares []Compare
	Ops      []Op
}

// TxnResult tells how a transaction ended.
type TxnResult struct {
	Succeeded bool
	// Revision is the revision of the write when Succeeded, else the store
	// revision at which the compare failed.
	Revision int64
	// FailedCompare is the index of the first compare that failed, or -1.
	FailedCompare int
}

// ReadOptions say how fresh a read must be.
type ReadOptions struct {
	// Linearizable reads reflect every write acknowledged before the read
	// began, on any server: a follower first learns the leader's revision.
	Linearizable bool
	// MinRevision, when set, makes the read wait until the local replica has
	// reached at least this revision.
	MinRevision int64
}

// ListOptions select a range of keys.
type ListOptions struct {
	ReadOptions
	// Revision, when set, lists the keys as they were at that revision. It
	// must lie within the history window, else ErrCompacted.
	Revision int64
	// StartKey, when set, skips keys that sort before it.
	StartKey string
	// Limit, when positive, returns at most Limit keys; the caller continues
	// from the key after the last one at the same Revision.
	Limit int
}

// Store is the revisioned key-value store. *Node implements it over Raft;
// OpenMemory gives a single-replica one for tests.
type Store interface {
	Get(ctx context.Context, key string, opts ReadOptions) (*KeyValue, int64, error)
	// List returns the keys under prefix in key order, the revision they were
	// read at, and whether more keys follow a Limit.
	List(ctx context.Context, prefix string, opts ListOptions) ([]*KeyValue, int64, bool, error)
	Txn(ctx context.Context, txn *Txn) (TxnResult, error)
	Watch(ctx context.Context, prefix string, afterRevision int64) (*Watcher, error)
	// Sync waits until the local replica is as fresh as opts ask.
	Sync(ctx context.Context, opts ReadOptions) error
	Revision() int64
}
