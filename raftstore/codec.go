package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command types of Raft log entries. They are append-only: a type, once
// released, keeps its number and meaning forever, because old logs and
// snapshots are replayed by new binaries.
const (
	cmdTxn byte = 1
)

// requestID identifies a proposal so that a retry after a leader change is
// applied at most once.
type requestID [16]byte

var errShortBuffer = errors.New("raftstore: truncated command")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortBuffer
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortBuffer
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShortBuffer
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShortBuffer
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) fixed(dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b) < len(dst) {
		d.err = errShortBuffer
		return
	}
	copy(dst, d.b)
	d.b = d.b[len(dst):]
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeTxn encodes a transaction proposal as a Raft log command.
func encodeTxn(id requestID, t *Txn) []byte {
	size := 1 + len(id) + 8
	for _, c := range t.Compares {
		size += len(c.Key) + 12
	}
	for _, op := range t.Ops {
		size += len(op.Key) + len(op.Value) + 12
	}
	b := make([]byte, 0, size)
	b = append(b, cmdTxn)
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, uint64(len(t.Compares)))
	for _, c := range t.Compares {
		b = appendString(b, c.Key)
		b = binary.AppendVarint(b, c.ModRevision)
	}
	b = binary.AppendUvarint(b, uint64(len(t.Ops)))
	for _, op := range t.Ops {
		b = append(b, byte(op.Type))
		b = appendString(b, op.Key)
		b = appendBytes(b, op.Value)
	}
	return b
}

// decodeTxn decodes the payload of a cmdTxn entry (without the type byte).
// Value slices alias p.
func decodeTxn(p []byte) (requestID, *Txn, error) {
	var id requestID
	d := &decoder{b: p}
	d.fixed(id[:])
	t := &Txn{}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return id, nil, errShortBuffer
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		t.Compares = append(t.Compares, Compare{Key: string(d.bytes()), ModRevision: d.varint()})
	}
	n = d.uvarint()
	if n > uint64(len(d.b)) {
		return id, nil, errShortBuffer
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		typ := OpType(d.byte())
		key := string(d.bytes())
		val := d.bytes()
		if typ != OpPut && typ != OpDelete {
			return id, nil, fmt.Errorf("raftstore: unknown op type %d", typ)
		}
		t.Ops = append(t.Ops, Op{Type: typ, Key: key, Value: val})
	}
	if d.err != nil {
		return id, nil, d.err
	}
	return id, t, nil
}

// encodeRecord encodes a key's stored state for the state database.
func encodeRecord(kv *KeyValue) []byte {
	b := make([]byte, 0, len(kv.Value)+24)
	b = binary.AppendVarint(b, kv.CreateRevision)
	b = binary.AppendVarint(b, kv.ModRevision)
	b = binary.AppendVarint(b, kv.Version)
	return append(b, kv.Value...)
}

// decodeRecord decodes a record; the value is copied out of p.
func decodeRecord(key string, p []byte) (*KeyValue, error) {
	d := &decoder{b: p}
	kv := &KeyValue{Key: key, CreateRevision: d.varint(), ModRevision: d.varint(), Version: d.varint()}
	if d.err != nil {
		return nil, fmt.Errorf("raftstore: record %q: %w", key, d.err)
	}
	kv.Value = append([]byte(nil), d.b...)
	return kv, nil
}

// txnOutcome is what the FSM returns for a txn entry, and what it remembers
// for a request ID so a retried proposal gets the same answer.
type txnOutcome struct {
	Result TxnResult
	Err    error
}

func encodeResult(r TxnResult) []byte {
	b := make([]byte, 0, 16)
	if r.Succeeded {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendVarint(b, r.Revision)
	return binary.AppendVarint(b, int64(r.FailedCompare))
}

func decodeResult(p []byte) (TxnResult, error) {
	d := &decoder{b: p}
	r := TxnResult{Succeeded: d.byte() == 1, Revision: d.varint(), FailedCompare: int(d.varint())}
	return r, d.err
}
