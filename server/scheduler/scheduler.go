package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// DefaultSchedulerName is the spec.schedulerName of the pods the
// scheduler places unless told otherwise; the API defaults pods to it.
const DefaultSchedulerName = corev1.DefaultSchedulerName

const (
	defaultBinders = 128
	// reporters write events and conditions; enough of them that the
	// Scheduled events keep pace with the binders (each pod costs one of
	// each), with room to queue a burst of 10,000 before any is dropped.
	reporters         = 64
	reportQueueLength = 16384
)

// Deps are what the scheduler needs.
type Deps struct {
	Client kubernetes.Interface
	Logger *slog.Logger
	// Clock times back-offs and events; tests inject a fake one. Default:
	// the real clock.
	Clock clock.Clock
	// SchedulerName selects the pods to place (those naming it in
	// spec.schedulerName, or naming none) and is the source of the
	// events; default DefaultSchedulerName.
	SchedulerName string
	// Binders is how many bindings may be in flight at once; default 128.
	// A binding is a round trip through the API and the Raft log: with one
	// at a time the scheduler manages under 900 pods/s on a 2-core
	// machine, with 128 the store batches them and it manages 2,000+.
	Binders int
}

// Scheduler assigns pending pods to nodes.
type Scheduler struct {
	deps    Deps
	log     *slog.Logger
	factory informers.SharedInformerFactory
	synced  []toolscache.InformerSynced
	cache   *cache
	queue   *schedulingQueue
	reports *reporter
	picker  picker
	vols    *volumes
}

// New builds the scheduler; Run starts it. A Scheduler runs once.
func New(deps Deps) *Scheduler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.SchedulerName == "" {
		deps.SchedulerName = DefaultSchedulerName
	}
	if deps.Binders <= 0 {
		deps.Binders = defaultBinders
	}
	factory := informers.NewSharedInformerFactory(deps.Client, 0)
	s := &Scheduler{
		deps:    deps,
		log:     deps.Logger,
		factory: factory,
		cache:   newCache(),
		queue:   newSchedulingQueue(deps.Clock),
		reports: newReporter(deps.Client, deps.SchedulerName, deps.Clock, deps.Logger, reportQueueLength),
		picker:  picker{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))},
	}
	nodes := factory.Core().V1().Nodes().Informer()
	pods := factory.Core().V1().Pods().Informer()
	claims := factory.Core().V1().PersistentVolumeClaims()
	pvs := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	s.vols = &volumes{claims: claims.Lister(), pvs: pvs.Lister(), classes: classes.Lister(), chosen: map[string]string{}}
	s.synced = []toolscache.InformerSynced{nodes.HasSynced, pods.HasSynced,
		claims.Informer().HasSynced, pvs.Informer().HasSynced, classes.Informer().HasSynced}
	// A change to a claim, volume or class may cure a pod waiting for
	// its volumes.
	volumeChanged := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.Move(failVolume) },
		UpdateFunc: func(_, obj any) { s.vols.claimChanged(obj); s.queue.Move(failVolume) },
		DeleteFunc: func(obj any) { s.vols.claimChanged(obj); s.queue.Move(failVolume) },
	}
	for _, inf := range []toolscache.SharedIndexInformer{claims.Informer(), pvs.Informer(), classes.Informer()} {
		_, _ = inf.AddEventHandler(volumeChanged) // the registration handle is not needed
	}
	// Handlers only update the cache and the queue; decisions are made
	// by the scheduling loop.
	_, _ = nodes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc:    s.addNode,
		UpdateFunc: s.updateNode,
		DeleteFunc: s.deleteNode,
	})
	_, _ = pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc:    s.addPod,
		UpdateFunc: s.updatePod,
		DeleteFunc: s.deletePod,
	})
	return s
}

// Run schedules pods until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	defer s.factory.Shutdown()
	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return ctx.Err()
	}
	s.log.Info("scheduler started", "scheduler", s.deps.SchedulerName, "binders", s.deps.Binders)

	var reporting, binding sync.WaitGroup
	for range reporters {
		reporting.Go(func() { s.reports.run(ctx) })
	}
	binds := make(chan bindTask, s.deps.Binders)
	for range s.deps.Binders {
		binding.Go(func() { s.runBinder(ctx, binds) })
	}
	for {
		pod, ok := s.queue.Pop(ctx)
		if !ok {
			break
		}
		s.scheduleOne(ctx, pod, binds)
	}
	// Binders report, so they stop first.
	close(binds)
	binding.Wait()
	s.reports.close()
	reporting.Wait()
	return nil
}

