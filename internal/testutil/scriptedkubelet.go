package testutil

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// ScriptedKubelet plays the node agents in the tests of workload
// controllers, which run without nodes. For the pods of one namespace it
// reports pods on a node Running, and Ready or not as the test's script
// decides (a pod not Ready is reported crash-looping); it finishes the
// deletion of pods being deleted, as an agent does once their containers
// stopped; and, when told a node to bind to, it binds pods no scheduler
// placed. Pods that finished (Succeeded or Failed) are left alone.
type ScriptedKubelet struct {
	client kubernetes.Interface
	lister corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	ready   func(*corev1.Pod) bool
	hold    bool            // pods being deleted stay Terminating
	stopped map[string]bool // nodes whose pods are left alone
	bindTo  string
}

// StartScriptedKubelet starts a scripted kubelet for the pods of namespace
// ns, with every pod Ready and no binding; it stops when the test ends.
func StartScriptedKubelet(t testing.TB, client kubernetes.Interface, ns string) *ScriptedKubelet {
	t.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods()
	k := &ScriptedKubelet{
		client:  client,
		lister:  inf.Lister(),
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		ready:   func(*corev1.Pod) bool { return true },
		stopped: map[string]bool{},
	}
	add := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc: add, UpdateFunc: func(_, obj any) { add(obj) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
			return
		}
		for k.next(ctx) {
		}
	}()
	t.Cleanup(func() {
		cancel()
		k.queue.ShutDown()
		wg.Wait()
		f.Shutdown()
	})
	return k
}

// SetReady sets which pods are Ready and reports every pod again.
func (k *ScriptedKubelet) SetReady(ready func(*corev1.Pod) bool) {
	k.mu.Lock()
	k.ready = ready
	k.mu.Unlock()
	k.requeueAll()
}

// BindTo makes the kubelet bind pods without a node to node ("" stops it).
func (k *ScriptedKubelet) BindTo(node string) {
	k.mu.Lock()
	k.bindTo = node
	k.mu.Unlock()
	k.requeueAll()
}

// HoldDeletes keeps pods being deleted Terminating (hold) or lets them go.
func (k *ScriptedKubelet) HoldDeletes(hold bool) {
	k.mu.Lock()
	k.hold = hold
	k.mu.Unlock()
	k.requeueAll()
}

// StopNode makes the kubelet of node go away: its pods are no longer
// reported on, nor their deletions finished.
func (k *ScriptedKubelet) StopNode(node string) {
	k.mu.Lock()
	k.stopped[node] = true
	k.mu.Unlock()
}

func (k *ScriptedKubelet) requeueAll() {
	pods, err := k.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		k.queue.Add(p.Namespace + "/" + p.Name)
	}
}

func (k *ScriptedKubelet) next(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	if err := k.sync(ctx, key); err != nil && ctx.Err() == nil {
		k.queue.AddRateLimited(key)
		return true
	}
	k.queue.Forget(key)
	return true
}

func (k *ScriptedKubelet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	ready, hold, stopped, bindTo := k.ready, k.hold, k.stopped[pod.Spec.NodeName], k.bindTo
	k.mu.Unlock()
	pods := k.client.CoreV1().Pods(ns)
	switch {
	case stopped:
		return nil
	case pod.DeletionTimestamp != nil:
		if hold && pod.Spec.NodeName != "" {
			return nil
		}
		zero := int64(0)
		uid := pod.UID
		err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	case pod.Spec.NodeName == "":
		if bindTo == "" {
			return nil
		}
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name, UID: pod.UID}, Target: corev1.ObjectReference{Kind: "Node", Name: bindTo}}
		err := pods.Bind(ctx, b, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or bound meanwhile: the update brings it back
		}
		return err
	}
	isReady := ready(pod)
	want := corev1.ConditionFalse
	if isReady {
		want = corev1.ConditionTrue
	}
	if pod.Status.Phase == corev1.PodRunning && scriptedReadyStatus(pod) == want {
		return nil
	}
	cp := pod.DeepCopy()
	now := metav1.Now()
	cp.Status.Phase = corev1.PodRunning
	if cp.Status.StartTime == nil {
		cp.Status.StartTime = &now
	}
	scriptedSetCondition(&cp.Status, corev1.PodCondition{Type: corev1.PodReady, Status: want, LastTransitionTime: now})
	scriptedSetCondition(&cp.Status, corev1.PodCondition{Type: corev1.ContainersReady, Status: want, LastTransitionTime: now})
	cp.Status.ContainerStatuses = nil
	for _, c := range cp.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Ready: isReady, Started: &isReady}
		if isReady {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		} else {
			cs.RestartCount = 3
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting failed container"}
		}
		cp.Status.ContainerStatuses = append(cp.Status.ContainerStatuses, cs)
	}
	_, err = pods.UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func scriptedReadyStatus(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func scriptedSetCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status != c.Status {
				st.Conditions[i] = c
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}
