package raftstore

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/btree"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketKV     = []byte("kv")
	bucketMeta   = []byte("meta")
	bucketDedupe = []byte("dedupe")
	keyApplied   = []byte("applied")
)

// boltState persists the state machine in a bbolt file. It is a cache of the
// Raft log, which is the durability point: commits do not fsync. The file
// records the index of the last entry it holds, so a restart resumes from
// there and never applies an entry twice.
//
// Without fsync, a power loss can leave the file torn. An owner file next to it
// says whether the file was closed cleanly, or else which boot of the machine
// last wrote it: after a crash of the process alone the page cache still holds
// every completed commit and the file is trusted; after an unclean reboot it is
// discarded and rebuilt from the last Raft snapshot and the log.
type boltState struct {
	db     *bolt.DB
	path   string
	log    *slog.Logger
	failed bool
}

// loaded is the state read back from disk when a boltState opens.
type loaded struct {
	tree    *btree.BTreeG[*KeyValue]
	rev     int64
	dedupe  dedupeTable
	trusted bool // false when a file existed but was discarded
}

const bootIDPath = "/proc/sys/kernel/random/boot_id"

func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func boltOptions() *bolt.Options {
	return &bolt.Options{NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
}

// openBoltState opens (or creates) the state file in dir and loads it.
func openBoltState(dir string, log *slog.Logger) (*boltState, *loaded, error) {
	path := filepath.Join(dir, "state.db")
	owner := path + ".owner"
	ld := &loaded{trusted: true}
	if _, err := os.Stat(path); err == nil {
		mark, _ := os.ReadFile(owner)
		m := strings.TrimSpace(string(mark))
		id := bootID()
		if m != "clean" && (id == "" || m != "open "+id) {
			log.Warn("state database was not closed cleanly before a reboot; rebuilding it from the Raft snapshot and log", "path", path, "owner", m)
			if err := os.Remove(path); err != nil {
				return nil, nil, fmt.Errorf("raftstore: discard state database: %w", err)
			}
			ld.trusted = false
		}
	}
	db, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: open state database %s: %w", path, err)
	}
	b := &boltState{db: db, path: path, log: log}
	if err := b.load(ld); err != nil {
		db.Close()
		return nil, nil, err
	}
	if err := writeFileSync(owner, []byte("open "+bootID()+"\n")); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("raftstore: write %s: %w", owner, err)
	}
	return b, ld, nil
}

func (b *boltState) load(ld *loaded) error {
	ld.tree = btree.NewG[*KeyValue](32, lessKV)
	ld.dedupe = newDedupeTable()
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketKV, bucketMeta, bucketDedupe} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
			ld.rev = int64(binary.BigEndian.Uint64(v))
		}
		if err := tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
			kv, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			ld.tree.ReplaceOrInsert(kv)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketDedupe).ForEach(func(k, v []byte) error {
			e, err := decodeDedupe(k, v)
			if err != nil {
				return err
			}
			ld.dedupe.byID[e.id] = e
			ld.dedupe.order = append(ld.dedupe.order, e)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("raftstore: load state database %s: %w", b.path, err)
	}
	return nil
}

func revKey(rev int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(rev))
	return k[:]
}

func encodeDedupe(e *dedupeEntry) []byte {
	b := make([]byte, 0, 48)
	b = append(b, e.id[:]...)
	b = binary.AppendVarint(b, e.appendedAt)
	return append(b, encodeResult(e.result)...)
}

func decodeDedupe(k, v []byte) (*dedupeEntry, error) {
	if len(k) != 8 || len(v) < 16 {
		return nil, fmt.Errorf("raftstore: bad dedupe record")
	}
	e := &dedupeEntry{rev: int64(binary.BigEndian.Uint64(k))}
	copy(e.id[:], v)
	d := &decoder{b: v[16:]}
	e.appendedAt = d.varint()
	if d.err != nil {
		return nil, fmt.Errorf("raftstore: bad dedupe record: %w", d.err)
	}
	r, err := decodeResult(d.b)
	if err != nil {
		return nil, fmt.Errorf("raftstore: bad dedupe record: %w", err)
	}
	e.result = r
	return e, nil
}

// commit writes one applied batch. After a failure the file no longer
// matches the log, so it is marked for rebuild and not written again.
func (b *boltState) commit(applied int64, ch *changes) error {
	if b.failed {
		return nil
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		kvb := tx.Bucket(bucketKV)
		for _, kv := range ch.puts {
			if err := kvb.Put([]byte(kv.Key), encodeRecord(kv)); err != nil {
				return err
			}
		}
		for _, k := range ch.deletes {
			if err := kvb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		db := tx.Bucket(bucketDedupe)
		for _, e := range ch.dedupeAdds {
			if err := db.Put(revKey(e.rev), encodeDedupe(e)); err != nil {
				return err
			}
		}
		for _, rev := range ch.dedupeDeletes {
			if err := db.Delete(revKey(rev)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, revKey(applied))
	})
	if err != nil {
		b.failed = true
		b.log.Error("state database write failed; it will be rebuilt from the Raft log at the next start", "path", b.path, "err", err)
		if werr := writeFileSync(b.path+".owner", []byte("failed\n")); werr != nil {
			b.log.Error("cannot mark the state database for rebuild", "err", werr)
		}
		return err
	}
	return nil
}

// replace rewrites the whole file from a restored state.
func (b *boltState) replace(tree *btree.BTreeG[*KeyValue], rev int64, dd dedupeTable) error {
	tmp := b.path + ".restore"
	_ = os.Remove(tmp) // a leftover from an interrupted restore
	ndb, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("raftstore: create %s: %w", tmp, err)
	}
	err = ndb.Update(func(tx *bolt.Tx) error {
		kvb, err := tx.CreateBucket(bucketKV)
		if err != nil {
			return err
		}
		kvb.FillPercent = 0.9
		var perr error
		tree.Ascend(func(kv *KeyValue) bool {
			perr = kvb.Put([]byte(kv.Key), encodeRecord(kv))
			return perr == nil
		})
		if perr != nil {
			return perr
		}
		ddb, err := tx.CreateBucket(bucketDedupe)
		if err != nil {
			return err
		}
		for _, e := range dd.order {
			if err := ddb.Put(revKey(e.rev), encodeDedupe(e)); err != nil {
				return err
			}
		}
		mb, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return mb.Put(keyApplied, revKey(rev))
	})
	if err == nil {
		err = ndb.Sync()
	}
	if cerr := ndb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftstore: write restored state: %w", err)
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("raftstore: close state database: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("raftstore: install restored state: %w", err)
	}
	db, err := bolt.Open(b.path, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("raftstore: reopen state database: %w", err)
	}
	b.db = db
	b.failed = false
	return writeFileSync(b.path+".owner", []byte("open "+bootID()+"\n"))
}

// close syncs and closes the file and marks it clean.
func (b *boltState) close() error {
	err := b.db.Sync()
	if cerr := b.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftstore: close state database: %w", err)
	}
	if b.failed {
		return nil
	}
	return writeFileSync(b.path+".owner", []byte("clean\n"))
}
