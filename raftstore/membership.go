package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Peer describes one member of the Raft configuration.
type Peer struct {
	ID      string `json:"name"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// Peers returns the Raft configuration as this replica knows it.
func (n *Node) Peers() ([]Peer, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	leader, _ := n.Leader()
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{ID: string(s.ID), Address: string(s.Address), Leader: string(s.ID) == leader, Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

func (n *Node) peer(id string) (Peer, bool) {
	ps, err := n.Peers()
	if err != nil {
		return Peer{}, false
	}
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}

func encodeStrings(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func decodeStrings(p []byte, n int) ([]string, error) {
	d := &decoder{b: p}
	out := make([]string, n)
	for i := range out {
		out[i] = string(d.bytes())
	}
	return out, d.err
}

// AddVoter adds a server to the cluster (through the leader).
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.withLeader(ctx, func(self bool, leader string) error {
		if self {
			return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, applyTimeout(ctx)).Error()
		}
		_, err := n.rpc.call(ctx, leader, rpcAddVoter, encodeStrings(id, addr))
		return err
	})
}

// RequestJoin asks the server at via (any member, not necessarily the
// leader) to add this replica to its cluster as a voter. The connection
// proves the cluster token, so only token holders can join.
func (n *Node) RequestJoin(ctx context.Context, via string) error {
	_, err := n.rpc.call(ctx, via, rpcJoin, encodeStrings(n.cfg.ID, n.Addr()))
	return err
}

// ErrUnknownPeer means a membership operation named a server that is not in
// the configuration.
var ErrUnknownPeer = errors.New("raftstore: no such peer")

// RemovePeer removes a server from the cluster (through the leader).
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	if _, ok := n.peer(id); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
	}
	return n.withLeader(ctx, func(self bool, leader string) error {
		if self {
			return n.raft.RemoveServer(raft.ServerID(id), 0, applyTimeout(ctx)).Error()
		}
		_, err := n.rpc.call(ctx, leader, rpcRemove, encodeStrings(id))
		return err
	})
}

// TransferLeadership asks the leader to hand over to the server id, or to
// the most up-to-date follower when id is empty, and waits for a new leader.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	var target Peer
	if id != "" {
		p, ok := n.peer(id)
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
		}
		target = p
	}
	old, _ := n.Leader()
	if id != "" && old == id {
		return nil
	}
	err := n.withLeader(ctx, func(self bool, leader string) error {
		if self {
			if target.ID != "" {
				return n.raft.LeadershipTransferToServer(raft.ServerID(target.ID), raft.ServerAddress(target.Address)).Error()
			}
			return n.raft.LeadershipTransfer().Error()
		}
		_, err := n.rpc.call(ctx, leader, rpcTransfer, encodeStrings(id))
		return err
	})
	if err != nil {
		return err
	}
	for {
		ch := n.LeaderChanged()
		if cur, _ := n.Leader(); cur != "" && cur != old {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("raftstore: leadership moved but no new leader seen yet: %w", ctx.Err())
		}
	}
}
