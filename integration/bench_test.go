package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// report prints throughput and latency percentiles as benchmark metrics.
func report(b *testing.B, lat []time.Duration, elapsed time.Duration, unit string) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), unit)
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkAPICreate creates ConfigMaps holding ~1 KiB of data through
// client-go, against the leader of a three-server cluster of real orchd
// processes on loopback, at 1, 16 and 128 concurrent writers.
func BenchmarkAPICreate(b *testing.B) {
	data := map[string]string{"payload": strings.Repeat("x", 1000)}
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			// A fresh cluster per run, so each starts from the same state size.
			c := startCluster(b, 3)
			leader := c.procs[c.leader()]
			cs := leader.client()
			if os.Getenv("ORCH_BENCH_PPROF") != "" {
				fmt.Fprintf(os.Stderr, "leader pprof: http://127.0.0.1:%d/debug/pprof/\n", leader.debug)
			}
			ns := fmt.Sprintf("bench-%d", writers)
			if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			runCreates(b, cs, ns, writers, data)
		})
	}
}

func runCreates(b *testing.B, cs *kubernetes.Clientset, ns string, writers int, data map[string]string) {
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%07d", i)}, Data: data}
				t0 := time.Now()
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
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
	report(b, all, elapsed, "creates/s")
}

// BenchmarkFailover kills the leader of a three-server cluster with SIGKILL
// and measures the time until a write through a surviving server is
// acknowledged; the killed server is restarted between rounds.
func BenchmarkFailover(b *testing.B) {
	c := startCluster(b, 3)
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		leader := c.leader()
		survivor := c.procs[(leader+1)%3]
		cs := survivor.client()
		if _, err := create(b, cs, fmt.Sprintf("warm-%d", i), 10*time.Second); err != nil {
			b.Fatal(err)
		}
		killed := c.procs[leader]
		killed.kill()
		start := time.Now()
		for j := 0; ; j++ {
			if _, err := create(b, cs, fmt.Sprintf("failover-%d-%d", i, j), time.Second); err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("no write succeeded within 30s of killing the leader")
			}
		}
		lat = append(lat, time.Since(start))
		killed.start()
		c.waitReady()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}
