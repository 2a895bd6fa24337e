package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"orch.dev/orch/internal/peerauth"
	"orch.dev/orch/internal/testutil"
)

type testCluster struct {
	t     *testing.T
	key   []byte
	dirs  []string
	addrs []string
	nodes []*Node
}

func newCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, key: peerauth.Key("cluster-token")}
	var lns []net.Listener
	for i := 0; i < size; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		c.dirs = append(c.dirs, t.TempDir())
		c.addrs = append(c.addrs, ln.Addr().String())
	}
	var servers []Server
	for i := range lns {
		servers = append(servers, Server{ID: fmt.Sprintf("s%d", i), Address: c.addrs[i]})
	}
	c.nodes = make([]*Node, size)
	for i, ln := range lns {
		c.nodes[i] = c.open(i, ln)
		if err := c.nodes[i].Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	c.waitLeader()
	return c
}

func (c *testCluster) open(i int, ln net.Listener) *Node {
	c.t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", c.addrs[i])
		if err != nil {
			c.t.Fatal(err)
		}
	}
	n, err := Open(Config{
		ID: fmt.Sprintf("s%d", i), Dir: c.dirs[i], Listener: ln, PeerKey: c.key,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// waitLeader waits until every running node agrees on one leader and
// returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	testutil.Eventually(c.t, 10*time.Second, func() string {
		ids := map[string]bool{}
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			id, _ := n.Leader()
			if id == "" {
				return n.ID() + " knows no leader"
			}
			ids[id] = true
		}
		if len(ids) != 1 {
			return fmt.Sprintf("nodes disagree on the leader: %v", ids)
		}
		for i, n := range c.nodes {
			if n != nil && n.IsLeader() {
				leader = i
				return ""
			}
		}
		return "the agreed leader is not running"
	})
	return leader
}

func (c *testCluster) follower(leader int) int {
	for i, n := range c.nodes {
		if n != nil && i != leader {
			return i
		}
	}
	c.t.Fatal("no follower running")
	return -1
}

func TestClusterWritesThroughFollowersAndReadsLinearizably(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	ctx := ctxT(t)
	for round := 0; round < 20; round++ {
		for w, writer := range c.nodes {
			key := fmt.Sprintf("/lin/%d", w)
			val := fmt.Sprint(round)
			put(t, writer, key, val)
			// Right after the write is acknowledged, a linearizable read on
			// any replica must see it: no polling.
			for r, reader := range c.nodes {
				kv, _, err := reader.Get(ctx, key, ReadOptions{Linearizable: true})
				if err != nil {
					t.Fatalf("read on s%d: %v", r, err)
				}
				if kv == nil || string(kv.Value) != val {
					t.Fatalf("round %d: write via s%d, read on s%d (leader s%d): got %+v, want %s", round, w, r, leader, kv, val)
				}
			}
		}
	}
	// Every replica holds the same state at the same revision.
	want := dump(t, c.nodes[leader])
	for i, n := range c.nodes {
		if got := dump(t, n); got != want {
			t.Fatalf("s%d differs:\n%s\nleader:\n%s", i, got, want)
		}
	}
}

func TestClusterFailover(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	for i := 0; i < 50; i++ {
		put(t, c.nodes[c.follower(leader)], fmt.Sprintf("/f/%d", i), "before")
	}
	survivor := c.follower(leader)
	// Writes through a follower return before its replica has them.
	if err := c.nodes[survivor].Sync(ctxT(t), ReadOptions{Linearizable: true}); err != nil {
		t.Fatal(err)
	}
	w, err := c.nodes[survivor].Watch(ctxT(t), "/f/", c.nodes[survivor].Revision())
	if err != nil {
		t.Fatal(err)
	}

	c.nodes[leader].Close()
	c.nodes[leader] = nil
	// A write through a survivor waits for the new leader and succeeds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.nodes[survivor].Txn(ctx, &Txn{Ops: []Op{{Type: OpPut, Key: "/f/after", Value: []byte("x")}}})
	if err != nil || !res.Succeeded {
		t.Fatalf("write after losing the leader: %+v, %v", res, err)
	}
	newLeader := c.waitLeader()
	if newLeader == leader {
		t.Fatal("the stopped server is still the leader")
	}
	evs := collect(t, w, 1)
	if evs[0].Kv.Key != "/f/after" {
		t.Fatalf("watch on a survivor: got %s, want /f/after", evs[0].Kv.Key)
	}

	// The old leader comes back with its data and catches up.
	c.nodes[leader] = c.open(leader, nil)
	for i := 0; i < 10; i++ {
		put(t, c.nodes[newLeader], fmt.Sprintf("/f/late/%d", i), "after")
	}
	want := dump(t, c.nodes[newLeader])
	testutil.Eventually(t, 10*time.Second, func() string {
		if got := dump(t, c.nodes[leader]); got != want {
			return "the restarted server has not converged"
		}
		return ""
	})
}

