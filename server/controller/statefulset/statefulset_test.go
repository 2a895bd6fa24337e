package statefulset

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

const ns = "default"

// env is one test's API server, controller and fake kubelet.
type env struct {
	t       *testing.T
	ctx     context.Context
	cs      kubernetes.Interface
	kubelet *testutil.ScriptedKubelet
}

// start runs a controller against a fresh API server with one Ready node,
// n1, and a kubelet that binds pods to it and runs them, until the test
// ends.
func start(t *testing.T) *env {
	t.Helper()
	api := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	f := informers.NewSharedInformerFactory(api.Client, 0)
	c := New(Deps{Client: api.Client, Informers: f, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx) // ends with ctx
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := api.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k := testutil.StartScriptedKubelet(t, api.Client, ns)
	k.BindTo("n1")
	return &env{t: t, ctx: ctx, cs: api.Client, kubelet: k}
}

type setOption func(*appsv1.StatefulSet)

func replicas(n int32) setOption {
	return func(s *appsv1.StatefulSet) { s.Spec.Replicas = &n }
}

func parallel(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }

func partition(n int32) setOption {
	return func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &n}}
	}
}

func (e *env) createSet(name string, opts ...setOption) *appsv1.StatefulSet {
	e.t.Helper()
	labels := map[string]string{"app": name}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			ServiceName: name + "-dns",
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
			},
		},
	}
	for _, o := range opts {
		o(set)
	}
	out, err := e.cs.AppsV1().StatefulSets(ns).Create(e.ctx, set, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// updateSet changes the set with change, retrying on conflicts.
func (e *env) updateSet(name string, change func(*appsv1.StatefulSet)) {
	e.t.Helper()
	testutil.Eventually(e.t, 5*time.Second, func() string {
		set, err := e.cs.AppsV1().StatefulSets(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		change(set)
		if _, err := e.cs.AppsV1().StatefulSets(ns).Update(e.ctx, set, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

func (e *env) getSet(name string) (*appsv1.StatefulSet, error) {
	return e.cs.AppsV1().StatefulSets(ns).Get(e.ctx, name, metav1.GetOptions{})
}

// pods are the set's pods by name.
func (e *env) pods(name string) (map[string]*corev1.Pod, error) {
	l, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	m := map[string]*corev1.Pod{}
	for i := range l.Items {
		m[l.Items[i].Name] = &l.Items[i]
	}
	return m, nil
}

func (e *env) getPod(name string) (*corev1.Pod, error) {
	return e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
}

// waitStatus waits until the set's status, at the current generation,
// satisfies ok.
func (e *env) waitStatus(name, what string, ok func(appsv1.StatefulSetStatus) bool) {
	e.t.Helper()
	testutil.Eventually(e.t, 10*time.Second, func() string {
		set, err := e.getSet(name)
		if err != nil {
			return err.Error()
		}
		if set.Status.ObservedGeneration != set.Generation || !ok(set.Status) {
			return fmt.Sprintf("status %+v at generation %d, want %s", set.Status, set.Generation, what)
		}
		return ""
	})
}

// waitPods waits until the set's pods are exactly want (name to "ready",
// "running" for Running but not Ready, "deleting", or "pending").
func (e *env) waitPods(name string, want map[string]string) map[string]*corev1.Pod {
	e.t.Helper()
	var got map[string]*corev1.Pod
	testutil.Eventually(e.t, 10*time.Second, func() string {
		pods, err := e.pods(name)
		if err != nil {
			return err.Error()
		}
		states := map[string]string{}
		for n, p := range pods {
			states[n] = podState(p)
		}
		if !mapsEqual(states, want) {
			return fmt.Sprintf("pods %v, want %v", states, want)
		}
		got = pods
		return ""
	})
	return got
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func podState(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "deleting"
	case isRunningAndReady(p):
		return "ready"
	case p.Status.Phase == corev1.PodRunning:
		return "running"
	}
	return strings.ToLower(string(p.Status.Phase))
}

// history records every change to the pods of a namespace, in the order
// the API made them, to check orders that polling could miss.
type history struct {
	mu     sync.Mutex
	events []watch.Event
}

func (e *env) record() *history {
	e.t.Helper()
	l, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := e.cs.CoreV1().Pods(ns).Watch(e.ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		e.t.Fatal(err)
	}
	h := &history{}
	for i := range l.Items {
		h.events = append(h.events, watch.Event{Type: watch.Added, Object: &l.Items[i]})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if _, ok := ev.Object.(*corev1.Pod); ok {
				h.mu.Lock()
				h.events = append(h.events, ev)
				h.mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(func() {
		w.Stop()
		<-done
	})
	return h
}

// check replays the history: check sees each change with the pods as they
// were just before it, and says what is wrong ("" when nothing).
func (h *history) check(check func(ev watch.Event, pod *corev1.Pod, before map[string]*corev1.Pod) string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	pods := map[string]*corev1.Pod{}
	var problems []string
	for _, ev := range h.events {
		p := ev.Object.(*corev1.Pod)
		if msg := check(ev, p, pods); msg != "" {
			problems = append(problems, msg)
		}
		if ev.Type == watch.Deleted {
			delete(pods, p.Name)
		} else {
			pods[p.Name] = p
		}
	}
	return problems
}

// createdInOrder checks that each pod NAME-i with i > 0 was created only
// while NAME-(i-1) was Running and Ready.
func createdInOrder(name string) func(watch.Event, *corev1.Pod, map[string]*corev1.Pod) string {
	return func(ev watch.Event, p *corev1.Pod, before map[string]*corev1.Pod) string {
		if ev.Type != watch.Added || before[p.Name] != nil {
			return ""
		}
		var i int
		if _, err := fmt.Sscanf(p.Name, name+"-%d", &i); err != nil || i == 0 {
			return ""
		}
		prev := before[fmt.Sprintf("%s-%d", name, i-1)]
		if prev == nil || prev.DeletionTimestamp != nil || !isRunningAndReady(prev) {
			state := "missing"
			if prev != nil {
				state = podState(prev)
			}
			return fmt.Sprintf("%s created while %s-%d was %s", p.Name, name, i-1, state)
		}
		return ""
	}
}

// deletedInOrder checks that a pod NAME-i started going only when no pod
// of the set with a higher ordinal was left.
func deletedInOrder(name string) func(watch.Event, *corev1.Pod, map[string]*corev1.Pod) string {
	return func(ev watch.Event, p *corev1.Pod, before map[string]*corev1.Pod) string {
		prev := before[p.Name]
		starts := (ev.Type == watch.Modified && p.DeletionTimestamp != nil && prev != nil && prev.DeletionTimestamp == nil) ||
			(ev.Type == watch.Deleted && prev != nil && prev.DeletionTimestamp == nil)
		if !starts {
			return ""
		}
		var i int
		if _, err := fmt.Sscanf(p.Name, name+"-%d", &i); err != nil {
			return ""
		}
		for other := range before {
			var j int
			if _, err := fmt.Sscanf(other, name+"-%d", &j); err == nil && j > i {
				return fmt.Sprintf("%s deleted while %s was still there", p.Name, other)
			}
		}
		return ""
	}
}

func TestOrderedReadyStartsAndStopsInOrder(t *testing.T) {
	e := start(t)
	h := e.record()
	ready := map[string]bool{}
	var mu sync.Mutex
	e.kubelet.SetReady(func(p *corev1.Pod) bool {
		mu.Lock()
		defer mu.Unlock()
		return ready[p.Name]
	})
	makeReady := func(name string) {
		mu.Lock()
		ready[name] = true
		mu.Unlock()
		e.kubelet.SetReady(func(p *corev1.Pod) bool {
			mu.Lock()
			defer mu.Unlock()
			return ready[p.Name]
		})
	}
	e.createSet("web", replicas(3))

	want := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		want[name] = "running"
		e.waitPods("web", want)
		// The controller has seen the pod and still made no other.
		e.waitStatus("web", fmt.Sprintf("%d replicas", i+1), func(st appsv1.StatefulSetStatus) bool { return int(st.Replicas) == i+1 })
		e.waitPods("web", want)
		makeReady(name)
		want[name] = "ready"
	}
	pods := e.waitPods("web", want)
	e.waitStatus("web", "3 ready", func(st appsv1.StatefulSetStatus) bool { return st.ReadyReplicas == 3 && st.AvailableReplicas == 3 })
	for i := range 3 {
		p := pods[fmt.Sprintf("web-%d", i)]
		if got := p.Labels[appsv1.StatefulSetPodNameLabel]; got != p.Name {
			t.Errorf("pod %s: got pod-name label %q, want %q", p.Name, got, p.Name)
		}
		if got := p.Labels[appsv1.PodIndexLabel]; got != fmt.Sprint(i) {
			t.Errorf("pod %s: got pod-index label %q, want %d", p.Name, got, i)
		}
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "web-dns" {
			t.Errorf("pod %s: got hostname %q subdomain %q, want %s and web-dns", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.Name)
		}
		if ref := metav1.GetControllerOf(p); ref == nil || ref.Kind != "StatefulSet" || ref.Name != "web" {
			t.Errorf("pod %s: got controller %+v, want StatefulSet web", p.Name, ref)
		}
	}

	// Scale down: web-2 goes first and the next waits until it is gone.
	e.kubelet.HoldDeletes(true)
	e.updateSet("web", func(s *appsv1.StatefulSet) { *s.Spec.Replicas = 0 })
	e.waitPods("web", map[string]string{"web-0": "ready", "web-1": "ready", "web-2": "deleting"})
	e.waitStatus("web", "web-2 seen terminating", func(st appsv1.StatefulSetStatus) bool { return st.CurrentReplicas == 2 })
	e.waitPods("web", map[string]string{"web-0": "ready", "web-1": "ready", "web-2": "deleting"})
	e.kubelet.HoldDeletes(false)
	e.waitPods("web", map[string]string{})
	e.waitStatus("web", "no replicas", func(st appsv1.StatefulSetStatus) bool { return st.Replicas == 0 })

	for _, p := range h.check(createdInOrder("web")) {
		t.Error(p)
	}
	for _, p := range h.check(deletedInOrder("web")) {
		t.Error(p)
	}
}

func TestParallelCreatesAndDeletesAllAtOnce(t *testing.T) {
	e := start(t)
	e.kubelet.SetReady(func(*corev1.Pod) bool { return false })
	e.createSet("web", replicas(3), parallel)
	e.waitPods("web", map[string]string{"web-0": "running", "web-1": "running", "web-2": "running"})

	e.kubelet.HoldDeletes(true)
	e.updateSet("web", func(s *appsv1.StatefulSet) { *s.Spec.Replicas = 0 })
	e.waitPods("web", map[string]string{"web-0": "deleting", "web-1": "deleting", "web-2": "deleting"})
	e.kubelet.HoldDeletes(false)
	e.waitPods("web", map[string]string{})
}

func TestPartitionedRollingUpdate(t *testing.T) {
	e := start(t)
	e.createSet("web", replicas(4), partition(2))
	e.waitPods("web", map[string]string{"web-0": "ready", "web-1": "ready", "web-2": "ready", "web-3": "ready"})
	var oldRev string
	e.waitStatus("web", "all 4 current", func(st appsv1.StatefulSetStatus) bool {
		oldRev = st.CurrentRevision
		return st.CurrentReplicas == 4 && st.UpdatedReplicas == 4 && st.CurrentRevision == st.UpdateRevision && st.CurrentRevision != ""
	})

	h := e.record()
	e.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
	var newRev string
	e.waitStatus("web", "2 updated, 2 current", func(st appsv1.StatefulSetStatus) bool {
		newRev = st.UpdateRevision
		return st.UpdatedReplicas == 2 && st.CurrentReplicas == 2 && st.ReadyReplicas == 4 && st.CurrentRevision == oldRev && st.UpdateRevision != oldRev
	})
	images := func() map[string]string {
		t.Helper()
		pods, err := e.pods("web")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for n, p := range pods {
			m[n] = p.Spec.Containers[0].Image + " " + revisionLabel(p)
		}
		return m
	}
	want := map[string]string{"web-0": "db:1 " + oldRev, "web-1": "db:1 " + oldRev, "web-2": "db:2 " + newRev, "web-3": "db:2 " + newRev}
	if got := images(); !mapsEqual(got, want) {
		t.Fatalf("got pods %v, want %v", got, want)
	}
	checkUpdateOrder(t, h, newRev, "web-3", "web-2")

	// Below the partition, a pod that goes comes back at the old revision.
	old, err := e.getPod("web-0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		p, err := e.getPod("web-0")
		if err != nil {
			return err.Error()
		}
		if p.UID == old.UID || !isRunningAndReady(p) {
			return fmt.Sprintf("web-0 is %s %s, want a new pod running", p.UID, podState(p))
		}
		return ""
	})
	if got := images(); !mapsEqual(got, want) {
		t.Fatalf("after web-0 was replaced: got pods %v, want %v", got, want)
	}

	h = e.record()
	e.updateSet("web", func(s *appsv1.StatefulSet) { *s.Spec.UpdateStrategy.RollingUpdate.Partition = 0 })
	e.waitStatus("web", "all updated, the new revision current", func(st appsv1.StatefulSetStatus) bool {
		return st.UpdatedReplicas == 4 && st.ReadyReplicas == 4 && st.CurrentRevision == newRev && st.CurrentReplicas == 4
	})
	checkUpdateOrder(t, h, newRev, "web-1", "web-0")
}

// checkUpdateOrder checks that a rolling update deleted the pods in want
// order, each only once the one above ran the new revision and was ready.
func checkUpdateOrder(t *testing.T, h *history, newRev string, want ...string) {
	t.Helper()
	var order []string
	for _, p := range h.check(func(ev watch.Event, p *corev1.Pod, before map[string]*corev1.Pod) string {
		prev := before[p.Name]
		if ev.Type != watch.Modified || p.DeletionTimestamp == nil || prev == nil || prev.DeletionTimestamp != nil {
			return ""
		}
		order = append(order, p.Name)
		var i int
		if _, err := fmt.Sscanf(p.Name, "web-%d", &i); err != nil {
			return err.Error()
		}
		if i == 3 {
			return ""
		}
		above := before[fmt.Sprintf("web-%d", i+1)]
		if above == nil || revisionLabel(above) != newRev || !isRunningAndReady(above) || above.DeletionTimestamp != nil {
			return fmt.Sprintf("%s deleted before web-%d ran the new revision and was ready", p.Name, i+1)
		}
		return ""
	}) {
		t.Error(p)
	}
	if !slices.Equal(order, want) {
		t.Errorf("got pods deleted for the update in order %v, want %v", order, want)
	}
}

func TestPodIsNeverReplacedWhileItMayRun(t *testing.T) {
	cases := []struct {
		name string
		// release ends the old pod: the way its deletion completes.
		release func(e *env)
	}{
		{name: "an operator force-deletes it", release: func(e *env) {
			// What orchctl delete pod web-0 --grace-period 0 --force sends.
			zero := int64(0)
			if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "its node's agent comes back and stops it", release: func(e *env) { e.kubelet.HoldDeletes(false) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			e.createSet("web", replicas(1))
			e.waitPods("web", map[string]string{"web-0": "ready"})
			old, err := e.getPod("web-0")
			if err != nil {
				t.Fatal(err)
			}
			// The node is lost: its agent will not confirm the pod stopped.
			e.kubelet.HoldDeletes(true)
			if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.waitStatus("web", "web-0 seen terminating", func(st appsv1.StatefulSetStatus) bool {
				if p, err := e.getPod("web-0"); err != nil || p.UID != old.UID {
					return true // replaced: the check below says so
				}
				return st.CurrentReplicas == 0 && st.Replicas == 1
			})
			p, err := e.getPod("web-0")
			if err != nil {
				t.Fatalf("web-0: %v, want the terminating pod kept", err)
			}
			if p.UID != old.UID || p.DeletionTimestamp == nil {
				t.Fatalf("web-0 is %s (deleting: %v), want the old pod %s still terminating", p.UID, p.DeletionTimestamp != nil, old.UID)
			}

			tc.release(e)
			e.kubelet.HoldDeletes(false)
			testutil.Eventually(t, 10*time.Second, func() string {
				p, err := e.getPod("web-0")
				if err != nil {
					return err.Error()
				}
				if p.UID == old.UID || !isRunningAndReady(p) {
					return fmt.Sprintf("web-0 is %s %s, want a new pod running", p.UID, podState(p))
				}
				return ""
			})
		})
	}
}

func TestFailedPodIsRecreatedUnderItsName(t *testing.T) {
	e := start(t)
	e.createSet("web", replicas(2))
	e.waitPods("web", map[string]string{"web-0": "ready", "web-1": "ready"})
	old, err := e.getPod("web-1")
	if err != nil {
		t.Fatal(err)
	}
	failed := old.DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, failed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		p, err := e.getPod("web-1")
		if err != nil {
			return err.Error()
		}
		if p.UID == old.UID || !isRunningAndReady(p) {
			return fmt.Sprintf("web-1 is %s %s, want a new pod running", p.UID, podState(p))
		}
		return ""
	})
}

func TestVolumeClaimTemplatesMakeClaimsThatOutliveThePods(t *testing.T) {
	e := start(t)
	e.createSet("web", replicas(2), func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"tier": "db"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	pods := e.waitPods("web", map[string]string{"web-0": "ready", "web-1": "ready"})
	uids := map[string]string{}
	for _, name := range []string{"web-0", "web-1"} {
		var claim string
		for _, v := range pods[name].Spec.Volumes {
			if v.Name == "data" && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		if want := "data-" + name; claim != want {
			t.Fatalf("pod %s: got claim %q for volume data, want %s", name, claim, want)
		}
		pvc, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim %s: %v", claim, err)
		}
		if pvc.Labels["tier"] != "db" || len(pvc.OwnerReferences) != 0 {
			t.Errorf("claim %s: labels %v, owners %v; want the template's labels and no owner", claim, pvc.Labels, pvc.OwnerReferences)
		}
		if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
			t.Errorf("claim %s requests %s, want 1Gi", claim, q.String())
		}
		uids[claim] = string(pvc.UID)
	}
	// A replacement pod reuses its predecessor's claim.
	old := pods["web-0"]
	if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		p, err := e.getPod("web-0")
		if err != nil {
			return err.Error()
		}
		if p.UID == old.UID {
			return "web-0 not replaced yet"
		}
		return ""
	})
	pvc, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, "data-web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(pvc.UID) != uids["data-web-0"] {
		t.Fatalf("claim data-web-0 was replaced (uid %s, was %s)", pvc.UID, uids["data-web-0"])
	}
}

func TestOrdinalOf(t *testing.T) {
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	cases := []struct {
		pod  string
		want int
		ok   bool
	}{
		{"web-0", 0, true},
		{"web-12", 12, true},
		{"web-", 0, false},
		{"web-01", 0, false},
		{"web-1a", 0, false},
		{"web-x-1", 0, false},
		{"webby-1", 0, false},
		{"web-99999999999999999999", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.pod, func(t *testing.T) {
			got, ok := ordinalOf(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.pod}})
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %d, %v, want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
