package raftstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// retriable reports whether an operation may be sent again, possibly to a
// new leader. Proposals are safe to repeat because they carry a request ID.
func retriable(err error) bool {
	var re *remoteError
	if errors.As(err, &re) {
		return re.status == rpcNotLeader || re.status == rpcRetry
	}
	return errors.Is(err, errConnBroken) ||
		errors.Is(err, raft.ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrAbortedByRestore) ||
		errors.Is(err, ErrNotLeader)
}

// withLeader runs fn against the current leader, retrying through leader
// changes until it succeeds, fails for good, or ctx ends.
func (n *Node) withLeader(ctx context.Context, fn func(self bool, addr string) error) error {
	backoff := 5 * time.Millisecond
	var last error
	for {
		if err := n.ctx.Err(); err != nil {
			return ErrClosed
		}
		changed := n.LeaderChanged()
		id, addr := n.Leader()
		if id != "" {
			err := fn(id == n.cfg.ID, addr)
			if err == nil || !retriable(err) {
				return err
			}
			last = err
		}
		select {
		case <-changed:
		case <-time.After(backoff):
		case <-ctx.Done():
			if last == nil {
				return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
			}
			return fmt.Errorf("%w: %v (last error: %v)", ErrNoLeader, ctx.Err(), last)
		case <-n.ctx.Done():
			return ErrClosed
		}
		if backoff < 100*time.Millisecond {
			backoff *= 2
		}
	}
}

func applyTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if t := time.Until(d); t > 0 {
			return t
		}
		return time.Millisecond
	}
	return 30 * time.Second
}

// nudgeFollowers makes followers learn the current commit index now rather
// than at the next CommitTimeout. Raft tells followers the commit index only
// in appends, and heartbeats carry none; a Barrier is an append that holds
// no data. A follower serving a linearizable read waits for its replica to
// reach the leader's revision, so for a follower that is behind this turns a
// wait of up to two CommitTimeouts into one round trip. A nudge costs an
// entry (and a disk write on every replica), so it happens only for a
// follower that asked and is behind; at most one runs and one more queues.
func (n *Node) nudgeFollowers() {
	select {
	case n.nudges <- struct{}{}:
	default:
	}
}

func (n *Node) nudgeLoop() {
	for {
		select {
		case <-n.nudges:
			if n.raft.State() == raft.Leader {
				_ = n.raft.Barrier(time.Second).Error() // best effort: leadership loss ends it, which is fine
			}
		case <-n.ctx.Done():
			return
		}
	}
}

func (n *Node) applyLocal(ctx context.Context, cmd []byte) (TxnResult, error) {
	f := n.raft.Apply(cmd, applyTimeout(ctx))
	if err := f.Error(); err != nil {
		return TxnResult{}, err
	}
	out, ok := f.Response().(txnOutcome)
	if !ok {
		return TxnResult{}, errors.New("raftstore: entry applied without a result")
	}
	if out.Err != nil {
		return TxnResult{}, out.Err
	}
	return out.Result, nil
}

// Txn proposes t and waits until it is committed and applied locally (on
// the leader) or on the leader (from a follower).
func (n *Node) Txn(ctx context.Context, t *Txn) (TxnResult, error) {
	for _, op := range t.Ops {
		if op.Key == "" {
			return TxnResult{}, errors.New("raftstore: empty key")
		}
		if len(op.Value) > MaxValueSize {
			return TxnResult{}, fmt.Errorf("%w: %d bytes for %q (max %d)", ErrValueTooLarge, len(op.Value), op.Key, MaxValueSize)
		}
	}
	var id requestID
	if _, err := rand.Read(id[:]); err != nil {
		return TxnResult{}, fmt.Errorf("raftstore: request id: %w", err)
	}
	cmd := encodeTxn(id, t)
	var res TxnResult
	err := n.withLeader(ctx, func(self bool, addr string) error {
		if self {
			r, err := n.applyLocal(ctx, cmd)
			res = r
			return err
		}
		b, err := n.rpc.call(ctx, addr, rpcApply, cmd)
		if err != nil {
			return err
		}
		res, err = decodeResult(b)
		return err
	})
	// A write through a follower returns once the leader applied it; the
	// follower's replica follows within a CommitTimeout, and a linearizable
	// read on it waits for that.
	if err != nil {
		return TxnResult{}, err
	}
	return res, nil
}
