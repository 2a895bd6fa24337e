package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"orch.dev/orch/internal/testutil"
)

// startDev runs `orchd dev` with its own ports and data directory (and no
// ~/.orch/config) and returns a client once its node is Ready.
func startDev(b *testing.B) (*kubernetes.Clientset, string) {
	b.Helper()
	testutil.RequireDocker(b)
	testutil.EnsureImages(b)
	dir := b.TempDir()
	name := fmt.Sprintf("bench%04d", time.Now().UnixNano()%10000)
	p := &proc{t: b, name: name, dir: dir, api: freePort(b), logPath: filepath.Join(dir, "orchd.log")}
	p.args = []string{"dev", "--data-dir", dir, "--name", name, "--kubeconfig", "",
		"--api-addr", addr(p.api), "--raft-addr", addr(freePort(b)), "--gossip-addr", addr(freePort(b)),
		"--agent-gossip-addr", addr(freePort(b)), "--endpoint-addr", addr(freePort(b)),
		// A pod network of its own, apart from other clusters on the machine.
		"--cluster-cidr", fmt.Sprintf("10.%d.0.0/16", 100+time.Now().UnixNano()%90)}
	b.Cleanup(func() {
		if b.Failed() {
			p.dumpLog()
		}
		_ = os.Remove(filepath.Join(dir, "orchd.log")) // keep TempDir cleanup quiet
	})
	// Cleanups run last first: the process stops, its containers go, then
	// its pod network.
	b.Cleanup(func() {
		if out, err := exec.Command("docker", "network", "rm", "orch-"+name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such network") && !strings.Contains(string(out), "not found") {
			b.Errorf("remove network orch-%s: %v %s", name, err, out)
		}
	})
	testutil.CleanupDocker(b, "orch.node", name)
	p.start()
	b.Cleanup(p.kill)
	kc := filepath.Join(dir, "admin.kubeconfig")
	var cs *kubernetes.Clientset
	testutil.Eventually(b, 60*time.Second, func() string {
		cfg, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			return "no admin config yet"
		}
		cfg.QPS = -1
		if cs, err = kubernetes.NewForConfig(cfg); err != nil {
			return err.Error()
		}
		n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return ""
			}
		}
		return "node not Ready"
	})
	return cs, name
}

// BenchmarkPodStartup measures pod create to phase Running on a dev cluster
// (orchd dev: a server and an agent in one process) with the image present,
// for one pod at a time and for 50 pods created at once.
func BenchmarkPodStartup(b *testing.B) {
	cs, _ := startDev(b)
	for _, batch := range []int{1, 50} {
		b.Run(fmt.Sprintf("pods=%d", batch), func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				lat = append(lat, startBatch(b, cs, fmt.Sprintf("b%d-%d", batch, i), batch)...)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Milliseconds()) }
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

// startBatch creates n pods at once and returns each one's time from its
// create request to the watch showing it Running, then deletes them.
func startBatch(b *testing.B, cs *kubernetes.Clientset, prefix string, n int) []time.Duration {
	ctx := context.Background()
	sel := "batch=" + prefix
	l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		b.Fatal(err)
	}
	lastRV := l.ResourceVersion
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: lastRV})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { w.Stop() }()
	start := make([]time.Time, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.StartTimer()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Labels: map[string]string{"batch": prefix}},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64), Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}}}
			mu.Lock()
			start[i] = time.Now()
			mu.Unlock()
			if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		}(i)
	}
	running := map[string]time.Duration{}
	timeout := time.After(2 * time.Minute)
	for len(running) < n {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				// The server ended the watch; resume from the last
				// revision seen so no transition is missed.
				b.Logf("pod watch closed after %d of %d pods; resuming from %s", len(running), n, lastRV)
				nw, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: lastRV})
				if err != nil {
					b.Fatal(err)
				}
				w = nw
				continue
			}
			if ev.Type == watch.Error {
				b.Logf("pod watch error: %v", apierrors.FromObject(ev.Object))
				continue
			}
			p, ok := ev.Object.(*corev1.Pod)
			if ok {
				lastRV = p.ResourceVersion
			}
			if !ok || ev.Type == watch.Deleted || p.Status.Phase != corev1.PodRunning {
				continue
			}
			if _, done := running[p.Name]; !done {
				var idx int
				fmt.Sscanf(p.Name[len(prefix)+1:], "%d", &idx)
				mu.Lock()
				running[p.Name] = time.Since(start[idx])
				mu.Unlock()
			}
		case <-timeout:
			b.Fatalf("%d of %d pods Running after 2 minutes", len(running), n)
		}
	}
	b.StopTimer()
	wg.Wait()
	zero := int64(0)
	if err := cs.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		b.Fatal(err)
	}
	testutil.Eventually(b, 60*time.Second, func() string {
		l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err.Error()
		}
		if len(l.Items) > 0 {
			return fmt.Sprintf("%d pods of the batch still there", len(l.Items))
		}
		return ""
	})
	out := make([]time.Duration, 0, n)
	for _, d := range running {
		out = append(out, d)
	}
	return out
}
