package raftstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func memStore(t *testing.T) *Node {
	t.Helper()
	n, err := OpenMemory(nil)
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s Store, key, val string) int64 {
	t.Helper()
	res, err := s.Txn(ctxT(t), &Txn{Ops: []Op{{Type: OpPut, Key: key, Value: []byte(val)}}})
	if err != nil || !res.Succeeded {
		t.Fatalf("put %s: got %+v, %v, want success", key, res, err)
	}
	return res.Revision
}

func del(t *testing.T, s Store, key string) int64 {
	t.Helper()
	res, err := s.Txn(ctxT(t), &Txn{Ops: []Op{{Type: OpDelete, Key: key}}})
	if err != nil || !res.Succeeded {
		t.Fatalf("delete %s: got %+v, %v, want success", key, res, err)
	}
	return res.Revision
}

func keysOf(kvs []*KeyValue) string {
	s := ""
	for _, kv := range kvs {
		s += fmt.Sprintf("%s=%s ", kv.Key, kv.Value)
	}
	return s
}

func TestTxnCompares(t *testing.T) {
	s := memStore(t)
	ctx := ctxT(t)
	r1 := put(t, s, "/a", "1")

	cases := []struct {
		name    string
		cmp     Compare
		want    bool
		wantIdx int
	}{
		{name: "absent on existing key fails", cmp: Compare{Key: "/a", ModRevision: Absent}, want: false, wantIdx: 0},
		{name: "absent on missing key holds", cmp: Compare{Key: "/b", ModRevision: Absent}, want: true, wantIdx: -1},
		{name: "present on existing key holds", cmp: Compare{Key: "/a", ModRevision: Present}, want: true, wantIdx: -1},
		{name: "present on missing key fails", cmp: Compare{Key: "/zz", ModRevision: Present}, want: false, wantIdx: 0},
		{name: "stale mod revision fails", cmp: Compare{Key: "/a", ModRevision: r1 - 1}, want: false, wantIdx: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Txn(ctx, &Txn{Compares: []Compare{tc.cmp}, Ops: []Op{{Type: OpPut, Key: "/other", Value: []byte("x")}}})
			if err != nil {
				t.Fatalf("Txn: %v", err)
			}
			if res.Succeeded != tc.want || res.FailedCompare != tc.wantIdx {
				t.Fatalf("got succeeded=%v failed=%d, want %v %d", res.Succeeded, res.FailedCompare, tc.want, tc.wantIdx)
			}
		})
	}

	t.Run("current mod revision updates and bumps version", func(t *testing.T) {
		kv, _, err := s.Get(ctx, "/a", ReadOptions{Linearizable: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Txn(ctx, &Txn{Compares: []Compare{{Key: "/a", ModRevision: kv.ModRevision}}, Ops: []Op{{Type: OpPut, Key: "/a", Value: []byte("2")}}})
		if err != nil || !res.Succeeded {
			t.Fatalf("got %+v %v, want success", res, err)
		}
		got, _, _ := s.Get(ctx, "/a", ReadOptions{})
		if string(got.Value) != "2" || got.Version != 2 || got.CreateRevision != r1 || got.ModRevision != res.Revision {
			t.Fatalf("got %+v, want value 2 version 2 create %d mod %d", got, r1, res.Revision)
		}
		// The same compare again is now stale: a conflict.
		res, err = s.Txn(ctx, &Txn{Compares: []Compare{{Key: "/a", ModRevision: kv.ModRevision}}, Ops: []Op{{Type: OpPut, Key: "/a", Value: []byte("3")}}})
		if err != nil || res.Succeeded {
			t.Fatalf("got %+v %v, want a failed compare", res, err)
		}
	})

	t.Run("failed compare writes nothing", func(t *testing.T) {
		before := s.Revision()
		res, _ := s.Txn(ctx, &Txn{Compares: []Compare{{Key: "/a", ModRevision: Absent}}, Ops: []Op{{Type: OpPut, Key: "/never", Value: []byte("x")}}})
		if res.Succeeded {
			t.Fatal("got success, want failure")
		}
		if kv, _, _ := s.Get(ctx, "/never", ReadOptions{}); kv != nil {
			t.Fatalf("got %+v, want no key", kv)
		}
		if s.Revision() <= before {
			t.Fatalf("got revision %d, want it past %d (the entry still takes an index)", s.Revision(), before)
		}
	})

	t.Run("multi-op txn shares one revision", func(t *testing.T) {
		res, err := s.Txn(ctx, &Txn{Ops: []Op{{Type: OpPut, Key: "/m/1", Value: []byte("x")}, {Type: OpPut, Key: "/m/2", Value: []byte("y")}}})
		if err != nil || !res.Succeeded {
			t.Fatal(res, err)
		}
		kvs, _, _, _ := s.List(ctx, "/m/", ListOptions{})
		if len(kvs) != 2 || kvs[0].ModRevision != res.Revision || kvs[1].ModRevision != res.Revision {
			t.Fatalf("got %v, want two keys at revision %d", keysOf(kvs), res.Revision)
		}
	})

	t.Run("value too large is refused before proposing", func(t *testing.T) {
		_, err := s.Txn(ctx, &Txn{Ops: []Op{{Type: OpPut, Key: "/big", Value: make([]byte, MaxValueSize+1)}}})
		if !errors.Is(err, ErrValueTooLarge) {
			t.Fatalf("got %v, want ErrValueTooLarge", err)
		}
	})
}

func TestListPrefixLimitAndRevision(t *testing.T) {
	s := memStore(t)
	ctx := ctxT(t)
	put(t, s, "/p/a", "1")
	put(t, s, "/p/b", "1")
	rev := put(t, s, "/p/c", "1")
	put(t, s, "/q/a", "1")
	put(t, s, "/p/b", "2")
	del(t, s, "/p/a")
	put(t, s, "/p/d", "1")

	cases := []struct {
		name string
		opts ListOptions
		want string
		more bool
	}{
		{name: "now", want: "/p/b=2 /p/c=1 /p/d=1 "},
		{name: "at an older revision", opts: ListOptions{Revision: rev}, want: "/p/a=1 /p/b=1 /p/c=1 "},
		{name: "limit", opts: ListOptions{Limit: 2}, want: "/p/b=2 /p/c=1 ", more: true},
		{name: "limit at an older revision", opts: ListOptions{Revision: rev, Limit: 2}, want: "/p/a=1 /p/b=1 ", more: true},
		{name: "continue at an older revision", opts: ListOptions{Revision: rev, StartKey: "/p/b\x00", Limit: 2}, want: "/p/c=1 "},
		{name: "continue now", opts: ListOptions{StartKey: "/p/c\x00"}, want: "/p/d=1 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kvs, at, more, err := s.List(ctx, "/p/", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(kvs); got != tc.want || more != tc.more {
				t.Fatalf("got %q more=%v, want %q more=%v", got, more, tc.want, tc.more)
			}
			if tc.opts.Revision != 0 && at != tc.opts.Revision {
				t.Fatalf("got revision %d, want %d", at, tc.opts.Revision)
			}
		})
	}

	t.Run("compacted revision", func(t *testing.T) {
		s.Compact(s.Revision())
		_, _, _, err := s.List(ctx, "/p/", ListOptions{Revision: rev})
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("got %v, want ErrCompacted", err)
		}
	})
}

