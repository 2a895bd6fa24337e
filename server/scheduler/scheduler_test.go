package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// cluster is a real API server with the scheduler running against it.
type cluster struct {
	t   *testing.T
	env *apitest.Env
	ctx context.Context
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	s := New(Deps{Client: env.Client, Logger: logging.Discard})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return &cluster{t: t, env: env, ctx: ctx}
}

func (c *cluster) createNode(node *corev1.Node) {
	c.t.Helper()
	if _, err := c.env.Client.CoreV1().Nodes().Create(c.ctx, node, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) createPod(pod *corev1.Pod) {
	c.t.Helper()
	pod = pod.DeepCopy()
	pod.UID = "" // the API assigns it
	if _, err := c.env.Client.CoreV1().Pods(pod.Namespace).Create(c.ctx, pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// waitBound waits until the pod is on a node and returns the node.
func (c *cluster) waitBound(name string) string {
	c.t.Helper()
	var node string
	testutil.Eventually(c.t, 20*time.Second, func() string {
		p, err := c.env.Client.CoreV1().Pods("default").Get(c.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if p.Spec.NodeName == "" {
			return fmt.Sprintf("pod %s is not bound yet (conditions %+v)", name, p.Status.Conditions)
		}
		node = p.Spec.NodeName
		return ""
	})
	return node
}

// placement waits until all pods named are bound and counts pods per node.
func (c *cluster) placement(names ...string) map[string]int {
	c.t.Helper()
	out := map[string]int{}
	for _, name := range names {
		out[c.waitBound(name)]++
	}
	return out
}

// waitEvent waits for an event about the pod with the reason and returns
// its message.
func (c *cluster) waitEvent(pod, reason string) (*corev1.Event, string) {
	c.t.Helper()
	var ev *corev1.Event
	sel := fields.Set{"involvedObject.name": pod, "reason": reason}.AsSelector().String()
	testutil.Eventually(c.t, 20*time.Second, func() string {
		l, err := c.env.Client.CoreV1().Events("default").List(c.ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err.Error()
		}
		if len(l.Items) == 0 {
			return fmt.Sprintf("no %s event for pod %s yet", reason, pod)
		}
		ev = &l.Items[len(l.Items)-1]
		return ""
	})
	return ev, ev.Message
}

func TestBindsPodsToFittingNodes(t *testing.T) {
	c := startCluster(t)
	c.createNode(makeNode("small", withAllocatable("cpu", "1")))
	c.createNode(makeNode("big", withAllocatable("cpu", "8")))
	c.createPod(makePod("needs-two", withRequests("cpu", "2")))
	c.createPod(makePod("gpu", withNodeSelector("kubernetes.io/hostname", "small")))

	cases := []struct{ pod, want string }{{"needs-two", "big"}, {"gpu", "small"}}
	for _, tc := range cases {
		t.Run(tc.pod, func(t *testing.T) {
			if got := c.waitBound(tc.pod); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			ev, msg := c.waitEvent(tc.pod, "Scheduled")
			if want := "Successfully assigned default/" + tc.pod + " to " + tc.want; msg != want || ev.Type != corev1.EventTypeNormal || ev.Source.Component != "default-scheduler" {
				t.Fatalf("got %s event %q from %q, want Normal %q from default-scheduler", ev.Type, msg, ev.Source.Component, want)
			}
		})
	}
}

func TestUnschedulablePodWaitsForABigEnoughNode(t *testing.T) {
	c := startCluster(t)
	c.createNode(makeNode("a"))
	c.createNode(makeNode("b"))
	c.createNode(makeNode("c", withTaints(corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule})))
	c.createPod(makePod("huge", withRequests("memory", "16Gi")))

	const want = "0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}."
	ev, msg := c.waitEvent("huge", "FailedScheduling")
	if msg != want || ev.Type != corev1.EventTypeWarning || ev.Source.Component != "default-scheduler" {
		t.Fatalf("got %s event %q from %q, want Warning %q from default-scheduler", ev.Type, msg, ev.Source.Component, want)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		p, err := c.env.Client.CoreV1().Pods("default").Get(c.ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled {
				if cond.Status != corev1.ConditionFalse || cond.Reason != "Unschedulable" || cond.Message != want {
					return fmt.Sprintf("got PodScheduled %s %s %q, want False Unschedulable %q", cond.Status, cond.Reason, cond.Message, want)
				}
				return ""
			}
		}
		return "no PodScheduled condition yet"
	})

	c.createNode(makeNode("huge-node", withAllocatable("memory", "64Gi")))
	if got := c.waitBound("huge"); got != "huge-node" {
		t.Fatalf("got %s, want huge-node", got)
	}
	if _, msg := c.waitEvent("huge", "Scheduled"); msg != "Successfully assigned default/huge to huge-node" {
		t.Fatalf("got %q, want the Scheduled event for huge-node", msg)
	}
}

func TestUnschedulablePodFitsOnceAPodIsDeleted(t *testing.T) {
	c := startCluster(t)
	c.createNode(makeNode("only", withAllocatable("cpu", "1")))
	c.createPod(makePod("first", withRequests("cpu", "800m")))
	c.waitBound("first")
	c.createPod(makePod("second", withRequests("cpu", "500m")))
	if _, msg := c.waitEvent("second", "FailedScheduling"); msg != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Fatalf("got %q, want Insufficient cpu", msg)
	}
	if err := c.env.Client.CoreV1().Pods("default").Delete(c.ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if got := c.waitBound("second"); got != "only" {
		t.Fatalf("got %s, want only", got)
	}
}

func TestReplicaSetPodsSpreadEvenly(t *testing.T) {
	c := startCluster(t)
	rs, err := c.env.Client.AppsV1().ReplicaSets("default").Create(c.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       makePod("t").Spec,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		c.createNode(makeNode(n))
	}
	var names []string
	for i := range 12 {
		name := fmt.Sprintf("web-%d", i)
		names = append(names, name)
		c.createPod(makePod(name, ownedBy(rs.UID), func(p *corev1.Pod) { p.OwnerReferences[0].Name = "web"; p.Labels = map[string]string{"app": "web"} }))
	}
	got := c.placement(names...)
	for _, n := range []string{"n1", "n2", "n3"} {
		if got[n] != 4 {
			t.Fatalf("got %v, want 4 pods on each node", got)
		}
	}
}

func TestCordonedNodeGetsNothing(t *testing.T) {
	c := startCluster(t)
	c.createNode(makeNode("cordoned", cordoned))
	c.createNode(makeNode("open"))
	var names []string
	for i := range 6 {
		names = append(names, fmt.Sprintf("p%d", i))
		c.createPod(makePod(names[i]))
	}
	if got := c.placement(names...); got["open"] != 6 {
		t.Fatalf("got %v, want all 6 on open", got)
	}
}

func TestTaintedNodeOnlyGetsToleratingPods(t *testing.T) {
	c := startCluster(t)
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	c.createNode(makeNode("gpu", withTaints(gpu)))
	c.createNode(makeNode("plain"))
	tolerates := withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})
	var plain, tolerating []string
	for i := range 4 {
		plain = append(plain, fmt.Sprintf("plain-%d", i))
		c.createPod(makePod(plain[i]))
		// Tolerating pods may go anywhere; these also ask for the gpu node.
		tolerating = append(tolerating, fmt.Sprintf("tolerating-%d", i))
		c.createPod(makePod(tolerating[i], tolerates, withNodeSelector("kubernetes.io/hostname", "gpu")))
	}
	if got := c.placement(plain...); got["plain"] != 4 {
		t.Fatalf("got %v, want all plain pods on plain", got)
	}
	if got := c.placement(tolerating...); got["gpu"] != 4 {
		t.Fatalf("got %v, want all tolerating pods on gpu", got)
	}
	// Without the toleration, the gpu node is out of reach.
	c.createPod(makePod("wants-gpu", withNodeSelector("kubernetes.io/hostname", "gpu")))
	if _, msg := c.waitEvent("wants-gpu", "FailedScheduling"); msg != "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}." {
		t.Fatalf("got %q", msg)
	}
}

