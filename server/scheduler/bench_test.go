package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"orch.dev/orch/server/api/apitest"
)

// BenchmarkSchedule measures scheduling and binding throughput: 10,000
// small pods over 500 Ready nodes, on an API server whose Raft log is
// fsynced. Nodes and pods are created first, untimed; the time runs from
// starting the scheduler until a watcher has seen every pod bound. It
// also reports when the last Scheduled event was written.
//
//	go test -run XXX -bench Schedule -benchtime 1x -count 3 ./server/scheduler/
func BenchmarkSchedule(b *testing.B) {
	const nodeCount, podCount = 500, 10000
	var elapsed, eventsElapsed time.Duration
	var dropped uint64
	for range b.N {
		b.StopTimer()
		env := apitest.StartOnDisk(b)
		ctx, cancel := context.WithCancel(context.Background())
		createMany(b, nodeCount, func(i int) error {
			_, err := env.Client.CoreV1().Nodes().Create(ctx, benchNode(fmt.Sprintf("node-%03d", i)), metav1.CreateOptions{})
			return err
		})
		createMany(b, podCount, func(i int) error {
			_, err := env.Client.CoreV1().Pods("default").Create(ctx, benchPod(fmt.Sprintf("pod-%05d", i)), metav1.CreateOptions{})
			return err
		})
		bound := watchBound(b, ctx, env.Client)

		s := New(Deps{Client: env.Client, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		for bound.Load() < podCount {
			select {
			case err := <-done:
				b.Fatalf("scheduler stopped early: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		elapsed += time.Since(start)
		b.StopTimer()
		// The Scheduled events trail the bindings: they share the store's
		// write capacity, and the binders come first.
		for s.reports.posted.Load()+s.reports.dropped.Load() < podCount {
			select {
			case err := <-done:
				b.Fatalf("scheduler stopped early: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		eventsElapsed += time.Since(start)
		dropped += s.reports.dropped.Load()
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("Run: %v", err)
		}
	}
	b.ReportMetric(float64(podCount*b.N)/elapsed.Seconds(), "pods/s")
	b.ReportMetric(eventsElapsed.Seconds()/float64(b.N), "s-until-events")
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped-events/op")
}

// createMany calls create for 0..n-1 from 64 goroutines.
func createMany(b *testing.B, n int, create func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := create(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// watchBound counts the pods seen with a node, through an informer of its
// own (started and synced before the clock runs).
func watchBound(b *testing.B, ctx context.Context, cs kubernetes.Interface) *atomic.Int64 {
	b.Helper()
	var bound atomic.Int64
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if obj.(*corev1.Pod).Spec.NodeName != "" {
				bound.Add(1)
			}
		},
		UpdateFunc: func(old, obj any) {
			if old.(*corev1.Pod).Spec.NodeName == "" && obj.(*corev1.Pod).Spec.NodeName != "" {
				bound.Add(1)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	b.Cleanup(factory.Shutdown)
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		b.Fatal("the watching informer did not sync")
	}
	return &bound
}

func benchNode(name string) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "orch/hello:dev",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			}},
		}}},
	}
}
