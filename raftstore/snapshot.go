package raftstore

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/google/btree"
)

// Snapshot stream format, version 1:
//
//	"ORCHSNP1"
//	uvarint revision
//	uvarint count, then per key: key, createRev, modRev, version, value
//	uvarint count, then per request ID: id[16], rev, appendedAt, result
//	crc32c of everything above, 4 bytes big-endian
//
// Integers are varints, byte strings are uvarint-length-prefixed. The same
// format serves Raft snapshots and `orchctl operator snapshot save`.
const snapshotMagic = "ORCHSNP1"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type snapshotData struct {
	tree   *btree.BTreeG[*KeyValue]
	rev    int64
	dedupe []*dedupeEntry
}

func writeSnapshot(w io.Writer, s *snapshotData) error {
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	var buf []byte
	put := func(b []byte) error {
		_, err := bw.Write(b)
		return err
	}
	buf = append(buf[:0], snapshotMagic...)
	buf = binary.AppendUvarint(buf, uint64(s.rev))
	buf = binary.AppendUvarint(buf, uint64(s.tree.Len()))
	if err := put(buf); err != nil {
		return err
	}
	var err error
	s.tree.Ascend(func(kv *KeyValue) bool {
		buf = appendString(buf[:0], kv.Key)
		buf = binary.AppendVarint(buf, kv.CreateRevision)
		buf = binary.AppendVarint(buf, kv.ModRevision)
		buf = binary.AppendVarint(buf, kv.Version)
		buf = binary.AppendUvarint(buf, uint64(len(kv.Value)))
		if err = put(buf); err != nil {
			return false
		}
		err = put(kv.Value)
		return err == nil
	})
	if err != nil {
		return err
	}
	buf = binary.AppendUvarint(buf[:0], uint64(len(s.dedupe)))
	for _, e := range s.dedupe {
		buf = append(buf, e.id[:]...)
		buf = binary.AppendVarint(buf, e.rev)
		buf = binary.AppendVarint(buf, e.appendedAt)
		buf = appendBytes(buf, encodeResult(e.result))
	}
	if err := put(buf); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err = w.Write(sum[:])
	return err
}

// crcReader hashes what it reads, so the trailer can be checked.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

func (c *crcReader) full(n uint64) ([]byte, error) {
	if n > MaxValueSize*2 {
		return nil, fmt.Errorf("%w: field of %d bytes", ErrBadSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, err
	}
	c.crc.Write(b)
	return b, nil
}

func readSnapshot(r io.Reader) (*snapshotData, error) {
	c := &crcReader{r: bufio.NewReaderSize(r, 256<<10), crc: crc32.New(crcTable)}
	bad := func(what string, err error) (*snapshotData, error) {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, what, err)
	}
	magic, err := c.full(uint64(len(snapshotMagic)))
	if err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("%w: not an orch snapshot (wrong header)", ErrBadSnapshot)
	}
	rev, err := binary.ReadUvarint(c)
	if err != nil {
		return bad("revision", err)
	}
	n, err := binary.ReadUvarint(c)
	if err != nil {
		return bad("key count", err)
	}
	s := &snapshotData{tree: btree.NewG[*KeyValue](32, lessKV), rev: int64(rev)}
	for i := uint64(0); i < n; i++ {
		kl, err := binary.ReadUvarint(c)
		if err != nil {
			return bad("key", err)
		}
		key, err := c.full(kl)
		if err != nil {
			return bad("key", err)
		}
		kv := &KeyValue{Key: string(key)}
		if kv.CreateRevision, err = binary.ReadVarint(c); err != nil {
			return bad("create revision", err)
		}
		if kv.ModRevision, err = binary.ReadVarint(c); err != nil {
			return bad("mod revision", err)
		}
		if kv.Version, err = binary.ReadVarint(c); err != nil {
			return bad("version", err)
		}
		vl, err := binary.ReadUvarint(c)
		if err != nil {
			return bad("value", err)
		}
		if kv.Value, err = c.full(vl); err != nil {
			return bad("value", err)
		}
		s.tree.ReplaceOrInsert(kv)
	}
	n, err = binary.ReadUvarint(c)
	if err != nil {
		return bad("request count", err)
	}
	for i := uint64(0); i < n; i++ {
		e := &dedupeEntry{}
		id, err := c.full(16)
		if err != nil {
			return bad("request id", err)
		}
		copy(e.id[:], id)
		if e.rev, err = binary.ReadVarint(c); err != nil {
			return bad("request revision", err)
		}
		if e.appendedAt, err = binary.ReadVarint(c); err != nil {
			return bad("request time", err)
		}
		rl, err := binary.ReadUvarint(c)
		if err != nil {
			return bad("request result", err)
		}
		rb, err := c.full(rl)
		if err != nil {
			return bad("request result", err)
		}
		if e.result, err = decodeResult(rb); err != nil {
			return bad("request result", err)
		}
		s.dedupe = append(s.dedupe, e)
	}
	want := c.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(c.r, sum[:]); err != nil {
		return bad("checksum", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, fmt.Errorf("%w: checksum mismatch (file damaged or truncated)", ErrBadSnapshot)
	}
	return s, nil
}

func (s *snapshotData) dedupeTable() dedupeTable {
	d := newDedupeTable()
	for _, e := range s.dedupe {
		d.byID[e.id] = e
		d.order = append(d.order, e)
	}
	return d
}
