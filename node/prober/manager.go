package prober

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Spec describes a running container to probe.
type Spec struct {
	// PodUID groups a pod's containers, for StopPod and Retain.
	PodUID string
	// ContainerID is the engine's ID of the running container: a restarted
	// container is a new one, probed from scratch.
	ContainerID string
	Container   *corev1.Container
	PodIP       string
	StartedAt   time.Time
	// Changed is called, from the prober's goroutine, after the
	// container's Status changed.
	Changed func()
	// Event records an event about the pod.
	Event func(eventType, reason, message string)
}

// Manager keeps one prober goroutine per running container that has
// probes.
type Manager struct {
	runner *Runner
	clock  clock.Clock

	mu      sync.Mutex
	workers map[string]*worker // by container ID
}

type worker struct {
	spec   Spec
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	machine *Machine
}

// NewManager returns a manager running probes with r, timed by clk (nil:
// the real clock).
func NewManager(r *Runner, clk clock.Clock) *Manager {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{runner: r, clock: clk, workers: map[string]*worker{}}
}

// Runner returns the manager's runner, for lifecycle hooks.
func (m *Manager) Runner() *Runner { return m.runner }

// Ensure starts probing the container unless it is probed already or has
// no probes. The prober stops with ctx, Stop, StopPod or Retain.
func (m *Manager) Ensure(ctx context.Context, s Spec) {
	probes := ProbesOf(s.Container)
	if !probes.Any() || s.ContainerID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workers[s.ContainerID]; ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &worker{spec: s, cancel: cancel, done: make(chan struct{}), machine: NewMachine(probes, s.StartedAt)}
	m.workers[s.ContainerID] = w
	go func() {
		defer close(w.done)
		m.run(ctx, w)
	}()
}

// Status returns what the container's probes say, and false when it is
// not probed.
func (m *Manager) Status(containerID string) (Status, bool) {
	m.mu.Lock()
	w := m.workers[containerID]
	m.mu.Unlock()
	if w == nil {
		return Status{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.machine.Status(), true
}

// Stop stops probing a container and waits until no probe of it runs.
func (m *Manager) Stop(containerID string) {
	m.mu.Lock()
	w := m.workers[containerID]
	delete(m.workers, containerID)
	m.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// StopPod stops probing every container of a pod.
func (m *Manager) StopPod(podUID string) { m.Retain(podUID, nil) }

// Retain stops probing the pod's containers other than those in keep.
func (m *Manager) Retain(podUID string, keep map[string]bool) {
	m.mu.Lock()
	var stop []*worker
	for id, w := range m.workers {
		if w.spec.PodUID == podUID && !keep[id] {
			stop = append(stop, w)
			delete(m.workers, id)
		}
	}
	m.mu.Unlock()
	for _, w := range stop {
		w.cancel()
	}
	for _, w := range stop {
		<-w.done
	}
}

// Len returns how many containers are probed.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

// run probes one container whenever a probe is due, until ctx ends. Due
// probes run side by side; their results are applied in a fixed order.
func (m *Manager) run(ctx context.Context, w *worker) {
	target := Target{PodIP: w.spec.PodIP, ContainerID: w.spec.ContainerID, Ports: w.spec.Container.Ports}
	for {
		w.mu.Lock()
		next := w.machine.Next()
		w.mu.Unlock()
		if next.IsZero() {
			<-ctx.Done() // nothing more to probe: wait to be stopped
			return
		}
		if d := next.Sub(m.clock.Now()); d > 0 {
			t := m.clock.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		now := m.clock.Now()
		w.mu.Lock()
		due := w.machine.Due(now)
		specs := make([]*corev1.Probe, len(due))
		for i, k := range due {
			specs[i] = w.machine.Spec(k)
		}
		w.mu.Unlock()
		results := make([]Result, len(due))
		var wg sync.WaitGroup
		for i := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = m.runner.Probe(ctx, specs[i], target)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return // stopped while probing: the results may be about a dying container
		}
		changed := false
		var events []string
		w.mu.Lock()
		for i, k := range due {
			ch := w.machine.Record(now, k, results[i])
			changed = changed || ch.Status
			if ch.Event != "" {
				events = append(events, ch.Event)
			}
		}
		w.mu.Unlock()
		if w.spec.Event != nil {
			for _, e := range events {
				w.spec.Event(corev1.EventTypeWarning, "Unhealthy", e)
			}
		}
		if changed && w.spec.Changed != nil {
			w.spec.Changed()
		}
	}
}