func TestClusterMembership(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	ctx := ctxT(t)
	f := c.follower(leader)

	t.Run("list peers", func(t *testing.T) {
		ps, err := c.nodes[f].Peers()
		if err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, p := range ps {
			if !p.Voter {
				t.Fatalf("got non-voter %s, want all voters", p.ID)
			}
			if p.Leader {
				leaders++
			}
		}
		if len(ps) != 3 || leaders != 1 {
			t.Fatalf("got %d peers with %d leaders, want 3 with 1", len(ps), leaders)
		}
	})

	t.Run("transfer leadership to a named server", func(t *testing.T) {
		target := fmt.Sprintf("s%d", f)
		if err := c.nodes[leader].TransferLeadership(ctx, target); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, func() string {
			if id, _ := c.nodes[leader].Leader(); id != target {
				return "leader is " + id + ", want " + target
			}
			return ""
		})
	})

	t.Run("remove an unknown peer", func(t *testing.T) {
		if err := c.nodes[f].RemovePeer(ctx, "nope"); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("got %v, want ErrUnknownPeer", err)
		}
	})

	t.Run("add a voter, then remove a dead one", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		n4, err := Open(Config{ID: "s3", Dir: dir, Listener: ln, PeerKey: c.key, HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer n4.Close()
		// Added through a follower: the request is forwarded to the leader.
		if err := c.nodes[leader].AddVoter(ctx, "s3", n4.Addr()); err != nil {
			t.Fatal(err)
		}
		put(t, c.nodes[f], "/member", "yes")
		testutil.Eventually(t, 5*time.Second, func() string {
			kv, _, _ := n4.Get(ctx, "/member", ReadOptions{})
			if kv == nil {
				return "the new voter has not replicated /member"
			}
			return ""
		})
		n4.Close()
		if err := c.nodes[f].RemovePeer(ctx, "s3"); err != nil {
			t.Fatal(err)
		}
		ps, _ := c.nodes[f].Peers()
		if len(ps) != 3 {
			t.Fatalf("got %d peers after removal, want 3", len(ps))
		}
	})
}

func TestPeerWithoutTokenIsRefused(t *testing.T) {
	c := newCluster(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	intruder := newMux(ln, ln.Addr(), peerauth.Key("wrong-token"), c.nodes[0].log)
	defer intruder.close()
	rpc := newRPCClient(func(addr string) (net.Conn, error) { return intruder.dial(addr, connRPC, time.Second) })
	cmd := encodeTxn(requestID{1}, &Txn{Ops: []Op{{Type: OpPut, Key: "/evil", Value: []byte("x")}}})
	if _, err := rpc.call(ctxT(t), c.addrs[0], rpcApply, cmd); err == nil {
		t.Fatal("got a reply, want the connection refused")
	}
	if kv, _, _ := c.nodes[0].Get(ctxT(t), "/evil", ReadOptions{}); kv != nil {
		t.Fatal("a peer without the token wrote to the store")
	}
}

func TestJoinThroughAnyServer(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	f := c.follower(leader)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(Config{ID: "joiner", Dir: t.TempDir(), Listener: ln, PeerKey: c.key, HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Asked through a follower, which forwards to the leader.
	if err := n.RequestJoin(ctxT(t), c.addrs[f]); err != nil {
		t.Fatal(err)
	}
	// Asking again (a restart before the join was seen) is harmless.
	if err := n.RequestJoin(ctxT(t), c.addrs[f]); err != nil {
		t.Fatal(err)
	}
	put(t, c.nodes[leader], "/joined", "yes")
	testutil.Eventually(t, 5*time.Second, func() string {
		if kv, _, _ := n.Get(ctxT(t), "/joined", ReadOptions{}); kv == nil {
			return "the joiner has not replicated /joined"
		}
		return ""
	})
}