// scheduleOne decides where pod goes and hands the binding to a binder.
func (s *Scheduler) scheduleOne(ctx context.Context, pod *corev1.Pod, binds chan<- bindTask) {
	// A pod the cache holds is already placed: a stale copy queued again
	// while its binding was on the way.
	if !s.responsibleFor(pod) || s.cache.has(pod.UID) {
		s.queue.Done(pod.UID)
		return
	}
	info := newPodInfo(pod)
	toSelect, volMsg := s.vols.resolve(info)
	if volMsg != "" {
		s.cache.mu.Lock()
		nodes := len(s.cache.candidates)
		s.cache.mu.Unlock()
		msg := fmt.Sprintf("0/%d nodes are available: %s.", nodes, volMsg)
		if s.queue.Unschedulable(pod, failVolume, msg) {
			s.log.Info("pod's volumes are not ready", "ns", pod.Namespace, "pod", pod.Name, "reason", msg)
			s.reports.event(pod, corev1.EventTypeWarning, reasonFailedScheduling, msg)
		}
		s.reports.unschedulable(pod, msg)
		return
	}
	node, fitErr := s.place(info)
	if fitErr != nil {
		msg := fitErr.Error()
		if s.queue.Unschedulable(pod, fitErr.kinds, msg) {
			s.log.Info("pod does not fit on any node", "ns", pod.Namespace, "pod", pod.Name, "reason", msg)
			s.reports.event(pod, corev1.EventTypeWarning, reasonFailedScheduling, msg)
		}
		s.reports.unschedulable(pod, msg)
		return
	}
	if len(toSelect) > 0 {
		s.vols.choose(toSelect, node)
	}
	select {
	case binds <- bindTask{pod: pod, node: node, claims: toSelect}:
	case <-ctx.Done():
		s.vols.forget(toSelect)
		s.cache.forget(pod.UID)
	}
}

// place picks a node for the pod and assumes it there, in one step so no
// other change to the cache comes between.
func (s *Scheduler) place(info *podInfo) (string, *fitError) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	n, fitErr := s.picker.pick(info, s.cache.candidates)
	if fitErr != nil {
		return "", fitErr
	}
	s.cache.assumeLocked(info, n.name)
	return n.name, nil
}

// responsibleFor reports whether the pod is this scheduler's to place now.
func (s *Scheduler) responsibleFor(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == s.deps.SchedulerName) &&
		pod.DeletionTimestamp == nil && !terminated(pod)
}

func (s *Scheduler) addNode(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	s.cache.setNode(node)
	s.queue.Move(failAll)
}

func (s *Scheduler) updateNode(oldObj, obj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := obj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.setNode(node)
	if kinds := nodeChanges(old, node); kinds != 0 {
		s.queue.Move(kinds)
	}
}

// nodeChanges says which failures a node update may cure. Heartbeats and
// other status noise cure nothing and wake no pod.
func nodeChanges(old, node *corev1.Node) failureKind {
	var kinds failureKind
	if notReadyReason(old) != "" && notReadyReason(node) == "" {
		kinds |= failNotReady
	}
	if old.Spec.Unschedulable && !node.Spec.Unschedulable {
		kinds |= failUnschedulable
	}
	if !equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) {
		kinds |= failTaint
	}
	if !maps.Equal(old.Labels, node.Labels) {
		kinds |= failAffinity
	}
	if !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		kinds |= failResources
	}
	return kinds
}

func (s *Scheduler) deleteNode(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.removeNode(node.Name)
	}
}

func (s *Scheduler) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.Spec.NodeName != "" {
		if s.cache.setPod(pod) {
			s.queue.Move(failResources | failPorts)
		}
		return
	}
	if s.responsibleFor(pod) && !s.cache.has(pod.UID) {
		s.queue.Add(pod)
	}
}

func (s *Scheduler) updatePod(oldObj, obj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := obj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	if pod.Spec.NodeName != "" {
		if old.Spec.NodeName == "" {
			s.queue.Delete(pod.UID)
		}
		if s.cache.setPod(pod) {
			s.queue.Move(failResources | failPorts)
		}
		return
	}
	switch {
	case !s.responsibleFor(pod):
		s.queue.Delete(pod.UID)
	case !s.cache.has(pod.UID):
		s.queue.Update(old, pod)
	}
}

func (s *Scheduler) deletePod(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.queue.Delete(pod.UID)
	if s.cache.removePod(pod.UID) {
		s.queue.Move(failResources | failPorts)
	}
}
