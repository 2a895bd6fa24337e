package raftstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Internal RPC between servers, on the peer port. Requests and replies are
// frames on one multiplexed connection per peer:
//
//	uint32 length | uint64 call id | byte method (request) or status (reply) | payload
//
// Method numbers are append-only, like command types.
const (
	rpcApply      byte = 1 // payload: a log command; reply: encoded TxnResult
	rpcReadIndex  byte = 2 // reply: varint revision
	rpcAddVoter   byte = 3 // payload: id, address
	rpcRemove     byte = 4 // payload: id
	rpcTransfer   byte = 5 // payload: id (empty: any)
	rpcRestore    byte = 6 // payload: a snapshot stream
	rpcStatus     byte = 7 // reply: varint revision (no leadership check)
	rpcJoin       byte = 8 // payload: id, address; any server forwards it to the leader
	maxFrame           = 1 << 30
	rpcDialTimout      = 5 * time.Second
)

// Reply statuses.
const (
	rpcOK        byte = 0
	rpcNotLeader byte = 1 // the callee is not the leader: ask the leader
	rpcRetry     byte = 2 // transient (leadership lost mid-way): try again
	rpcFailed    byte = 3 // permanent: payload is the message
)

// remoteError is an error reported by a peer.
type remoteError struct {
	status byte
	msg    string
}

func (e *remoteError) Error() string { return e.msg }

var errConnBroken = errors.New("raftstore: peer connection lost")

type rpcReply struct {
	status  byte
	payload []byte
}

type rpcHandler func(ctx context.Context, method byte, payload []byte) (byte, []byte)

func writeFrame(w *bufio.Writer, id uint64, kind byte, payload []byte) error {
	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(9+len(payload)))
	binary.BigEndian.PutUint64(hdr[4:12], id)
	hdr[12] = kind
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	return w.Flush()
}

func readFrame(r *bufio.Reader) (uint64, byte, []byte, error) {
	var hdr [13]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 9 || n > maxFrame {
		return 0, 0, nil, fmt.Errorf("raftstore: bad rpc frame length %d", n)
	}
	payload := make([]byte, n-9)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return binary.BigEndian.Uint64(hdr[4:12]), hdr[12], payload, nil
}

// serveRPC serves one incoming RPC connection until it breaks.
func serveRPC(ctx context.Context, c net.Conn, h rpcHandler) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	var wmu sync.Mutex
	for {
		id, method, payload, err := readFrame(r)
		if err != nil {
			return
		}
		go func() {
			status, reply := h(ctx, method, payload)
			wmu.Lock()
			defer wmu.Unlock()
			if err := writeFrame(w, id, status, reply); err != nil {
				c.Close()
			}
		}()
	}
}

// rpcClient keeps one multiplexed connection per peer address.
type rpcClient struct {
	dial func(addr string) (net.Conn, error)

	mu    sync.Mutex
	conns map[string]*rpcConn
}

type rpcConn struct {
	c   net.Conn
	w   *bufio.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]chan rpcReply
	next    uint64
	broken  bool
}

func newRPCClient(dial func(string) (net.Conn, error)) *rpcClient {
	return &rpcClient{dial: dial, conns: map[string]*rpcConn{}}
}

func (cl *rpcClient) conn(addr string) (*rpcConn, error) {
	cl.mu.Lock()
	if rc := cl.conns[addr]; rc != nil {
		rc.mu.Lock()
		broken := rc.broken
		rc.mu.Unlock()
		if !broken {
			cl.mu.Unlock()
			return rc, nil
		}
		delete(cl.conns, addr)
	}
	cl.mu.Unlock()
	c, err := cl.dial(addr)
	if err != nil {
		return nil, err
	}
	rc := &rpcConn{c: c, w: bufio.NewWriterSize(c, 64<<10), pending: map[uint64]chan rpcReply{}}
	go rc.readLoop()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if old := cl.conns[addr]; old != nil {
		old.mu.Lock()
		oldOK := !old.broken
		old.mu.Unlock()
		if oldOK {
			c.Close()
			return old, nil
		}
	}
	cl.conns[addr] = rc
	return rc, nil
}

func (rc *rpcConn) readLoop() {
	r := bufio.NewReaderSize(rc.c, 64<<10)
	for {
		id, status, payload, err := readFrame(r)
		if err != nil {
			rc.fail()
			return
		}
		rc.mu.Lock()
		ch := rc.pending[id]
		delete(rc.pending, id)
		rc.mu.Unlock()
		if ch != nil {
			ch <- rpcReply{status: status, payload: payload}
		}
	}
}

func (rc *rpcConn) fail() {
	rc.c.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.broken = true
	for id, ch := range rc.pending {
		close(ch)
		delete(rc.pending, id)
	}
}

// call sends one request and waits for its reply. A connection failure after
// the request was sent leaves its outcome unknown; callers retry only calls
// that are safe to repeat (proposals carry a request ID for that).
func (cl *rpcClient) call(ctx context.Context, addr string, method byte, payload []byte) ([]byte, error) {
	rc, err := cl.conn(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errConnBroken, err)
	}
	ch := make(chan rpcReply, 1)
	rc.mu.Lock()
	if rc.broken {
		rc.mu.Unlock()
		return nil, errConnBroken
	}
	rc.next++
	id := rc.next
	rc.pending[id] = ch
	rc.mu.Unlock()

	rc.wmu.Lock()
	err = writeFrame(rc.w, id, method, payload)
	rc.wmu.Unlock()
	if err != nil {
		rc.fail()
		return nil, fmt.Errorf("%w: %v", errConnBroken, err)
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, errConnBroken
		}
		if rep.status != rpcOK {
			return nil, &remoteError{status: rep.status, msg: string(rep.payload)}
		}
		return rep.payload, nil
	case <-ctx.Done():
		rc.mu.Lock()
		delete(rc.pending, id)
		rc.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (cl *rpcClient) close() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for addr, rc := range cl.conns {
		rc.fail()
		delete(cl.conns, addr)
	}
}