func collect(t *testing.T, w *Watcher, n int) []*Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []*Event
	for len(out) < n {
		evs, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, evs...)
	}
	return out
}

func TestWatchOrderResumeAndExpiry(t *testing.T) {
	s := memStore(t)
	ctx := ctxT(t)
	start := s.Revision()
	w, err := s.Watch(ctx, "/w/", start)
	if err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for i := 0; i < 50; i++ {
		revs = append(revs, put(t, s, fmt.Sprintf("/w/%02d", i%7), fmt.Sprint(i)))
		put(t, s, "/elsewhere", "x")
	}
	revs = append(revs, del(t, s, "/w/03"))

	evs := collect(t, w, len(revs))
	for i, ev := range evs {
		if ev.Revision() != revs[i] {
			t.Fatalf("event %d: got revision %d, want %d", i, ev.Revision(), revs[i])
		}
	}
	last := evs[len(evs)-1]
	if last.Type != EventDelete || last.Prev == nil || string(last.Prev.Value) != "45" {
		t.Fatalf("got last event %v prev %+v, want a delete carrying the old value 45", last.Type, last.Prev)
	}
	if evs[7].Prev == nil || string(evs[7].Prev.Value) != "0" {
		t.Fatalf("got prev %+v for the second write of /w/00, want value 0", evs[7].Prev)
	}

	t.Run("resume from a revision", func(t *testing.T) {
		w2, err := s.Watch(ctx, "/w/", revs[9])
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, w2, len(revs)-10)
		if got[0].Revision() != revs[10] {
			t.Fatalf("got first revision %d, want %d", got[0].Revision(), revs[10])
		}
	})

	t.Run("watch from a compacted revision expires", func(t *testing.T) {
		s.Compact(revs[20])
		if _, err := s.Watch(ctx, "/w/", revs[5]); !errors.Is(err, ErrCompacted) {
			t.Fatalf("got %v, want ErrCompacted", err)
		}
	})

	t.Run("a watcher that falls behind the window expires", func(t *testing.T) {
		w3, err := s.Watch(ctx, "/w/", s.Revision())
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "/w/late", "1")
		s.Compact(s.Revision())
		if _, err := w3.Next(ctx); !errors.Is(err, ErrCompacted) {
			t.Fatalf("got %v, want ErrCompacted", err)
		}
	})
}

