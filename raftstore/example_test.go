package raftstore_test

import (
	"context"
	"fmt"
	"log"

	"orch.dev/orch/raftstore"
)

// A create-if-absent, a conditional update that loses to a newer write,
// and a watch that sees both writes in order.
func Example() {
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	start := store.Revision()
	create := &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: "/cm/a", ModRevision: raftstore.Absent}},
		Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: "/cm/a", Value: []byte("v1")}},
	}
	res, _ := store.Txn(ctx, create)
	fmt.Println("created:", res.Succeeded)

	update := func(seen int64, v string) bool {
		res, _ := store.Txn(ctx, &raftstore.Txn{
			Compares: []raftstore.Compare{{Key: "/cm/a", ModRevision: seen}},
			Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: "/cm/a", Value: []byte(v)}},
		})
		return res.Succeeded
	}
	fmt.Println("update from the current revision:", update(res.Revision, "v2"))
	fmt.Println("update from a stale revision:", update(res.Revision, "v3"))

	kv, _, _ := store.Get(ctx, "/cm/a", raftstore.ReadOptions{Linearizable: true})
	fmt.Printf("now: %s (version %d)\n", kv.Value, kv.Version)

	w, _ := store.Watch(ctx, "/cm/", start)
	for seen := 0; seen < 2; {
		evs, _ := w.Next(ctx)
		for _, ev := range evs {
			fmt.Println("event:", ev.Type, ev.Kv.Key, string(ev.Kv.Value))
			seen++
		}
	}
	// Output:
	// created: true
	// update from the current revision: true
	// update from a stale revision: false
	// now: v2 (version 2)
	// event: PUT /cm/a v1
	// event: PUT /cm/a v2
}
