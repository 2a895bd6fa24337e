package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"orch.dev/orch/internal/logging"
)

// Config configures a Node. Zero durations and sizes take the defaults below.
type Config struct {
	// ID is this server's unique and stable name in the Raft configuration.
	ID string
	// Dir holds raft.db (the Raft log), snapshots/ and state.db.
	Dir string
	// Listener is the peer port, carrying Raft and the servers' internal RPC.
	Listener net.Listener
	// Advertise is the address other servers dial; default: the listener's.
	Advertise string
	// PeerKey authenticates peers (peerauth.Key of the cluster token). Nil
	// turns authentication off, which only in-process tests should do.
	PeerKey []byte
	Logger  *slog.Logger

	// HeartbeatTimeout is how long a follower waits without hearing from the
	// leader before it calls an election; ElectionTimeout is how long a
	// candidate waits for votes. Both are randomised up to twice the value.
	HeartbeatTimeout time.Duration // default 500ms
	ElectionTimeout  time.Duration // default 500ms
	// CommitTimeout bounds how late followers learn of a commit when no new
	// writes arrive (it paces empty appends when idle).
	CommitTimeout time.Duration // default 10ms
	// SnapshotThreshold is how many log entries trigger a snapshot, checked
	// every SnapshotInterval; TrailingLogs stay in the log after it.
	SnapshotThreshold uint64        // default 8192
	SnapshotInterval  time.Duration // default 30s
	TrailingLogs      uint64        // default 10240
	// HistoryEvents and HistoryBytes bound the in-memory watch history.
	HistoryEvents int   // default 20000
	HistoryBytes  int64 // default 64 MiB
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = logging.Discard
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 10 * time.Millisecond
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.HistoryEvents == 0 {
		c.HistoryEvents = 20000
	}
	if c.HistoryBytes == 0 {
		c.HistoryBytes = 64 << 20
	}
}

// Node is one replica of the store: a Raft member with its state machine.
// Reads are served from the local replica; writes go to the leader, through
// the internal RPC when this node is a follower.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	state *state

	mux      *mux
	rpc      *rpcClient
	trans    raft.Transport
	closers  []func() error
	hadState bool
	logStore raft.LogStore

	readIdx *coalescer // this node's view of the leader's revision
	verify  *coalescer // leader: confirm leadership with a quorum

	barrierMu   sync.Mutex
	barrierTerm atomic.Uint64

	leaderMu     sync.Mutex
	leaderNotify chan struct{}

	// nudges asks the leader to tell followers of a new commit at once
	// (see nudgeFollowers).
	nudges chan struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Server names one member for Bootstrap.
type Server struct {
	ID      string
	Address string
}

// Open starts a replica with its data in cfg.Dir. A replica with existing
// Raft state rejoins its cluster; a new one waits for Bootstrap or for a
// leader to add it.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.ID == "" {
		return nil, errors.New("raftstore: Config.ID is required")
	}
	if cfg.Listener == nil {
		return nil, errors.New("raftstore: Config.Listener is required")
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: create %s: %w", cfg.Dir, err)
	}
	logStore, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, logging.Hclog(log, "raft-snapshots"))
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftstore: open snapshot store: %w", err)
	}
	hasState, err := raft.HasExistingState(logStore, logStore, snaps)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftstore: inspect raft state: %w", err)
	}
	db, ld, err := openBoltState(cfg.Dir, log)
	if err != nil {
		logStore.Close()
		return nil, err
	}
	if !hasState && ld.rev > 0 {
		// A state file without the log it came from cannot be trusted to
		// match any cluster; start empty.
		log.Warn("state database without a Raft log; starting empty", "dir", cfg.Dir, "rev", ld.rev)
		ld.tree.Clear(false)
		ld.rev = 0
		ld.dedupe = newDedupeTable()
		if err := db.replace(ld.tree, 0, ld.dedupe); err != nil {
			db.close()
			logStore.Close()
			return nil, err
		}
	}
	st := newState(cfg.HistoryEvents, cfg.HistoryBytes)
	st.tree, st.rev, st.dedupe = ld.tree, ld.rev, ld.dedupe
	st.hist.compactRev = ld.rev

	// Skip restoring the newest snapshot when the state file already holds
	// everything it contains; Raft then replays only the entries after it,
	// and the FSM skips those the file already has.
	noRestore := true
	if metas, err := snaps.List(); err == nil && len(metas) > 0 && int64(metas[0].Index) > ld.rev {
		noRestore = false
	}

	advertise := cfg.Listener.Addr()
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			db.close()
			logStore.Close()
			return nil, fmt.Errorf("raftstore: advertise address %q: %w", cfg.Advertise, err)
		}
		advertise = a
	} else if tcp, ok := advertise.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		db.close()
		logStore.Close()
		return nil, fmt.Errorf("raftstore: listening on %s needs an advertise address peers can dial", advertise)
	}
	pers := newPersister(db, log, 100*time.Millisecond)
	f := &fsm{s: st, db: pers, log: log}
	m := newMux(cfg.Listener, advertise, cfg.PeerKey, log)
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{m},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logging.Hclog(log, "raft-net"),
	})
	n := &Node{
		cfg: cfg, log: log, fsm: f, state: st, mux: m, trans: trans, hadState: hasState,
		closers: []func() error{pers.close, logStore.Close}, logStore: logStore,
	}
	n.rpc = newRPCClient(func(addr string) (net.Conn, error) { return m.dial(addr, connRPC, rpcDialTimout) })
	m.rpc = func(c net.Conn) { serveRPC(n.ctx, c, n.handleRPC) }
	n.start(noRestore, logStore, logStore, snaps)
	if n.raft == nil {
		cfg.Listener.Close()
		return nil, n.closeErr
	}
	go m.serve()
	return n, nil
}