func TestOtherSchedulersPodsAreLeftAlone(t *testing.T) {
	c := startCluster(t)
	c.createNode(makeNode("n"))
	c.createPod(makePod("theirs", func(p *corev1.Pod) { p.Spec.SchedulerName = "other-scheduler" }))
	c.createPod(makePod("ours"))
	c.waitBound("ours")
	p, err := c.env.Client.CoreV1().Pods("default").Get(c.ctx, "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Fatalf("got theirs on %q, want it unbound", p.Spec.NodeName)
	}
}

func TestBindConflictIsNotAnError(t *testing.T) {
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := New(Deps{Client: env.Client, Logger: logging.Discard})
	pods := env.Client.CoreV1().Pods("default")
	created, err := pods.Create(ctx, makePod("p"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else binds the pod while the scheduler's binding is on the way.
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "elsewhere"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.queue.Add(created)
	popped, _ := tryPop(s.queue)
	s.cache.mu.Lock()
	s.cache.assumeLocked(newPodInfo(popped), "mine")
	s.cache.mu.Unlock()
	s.bind(ctx, bindTask{pod: popped, node: "mine"})

	if s.cache.has(created.UID) {
		t.Fatal("got the pod still assumed on mine, want the assumption taken back")
	}
	if n := s.queue.Len(); n != 0 {
		t.Fatalf("got %d pods queued, want 0: a conflict is not retried", n)
	}
	got, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "elsewhere" {
		t.Fatalf("got node %q, want elsewhere", got.Spec.NodeName)
	}
}

func TestFailedBindingIsRetried(t *testing.T) {
	// An API server that is gone: the binding fails in transport.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Client: cs, Logger: logging.Discard})
	s.cache.setNode(makeNode("n"))
	s.queue.Add(makePod("p", withRequests("cpu", "1")))
	popped, _ := tryPop(s.queue)
	node, fitErr := s.place(newPodInfo(popped))
	if fitErr != nil || node != "n" {
		t.Fatalf("got %q, %v; want n", node, fitErr)
	}
	if a, _ := accountOf(s.cache, "n"); a.cpu != 1000 {
		t.Fatalf("got %dm cpu assumed on n, want 1000m", a.cpu)
	}
	s.bind(context.Background(), bindTask{pod: popped, node: node})

	if a, _ := accountOf(s.cache, "n"); a.cpu != 0 || s.cache.has(popped.UID) {
		t.Fatalf("got %dm cpu still on n, want the assumption taken back", a.cpu)
	}
	if n := s.queue.Len(); n != 1 {
		t.Fatalf("got %d pods queued, want the pod queued again", n)
	}
	if p, ok := tryPop(s.queue); ok {
		t.Fatalf("got %s back at once, want it backing off", p.Name)
	}
}
