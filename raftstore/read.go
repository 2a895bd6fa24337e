package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// leaderBarrier makes sure a new leader has applied every entry committed
// by earlier leaders before it answers read-index requests.
func (n *Node) leaderBarrier() error {
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	n.barrierMu.Lock()
	defer n.barrierMu.Unlock()
	if n.barrierTerm.Load() == term {
		return nil
	}
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		return err
	}
	n.barrierTerm.Store(term)
	return nil
}

// leaderReadIndex returns a revision that covers every write acknowledged
// before the call, after confirming with a quorum that this node still leads.
// callerRev is the asking replica's revision: when it is behind, followers
// are nudged so it need not wait for the next CommitTimeout.
func (n *Node) leaderReadIndex(ctx context.Context, callerRev int64) (int64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := n.leaderBarrier(); err != nil {
		return 0, err
	}
	rev := n.state.revision()
	if _, err := n.verify.do(ctx); err != nil {
		return 0, err
	}
	if callerRev < rev {
		n.nudgeFollowers()
	}
	return rev, nil
}

func (n *Node) fetchReadIndex(ctx context.Context) (int64, error) {
	var rev int64
	err := n.withLeader(ctx, func(self bool, addr string) error {
		if self {
			r, err := n.leaderReadIndex(ctx, math.MaxInt64)
			rev = r
			return err
		}
		b, err := n.rpc.call(ctx, addr, rpcReadIndex, binary.AppendVarint(nil, n.state.revision()))
		if err != nil {
			return err
		}
		r, k := binary.Varint(b)
		if k <= 0 {
			return errors.New("raftstore: bad read-index reply")
		}
		rev = r
		return nil
	})
	return rev, err
}

// Sync waits until the local replica is as fresh as opts ask.
func (n *Node) Sync(ctx context.Context, opts ReadOptions) error {
	min := opts.MinRevision
	if opts.Linearizable {
		rev, err := n.readIdx.do(ctx)
		if err != nil {
			return err
		}
		if rev > min {
			min = rev
		}
	}
	if min > 0 {
		return n.state.waitRevision(ctx, min)
	}
	return nil
}

// Get returns the key's current value (nil when absent) and the revision
// of the replica it was read from.
func (n *Node) Get(ctx context.Context, key string, opts ReadOptions) (*KeyValue, int64, error) {
	if err := n.Sync(ctx, opts); err != nil {
		return nil, 0, err
	}
	kv, rev := n.state.get(key)
	return kv, rev, nil
}

// List returns the keys under prefix; see ListOptions.
func (n *Node) List(ctx context.Context, prefix string, opts ListOptions) ([]*KeyValue, int64, bool, error) {
	ro := opts.ReadOptions
	if opts.Revision > ro.MinRevision {
		ro.MinRevision = opts.Revision
	}
	if err := n.Sync(ctx, ro); err != nil {
		return nil, 0, false, err
	}
	return n.state.list(prefix, opts)
}

// Watch returns a watcher of the events under prefix after afterRevision.
func (n *Node) Watch(_ context.Context, prefix string, afterRevision int64) (*Watcher, error) {
	return n.state.watch(prefix, afterRevision)
}

// Compact drops the local watch history at or below rev.
func (n *Node) Compact(rev int64) { n.state.compact(rev) }

// CompactRevision returns the oldest revision a watch may start after.
func (n *Node) CompactRevision() int64 {
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	return n.state.hist.compactRev
}

// coalescer runs fn for many concurrent callers at once. A caller is served
// by a round that starts after it arrived, never by one already running, so
// a read index obtained this way is as fresh as the caller needs.
type coalescer struct {
	fn func(context.Context) (int64, error)

	mu      sync.Mutex
	next    *round
	running bool
}

type round struct {
	done chan struct{}
	rev  int64
	err  error
}

func (c *coalescer) do(ctx context.Context) (int64, error) {
	c.mu.Lock()
	if c.next == nil {
		c.next = &round{done: make(chan struct{})}
	}
	r := c.next
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.rev, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *coalescer) loop() {
	for {
		c.mu.Lock()
		r := c.next
		if r == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.next = nil
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.rev, r.err = c.fn(ctx)
		cancel()
		close(r.done)
	}
}