// OpenMemory starts a single-replica store that keeps everything in memory,
// for tests of the layers above.
func OpenMemory(log *slog.Logger) (*Node, error) {
	if log == nil {
		log = logging.Discard
	}
	cfg := Config{ID: "memory", Logger: log}
	cfg.setDefaults()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	st := newState(cfg.HistoryEvents, cfg.HistoryBytes)
	addr, trans := raft.NewInmemTransport("")
	n := &Node{cfg: cfg, log: log, fsm: &fsm{s: st, log: log}, state: st, trans: trans}
	n.rpc = newRPCClient(func(string) (net.Conn, error) { return nil, errors.New("raftstore: in-memory store has no peers") })
	store := raft.NewInmemStore()
	n.start(true, store, store, raft.NewInmemSnapshotStore())
	if n.raft == nil {
		return nil, n.closeErr
	}
	if err := n.Bootstrap([]Server{{ID: cfg.ID, Address: string(addr)}}); err != nil {
		n.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(noRestore bool, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore) {
	cfg := n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = logging.Hclog(n.log, "raft")
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = noRestore
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.leaderNotify = make(chan struct{})
	n.nudges = make(chan struct{}, 1)
	n.readIdx = &coalescer{fn: n.fetchReadIndex}
	n.verify = &coalescer{fn: func(context.Context) (int64, error) { return 0, n.raft.VerifyLeader().Error() }}

	r, err := raft.NewRaft(rc, n.fsm, mustLogCache(logs), stable, snaps, n.trans)
	if err != nil {
		n.closeErr = fmt.Errorf("raftstore: start raft: %w", err)
		n.cancel()
		for _, c := range n.closers {
			_ = c() // already failing; the start error is the one to report
		}
		return
	}
	n.raft = r
	go n.nudgeLoop()
	obs := make(chan raft.Observation, 64)
	r.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	go func() {
		for {
			select {
			case <-obs:
				n.leaderMu.Lock()
				close(n.leaderNotify)
				n.leaderNotify = make(chan struct{})
				n.leaderMu.Unlock()
			case <-n.ctx.Done():
				return
			}
		}
	}()
}

// mustLogCache puts a small cache of recent entries in front of the log
// store. raft.NewLogCache fails only for a non-positive capacity.
func mustLogCache(logs raft.LogStore) raft.LogStore {
	c, err := raft.NewLogCache(512, logs)
	if err != nil {
		panic(err)
	}
	return c
}

// HadState reports whether the replica found Raft state on disk at Open:
// a restarted server rejoins on its own and must not bootstrap or join.
func (n *Node) HadState() bool { return n.hadState }

// ID returns this replica's server ID.
func (n *Node) ID() string { return n.cfg.ID }

// Addr returns the advertised peer address.
func (n *Node) Addr() string {
	if n.mux == nil {
		return ""
	}
	return n.mux.advertise.String()
}

// Bootstrap makes servers the first configuration of a new cluster. Every
// server of a bootstrap-expect group may call it with the same list; those
// with existing state ignore it.
func (n *Node) Bootstrap(servers []Server) error {
	var c raft.Configuration
	for _, s := range servers {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address)})
	}
	err := n.raft.BootstrapCluster(c).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	return err
}

// Leader returns the current leader's ID and peer address, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this replica is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderChanged returns a channel closed at the next leadership change
// anywhere in the cluster, as this replica observes it.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderNotify
}

// WaitLeader blocks until this replica knows a leader.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		ch := n.LeaderChanged()
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		}
	}
}

// Revision returns the revision of the local replica.
func (n *Node) Revision() int64 { return n.state.revision() }

// AppliedCommands counts the command entries this replica's state machine
// applied since it opened.
func (n *Node) AppliedCommands() int64 { return n.fsm.applied.Load() }

// Close stops the replica. Its state file is marked clean.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				n.closeErr = err
			}
		}
		n.cancel()
		n.rpc.close()
		if n.mux != nil {
			_ = n.mux.close() // the listener may already be closed by the transport
		}
		if t, ok := n.trans.(io.Closer); ok {
			_ = t.Close() // closes the mux, already closed above
		}
		for _, c := range n.closers {
			if err := c(); err != nil && n.closeErr == nil {
				n.closeErr = err
			}
		}
		n.state.close()
	})
	return n.closeErr
}