func TestHistoryWindowIsBounded(t *testing.T) {
	st := newState(10, 1<<20)
	var ch changes
	for i := int64(1); i <= 100; i++ {
		st.mu.Lock()
		_, evs := st.applyTxnLocked(i, &Txn{Ops: []Op{{Type: OpPut, Key: "/k", Value: []byte("v")}}}, &ch)
		st.publishLocked(i, evs)
		st.mu.Unlock()
	}
	if n := len(st.hist.live()); n != 10 {
		t.Fatalf("got %d events in the window, want 10", n)
	}
	if st.hist.compactRev != 90 {
		t.Fatalf("got compact revision %d, want 90", st.hist.compactRev)
	}
	if _, err := st.watch("/", 89); !errors.Is(err, ErrCompacted) {
		t.Fatalf("got %v, want ErrCompacted", err)
	}
	if _, err := st.watch("/", 90); err != nil {
		t.Fatalf("got %v, want a watcher from the window's start", err)
	}
}

func TestEventMemoRunsOnce(t *testing.T) {
	ev := &Event{Type: EventPut, Kv: &KeyValue{Key: "/k", ModRevision: 1}}
	calls := 0
	for i := 0; i < 3; i++ {
		if got := ev.Memo(func(*Event) any { calls++; return "decoded" }); got != "decoded" {
			t.Fatalf("got %v, want decoded", got)
		}
	}
	if calls != 1 {
		t.Fatalf("got %d calls, want 1", calls)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	id := requestID{1, 2, 3}
	in := &Txn{
		Compares: []Compare{{Key: "/a", ModRevision: 7}, {Key: "/b", ModRevision: Absent}, {Key: "/c", ModRevision: Present}},
		Ops:      []Op{{Type: OpPut, Key: "/a", Value: []byte("v")}, {Type: OpDelete, Key: "/b"}},
	}
	b := encodeTxn(id, in)
	gotID, out, err := decodeTxn(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id || fmt.Sprint(out.Compares) != fmt.Sprint(in.Compares) || len(out.Ops) != 2 || string(out.Ops[0].Value) != "v" || out.Ops[1].Type != OpDelete {
		t.Fatalf("got %v %+v, want %v %+v", gotID, out, id, in)
	}
	for i := 1; i < len(b)-1; i++ {
		if _, _, err := decodeTxn(b[1:i]); err == nil {
			t.Fatalf("truncated at %d: got no error, want one", i)
		}
	}
}
