package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// diskNode opens a single-server store in dir, listening on addr ("" for
// port 0), bootstrapped on first start.
func diskNode(t *testing.T, dir, addr string, tune func(*Config)) *Node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	cfg := Config{ID: "s1", Dir: dir, Listener: ln, PeerKey: []byte("k"), HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !n.HadState() {
		if err := n.Bootstrap([]Server{{ID: "s1", Address: n.Addr()}}); err != nil {
			t.Fatalf("Bootstrap: %v", err)
		}
	}
	if err := n.WaitLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return n
}

func dump(t *testing.T, s Store) string {
	t.Helper()
	kvs, _, _, err := s.List(ctxT(t), "/", ListOptions{ReadOptions: ReadOptions{Linearizable: true}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%s=%s c%d m%d v%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	return b.String()
}

func TestRestartAppliesNoEntryTwice(t *testing.T) {
	cases := []struct {
		name     string
		snapshot bool // take a snapshot halfway, so the restart replays only part of the log
	}{
		{name: "log only"},
		{name: "snapshot then more log", snapshot: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := diskNode(t, dir, "", nil)
			addr := n.Addr()
			for i := 0; i < 10; i++ {
				put(t, n, "/counter", fmt.Sprint(i))
				if tc.snapshot && i == 4 {
					if err := n.raft.Snapshot().Error(); err != nil {
						t.Fatalf("snapshot: %v", err)
					}
				}
			}
			want := dump(t, n)
			if err := n.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			n2 := diskNode(t, dir, addr, nil)
			defer n2.Close()
			got := dump(t, n2) // a linearizable read: every committed entry has been replayed by now
			if got != want {
				t.Fatalf("after restart got\n%s\nwant\n%s", got, want)
			}
			if a := n2.AppliedCommands(); a != 0 {
				t.Fatalf("after restart the state machine applied %d old commands again, want 0", a)
			}
			kv, _, _ := n2.Get(ctxT(t), "/counter", ReadOptions{})
			if kv.Version != 10 {
				t.Fatalf("got version %d, want 10 (a double apply would show more)", kv.Version)
			}
			rev := put(t, n2, "/after", "x")
			if a := n2.AppliedCommands(); a != 1 {
				t.Fatalf("got %d applied commands after one new write, want 1", a)
			}
			if rev <= kv.ModRevision {
				t.Fatalf("got revision %d after restart, want more than %d", rev, kv.ModRevision)
			}
		})
	}
}

func TestUntrustedStateFileIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	n := diskNode(t, dir, "", func(c *Config) { c.TrailingLogs = 4 })
	addr := n.Addr()
	for i := 0; i < 20; i++ {
		put(t, n, fmt.Sprintf("/k/%d", i%6), fmt.Sprint(i))
		if i == 10 {
			if err := n.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	del(t, n, "/k/2")
	want := dump(t, n)
	n.Close()

	// Pretend the machine rebooted without a clean shutdown: the unsynced
	// state file may be torn and must not be trusted.
	if err := os.WriteFile(filepath.Join(dir, "state.db.owner"), []byte("open another-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n2 := diskNode(t, dir, addr, func(c *Config) { c.TrailingLogs = 4 })
	defer n2.Close()
	if got := dump(t, n2); got != want {
		t.Fatalf("rebuilt state:\n%s\nwant\n%s", got, want)
	}
	if n2.AppliedCommands() == 0 {
		t.Fatal("got no applied commands, want the log after the snapshot replayed onto the restored state")
	}
}

func TestSnapshotsTruncateTheLog(t *testing.T) {
	dir := t.TempDir()
	n := diskNode(t, dir, "", func(c *Config) {
		c.SnapshotThreshold = 50
		c.SnapshotInterval = 20 * time.Millisecond
		c.TrailingLogs = 10
	})
	defer n.Close()
	val := string(bytes.Repeat([]byte("x"), 1024))
	for i := 0; i < 400; i++ {
		put(t, n, fmt.Sprintf("/k/%d", i%20), val)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if first := n.raft.Stats()["last_snapshot_index"]; first != "0" && first != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot was taken")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Later writes keep the log short: everything before the last snapshot
	// minus the trailing entries is gone.
	for i := 0; i < 200; i++ {
		put(t, n, fmt.Sprintf("/k/%d", i%20), val)
	}
	var firstIdx, lastIdx uint64
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		firstIdx = logFirstIndex(t, n)
		lastIdx = n.raft.LastIndex()
		if lastIdx-firstIdx < 200 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lastIdx-firstIdx >= 200 {
		t.Fatalf("log holds entries %d..%d, want fewer than 200 after snapshots", firstIdx, lastIdx)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	metas, _ := snaps.List()
	if len(metas) == 0 || len(metas) > 2 {
		t.Fatalf("got %d snapshots on disk, want 1 or 2 (older ones are reaped)", len(metas))
	}
}

func logFirstIndex(t *testing.T, n *Node) uint64 {
	t.Helper()
	idx, err := n.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	n := diskNode(t, t.TempDir(), "", nil)
	defer n.Close()
	ctx := ctxT(t)
	put(t, n, "/a", "1")
	put(t, n, "/b", "1")
	want := dump(t, n)
	var snap bytes.Buffer
	if err := n.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	put(t, n, "/a", "2")
	del(t, n, "/b")
	put(t, n, "/c", "1")
	before := n.Revision()
	w, err := n.Watch(ctx, "/", before)
	if err != nil {
		t.Fatal(err)
	}

	if err := n.Restore(ctx, bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	got := dump(t, n)
	if got != want {
		t.Fatalf("after restore got\n%s\nwant\n%s", got, want)
	}
	if n.Revision() <= before {
		t.Fatalf("got revision %d after restore, want more than %d", n.Revision(), before)
	}
	if _, err := w.Next(ctx); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch across a restore: got %v, want ErrCompacted", err)
	}
	// The store keeps working after a restore.
	put(t, n, "/d", "1")

	t.Run("damaged snapshot is refused", func(t *testing.T) {
		bad := bytes.Clone(snap.Bytes())
		bad[len(bad)/2] ^= 0xff
		if err := n.Restore(ctx, bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("got %v, want ErrBadSnapshot", err)
		}
		if err := n.Restore(ctx, bytes.NewReader([]byte("not a snapshot"))); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("got %v, want ErrBadSnapshot", err)
		}
	})
}

func TestRetriedProposalAppliesOnce(t *testing.T) {
	n := memStore(t)
	id := requestID{9}
	cmd := encodeTxn(id, &Txn{Ops: []Op{{Type: OpPut, Key: "/once", Value: []byte("x")}}})
	ctx := context.Background()
	r1, err := n.applyLocal(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	// The same proposal again, as a retry through a new leader would send it.
	r2, err := n.applyLocal(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 {
		t.Fatalf("got results %+v then %+v, want the same", r1, r2)
	}
	kv, _, _ := n.Get(ctx, "/once", ReadOptions{})
	if kv.Version != 1 {
		t.Fatalf("got version %d, want 1", kv.Version)
	}
}
