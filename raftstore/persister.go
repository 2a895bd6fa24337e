package raftstore

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// persister writes the state machine's changes to the state database
// behind the apply loop: changes are merged per key and committed every
// interval (or sooner when many are pending), in one transaction that also
// records the last applied index. The database is a cache of the Raft log,
// so committing later only means a restart replays a little more of the
// log; merging means a key written many times between commits (a status
// updated every second) costs one write, and the apply loop never waits
// for the disk.
type persister struct {
	db       *boltState
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex // guards the pending changes
	puts    map[string]*KeyValue
	dels    map[string]struct{}
	ddAdd   map[int64]*dedupeEntry
	ddDel   map[int64]struct{}
	applied int64
	dirty   bool

	dbMu sync.Mutex // serialises commits, replacement and close
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

const maxPendingKeys = 8192

func newPersister(db *boltState, log *slog.Logger, interval time.Duration) *persister {
	p := &persister{db: db, log: log, interval: interval, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.reset()
	go p.loop()
	return p
}

func (p *persister) reset() {
	p.puts = map[string]*KeyValue{}
	p.dels = map[string]struct{}{}
	p.ddAdd = map[int64]*dedupeEntry{}
	p.ddDel = map[int64]struct{}{}
	p.dirty = false
}

// add records one applied batch. It is called in apply order.
func (p *persister) add(applied int64, ch *changes) {
	p.mu.Lock()
	for _, kv := range ch.puts {
		p.puts[kv.Key] = kv
		delete(p.dels, kv.Key)
	}
	for _, k := range ch.deletes {
		delete(p.puts, k)
		p.dels[k] = struct{}{}
	}
	for _, e := range ch.dedupeAdds {
		p.ddAdd[e.rev] = e
	}
	for _, rev := range ch.dedupeDeletes {
		if _, ok := p.ddAdd[rev]; ok {
			delete(p.ddAdd, rev)
		} else {
			p.ddDel[rev] = struct{}{}
		}
	}
	p.applied = applied
	p.dirty = true
	many := len(p.puts)+len(p.dels) > maxPendingKeys
	p.mu.Unlock()
	if many {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *persister) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.kick:
		case <-p.stop:
			p.flush()
			return
		}
		p.flush()
	}
}

// flush commits what is pending. A failed commit marks the database for
// rebuild (see boltState.commit); the in-memory state is unaffected.
func (p *persister) flush() {
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return
	}
	ch := &changes{}
	for _, kv := range p.puts {
		ch.puts = append(ch.puts, kv)
	}
	for k := range p.dels {
		ch.deletes = append(ch.deletes, k)
	}
	for _, e := range p.ddAdd {
		ch.dedupeAdds = append(ch.dedupeAdds, e)
	}
	for rev := range p.ddDel {
		ch.dedupeDeletes = append(ch.dedupeDeletes, rev)
	}
	applied := p.applied
	p.reset()
	p.mu.Unlock()
	// Sorted keys fill B-tree pages in order.
	sort.Slice(ch.puts, func(i, j int) bool { return ch.puts[i].Key < ch.puts[j].Key })
	sort.Strings(ch.deletes)
	_ = p.db.commit(applied, ch) // logged and handled inside
}

// replace discards what is pending and rewrites the database from a
// restored state.
func (p *persister) replace(s *snapshotData, dd dedupeTable) error {
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	p.mu.Lock()
	p.reset()
	p.mu.Unlock()
	return p.db.replace(s.tree, s.rev, dd)
}

// close commits what is pending and closes the database cleanly.
func (p *persister) close() error {
	close(p.stop)
	<-p.done
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	return p.db.close()
}
