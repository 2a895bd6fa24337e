package raftstore

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orch.dev/orch/internal/peerauth"
)

// benchCluster starts three replicas on loopback with real disks, real
// TCP and authenticated peers, as servers run them.
func benchCluster(b *testing.B) []*Node {
	b.Helper()
	key := peerauth.Key("bench-cluster-token")
	var lns []net.Listener
	var servers []Server
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns = append(lns, ln)
		servers = append(servers, Server{ID: fmt.Sprintf("s%d", i), Address: ln.Addr().String()})
	}
	var nodes []*Node
	for i, ln := range lns {
		n, err := Open(Config{ID: servers[i].ID, Dir: b.TempDir(), Listener: ln, PeerKey: key})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		if err := n.Bootstrap(servers); err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, n := range nodes {
			if n.IsLeader() {
				// Leader first: the benchmark writes through it.
				out := []*Node{n}
				for _, o := range nodes {
					if o != n {
						out = append(out, o)
					}
				}
				return out
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runWriters runs b.N operations spread over writers goroutines and
// reports throughput and latency percentiles.
func runWriters(b *testing.B, writers int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkClusterPut measures store-layer writes of ~1 KiB values on a
// three-replica cluster, through the leader, at 1, 16 and 128 writers.
func BenchmarkClusterPut(b *testing.B) {
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			nodes := benchCluster(b)
			leader := nodes[0]
			ctx := context.Background()
			runWriters(b, writers, func(i int) error {
				_, err := leader.Txn(ctx, &Txn{Ops: []Op{{Type: OpPut, Key: fmt.Sprintf("/bench/%06d", i%50000), Value: val}}})
				return err
			})
		})
	}
}

// BenchmarkWatchFanout measures how long a write takes to reach 1,000
// watchers: each op is one write (through the leader) followed by waiting
// until every watcher has received it. On the leader that is the fan-out
// itself; on a follower it adds the time the follower takes to learn of the
// commit (up to two CommitTimeouts when nothing else is written).
func BenchmarkWatchFanout(b *testing.B) {
	for _, where := range []string{"leader", "follower"} {
		b.Run("watchers-on="+where, func(b *testing.B) {
			nodes := benchCluster(b)
			leader := nodes[0]
			watched := leader
			if where == "follower" {
				watched = nodes[1]
			}
			fanout(b, leader, watched)
		})
	}
}

func fanout(b *testing.B, leader, watched *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const watchers = 1000
	var got atomic.Int64
	start := watched.Revision()
	var wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		w, err := watched.Watch(ctx, "/fanout/", start)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				evs, err := w.Next(ctx)
				if err != nil {
					return
				}
				got.Add(int64(len(evs)))
			}
		}()
	}
	val := make([]byte, 1024)
	b.ResetTimer()
	var lat []time.Duration
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		ts := time.Now()
		if _, err := leader.Txn(ctx, &Txn{Ops: []Op{{Type: OpPut, Key: "/fanout/k", Value: val}}}); err != nil {
			b.Fatal(err)
		}
		want := int64(watchers * (i + 1))
		for got.Load() < want {
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(ts))
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	cancel()
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N*watchers)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Microseconds())/1000, "p99-ms")
}
