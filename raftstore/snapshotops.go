package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// Snapshot writes a consistent snapshot of the whole store to w, taken after
// a linearizable read barrier.
func (n *Node) Snapshot(ctx context.Context, w io.Writer) error {
	if err := n.Sync(ctx, ReadOptions{Linearizable: true}); err != nil {
		return err
	}
	return writeSnapshot(w, n.fsm.snapshot())
}

// Restore replaces the whole cluster's state with a snapshot made by
// Snapshot. Every watch must start over afterwards.
func (n *Node) Restore(ctx context.Context, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxFrame))
	if err != nil {
		return fmt.Errorf("raftstore: read snapshot: %w", err)
	}
	if _, err := readSnapshot(bytes.NewReader(data)); err != nil {
		return err
	}
	err = n.withLeader(ctx, func(self bool, leader string) error {
		if self {
			return n.restoreLocal(data)
		}
		_, err := n.rpc.call(ctx, leader, rpcRestore, data)
		return err
	})
	if err != nil {
		return err
	}
	// An empty transaction moves every replica to one new revision past the
	// restore, so revisions keep growing across it.
	_, err = n.Txn(ctx, &Txn{})
	return err
}

func (n *Node) restoreLocal(data []byte) error {
	snap, err := readSnapshot(bytes.NewReader(data))
	if err != nil {
		return err
	}
	// The restored state takes a revision above any this cluster has handed
	// out, so clients never see revisions go back and every watch restarts.
	// Raft installs the snapshot at an index at least this high.
	snap.rev = int64(n.raft.LastIndex()) + 1
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, snap); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(buf.Len())}
	return n.raft.Restore(meta, &buf, time.Minute)
}
