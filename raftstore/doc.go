// Package raftstore is orch's replacement for etcd: a revisioned key-value
// store replicated with Raft, embedded in every server.
//
// # Model
//
// Keys are strings, values are bytes. Every write is a transaction (Txn): a
// list of compares (a key's ModRevision equals a value, or the key is Absent
// or Present) and a list of puts and deletes applied together when all
// compares hold. Each transaction is one Raft log entry, and the entry's
// index is the transaction's revision: revisions grow strictly, so they order
// every change in the cluster. Each key carries the revision that created it,
// the revision of its last write and a write count (Version).
//
// Reads come from the local replica. A Linearizable read first learns the
// leader's revision (ReadIndex: the leader confirms its leadership with a
// quorum) and waits until the local replica has reached it, so it reflects
// every write acknowledged before it began, on any server. A read with
// MinRevision waits only for that revision; a read with neither answers at
// once. A List may also ask for a past Revision inside the history window.
//
// Watch delivers every change under a prefix after a revision, in order,
// each event carrying the key's previous value. History is a bounded window
// in memory; a watch or list older than the window gets ErrCompacted, and the
// caller lists again (HTTP 410 at the API). A restarted server's window
// starts at its restart.
//
// # Durability
//
// The Raft log (raft-boltdb, fsynced per batch) is the durability point. The
// state machine applies committed entries in batches (raft.BatchingFSM) to an
// in-memory B-tree, and writes each batch to a bbolt file without fsync,
// recording the last applied index in the same transaction. A restart loads
// the file and skips every entry at or below that index, so no entry is
// applied twice. The file is trusted after a clean close or a crash of the
// process alone; after an unclean reboot it is rebuilt from the last Raft
// snapshot and the log (see boltState).
//
// Snapshots are taken from a copy-on-write clone of the tree, so writes go on
// while one is written; with log truncation they bound disk use.
//
// # Writes from followers
//
// A follower forwards a proposal to the leader over the internal RPC on the
// peer port. Each proposal carries a random request ID, and the state machine
// remembers recent IDs (a replicated table pruned by log time), so a proposal
// retried after a leader change is applied at most once and answered with its
// first result.
//
// # Peers
//
// One TCP port per server carries Raft and the internal RPC. Each connection
// runs TLS and proves knowledge of the cluster token (package peerauth)
// before anything else.
package raftstore
