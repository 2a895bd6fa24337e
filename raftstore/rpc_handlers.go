package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

func statusFor(err error) byte {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, ErrNotLeader):
		return rpcNotLeader
	case retriable(err):
		return rpcRetry
	}
	return rpcFailed
}

// handleRPC serves the internal RPC; all methods but rpcStatus are leader-only.
func (n *Node) handleRPC(ctx context.Context, method byte, payload []byte) (byte, []byte) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if method != rpcStatus && method != rpcJoin && n.raft.State() != raft.Leader {
		return rpcNotLeader, []byte("not the leader")
	}
	fail := func(err error) (byte, []byte) { return statusFor(err), []byte(err.Error()) }
	switch method {
	case rpcApply:
		res, err := n.applyLocal(ctx, payload)
		if err != nil {
			return fail(err)
		}
		return rpcOK, encodeResult(res)
	case rpcReadIndex:
		callerRev, k := binary.Varint(payload)
		if k <= 0 {
			callerRev = 0
		}
		rev, err := n.leaderReadIndex(ctx, callerRev)
		if err != nil {
			return fail(err)
		}
		return rpcOK, binary.AppendVarint(nil, rev)
	case rpcAddVoter:
		s, err := decodeStrings(payload, 2)
		if err != nil {
			return fail(err)
		}
		if err := n.raft.AddVoter(raft.ServerID(s[0]), raft.ServerAddress(s[1]), 0, 20*time.Second).Error(); err != nil {
			return fail(err)
		}
		return rpcOK, nil
	case rpcRemove:
		s, err := decodeStrings(payload, 1)
		if err != nil {
			return fail(err)
		}
		if err := n.raft.RemoveServer(raft.ServerID(s[0]), 0, 20*time.Second).Error(); err != nil {
			return fail(err)
		}
		return rpcOK, nil
	case rpcTransfer:
		s, err := decodeStrings(payload, 1)
		if err != nil {
			return fail(err)
		}
		if s[0] == "" {
			err = n.raft.LeadershipTransfer().Error()
		} else if p, ok := n.peer(s[0]); ok {
			err = n.raft.LeadershipTransferToServer(raft.ServerID(p.ID), raft.ServerAddress(p.Address)).Error()
		} else {
			err = fmt.Errorf("%w: %q", ErrUnknownPeer, s[0])
		}
		if err != nil {
			return fail(err)
		}
		return rpcOK, nil
	case rpcRestore:
		if err := n.restoreLocal(payload); err != nil {
			return fail(err)
		}
		return rpcOK, nil
	case rpcStatus:
		return rpcOK, binary.AppendVarint(nil, n.state.revision())
	case rpcJoin:
		s, err := decodeStrings(payload, 2)
		if err != nil {
			return fail(err)
		}
		if p, ok := n.peer(s[0]); ok && p.Address == s[1] {
			return rpcOK, nil // already a member: a restarted joiner
		}
		if err := n.AddVoter(ctx, s[0], s[1]); err != nil {
			return fail(err)
		}
		return rpcOK, nil
	}
	return rpcFailed, []byte(fmt.Sprintf("unknown rpc method %d", method))
}
