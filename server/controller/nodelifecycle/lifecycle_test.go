package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller"
)

// t0 is where the fake clock starts: a whole second, as timeAdded is kept
// on the wire.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	env   *apitest.Env
	clock *clocktesting.FakeClock
	c     *Controller
}

// start runs the controller against a fresh API server, on a fake clock
// unless deps brings a clock of its own.
func start(t *testing.T, deps Deps) *fixture {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	f := &fixture{t: t, ctx: ctx, env: env}
	if deps.Clock == nil {
		f.clock = clocktesting.NewFakeClock(t0)
		deps.Clock = f.clock
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	deps.Client, deps.Informers, deps.Logger = env.Client, factory, logging.Discard
	f.c = New(deps)
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.c.Run(ctx) // ends with ctx
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	return f
}

func (f *fixture) createNode(name string, ready corev1.ConditionStatus, taints ...corev1.Taint) {
	f.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastTransitionTime: metav1.NewTime(t0)}}
	}
	if _, err := f.env.Client.CoreV1().Nodes().Create(f.ctx, n, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// setReady plays the agent (True, False) or the gossip watcher (Unknown).
func (f *fixture) setReady(name string, status corev1.ConditionStatus) {
	f.t.Helper()
	n, err := f.env.Client.CoreV1().Nodes().Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastTransitionTime: metav1.Now()}}
	if _, err := f.env.Client.CoreV1().Nodes().UpdateStatus(f.ctx, n, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// createPod makes a pod bound to node and, playing its agent, reports it
// Running and Ready.
func (f *fixture) createPod(name, node string, tolerations ...corev1.Toleration) *corev1.Pod {
	f.t.Helper()
	pods := f.env.Client.CoreV1().Pods("default")
	p, err := pods.Create(f.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	now := metav1.NewTime(t0)
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p, err = pods.UpdateStatus(f.ctx, p, metav1.UpdateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) getPod(name string) (*corev1.Pod, error) {
	return f.env.Client.CoreV1().Pods("default").Get(f.ctx, name, metav1.GetOptions{})
}

// podState says where a pod is in its life: "gone", "deleting", "ready",
// "not ready".
func (f *fixture) podState(name string) string {
	f.t.Helper()
	p, err := f.getPod(name)
	switch {
	case apierrors.IsNotFound(err):
		return "gone"
	case err != nil:
		f.t.Fatal(err)
	case p.DeletionTimestamp != nil:
		return "deleting"
	case controller.IsPodReady(p):
		return "ready"
	}
	return "not ready"
}

func (f *fixture) waitPod(name, want string) {
	f.t.Helper()
	testutil.Eventually(f.t, 10*time.Second, func() string {
		if got := f.podState(name); got != want {
			return fmt.Sprintf("pod %s: got %s, want %s", name, got, want)
		}
		return ""
	})
}

// lifecycleTaints shows a node's lifecycle taints (with "@" and the offset
// of timeAdded from t0), as the API has them and once the controller's
// informer has them too.
func (f *fixture) waitTaints(node, want string) []corev1.Taint {
	f.t.Helper()
	var taints []corev1.Taint
	testutil.Eventually(f.t, 10*time.Second, func() string {
		n, err := f.env.Client.CoreV1().Nodes().Get(f.ctx, node, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got := showTaints(n.Spec.Taints); got != want {
			return fmt.Sprintf("node %s: got taints %q, want %q", node, got, want)
		}
		cached, err := f.c.nodes.Get(node)
		if err != nil || showTaints(cached.Spec.Taints) != want {
			return "the controller's informer does not show the taints yet"
		}
		taints = n.Spec.Taints
		return ""
	})
	return taints
}

func showTaints(taints []corev1.Taint) string {
	var out []string
	for _, t := range taints {
		s := taintString(&t)
		if t.TimeAdded != nil {
			s += "@" + t.TimeAdded.Sub(t0).String()
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// syncNow runs one sync of node in the test's goroutine, so that what it
// did not do is known not to have been done.
func (f *fixture) syncNow(node string) {
	f.t.Helper()
	var again controller.RequeueAfter
	if err := f.c.sync(f.ctx, node); err != nil && !errors.As(err, &again) {
		f.t.Fatal(err)
	}
}

// waitEvent waits for an event on a pod with reason and a message
// containing want.
func (f *fixture) waitEvent(pod, reason, want string) {
	f.t.Helper()
	testutil.Eventually(f.t, 10*time.Second, func() string {
		list, err := f.env.Client.CoreV1().Events("default").List(f.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=" + reason})
		if err != nil {
			return err.Error()
		}
		var msgs []string
		for _, e := range list.Items {
			if strings.Contains(e.Message, want) && e.Type == corev1.EventTypeWarning {
				return ""
			}
			msgs = append(msgs, e.Type+" "+e.Message)
		}
		return fmt.Sprintf("pod %s: got %s events %q, want a Warning containing %q", pod, reason, msgs, want)
	})
}

const (
	unreachable = "node.kubernetes.io/unreachable:NoExecute"
	notReady    = "node.kubernetes.io/not-ready:NoExecute"
)

func TestReadinessTaintsNodeAndMarksPods(t *testing.T) {
	cases := []struct {
		name       string
		statuses   []corev1.ConditionStatus // the node's Ready, one after the other
		wantTaints string
		wantPod    string
	}{
		{name: "unreachable", statuses: []corev1.ConditionStatus{corev1.ConditionUnknown}, wantTaints: unreachable + "@0s", wantPod: "not ready"},
		{name: "not ready", statuses: []corev1.ConditionStatus{corev1.ConditionFalse}, wantTaints: notReady + "@0s", wantPod: "not ready"},
		{name: "unreachable then not ready swaps the taint", statuses: []corev1.ConditionStatus{corev1.ConditionUnknown, corev1.ConditionFalse},
			wantTaints: notReady + "@1s", wantPod: "not ready"},
		{name: "ready again removes the taint", statuses: []corev1.ConditionStatus{corev1.ConditionUnknown, corev1.ConditionTrue},
			wantTaints: "", wantPod: "not ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, Deps{})
			f.createNode("n1", corev1.ConditionTrue)
			f.createNode("n2", corev1.ConditionTrue)
			f.createPod("on-n1", "n1")
			f.createPod("on-n2", "n2")
			for i, s := range tc.statuses {
				if i > 0 {
					f.clock.Step(time.Second)
				}
				f.setReady("n1", s)
				want := map[corev1.ConditionStatus]string{corev1.ConditionUnknown: unreachable + "@", corev1.ConditionFalse: notReady + "@"}[s]
				testutil.Eventually(t, 10*time.Second, func() string {
					n, err := f.env.Client.CoreV1().Nodes().Get(f.ctx, "n1", metav1.GetOptions{})
					if err != nil {
						return err.Error()
					}
					if got := showTaints(n.Spec.Taints); !strings.HasPrefix(got, want) || want == "" && got != "" {
						return fmt.Sprintf("after Ready %s: got taints %q, want %q...", s, got, want)
					}
					return ""
				})
			}
			f.waitTaints("n1", tc.wantTaints)
			f.waitPod("on-n1", tc.wantPod)
			p, err := f.getPod("on-n1")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Status.Conditions {
				if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && (c.Status != corev1.ConditionFalse || c.Reason != ReasonNodeNotReady) {
					t.Fatalf("pod condition %s: got %s reason %q, want False reason %s", c.Type, c.Status, c.Reason, ReasonNodeNotReady)
				}
			}
			f.waitEvent("on-n1", ReasonNodeNotReady, "Node n1 is")
			if got := f.podState("on-n2"); got != "ready" {
				t.Fatalf("pod on the healthy node: got %s, want ready", got)
			}
			if got := showTaints(f.waitTaints("n2", "")); got != "" {
				t.Fatalf("healthy node: got taints %q, want none", got)
			}
		})
	}
}

func TestNodeWithoutReadyConditionIsLeftAlone(t *testing.T) {
	f := start(t, Deps{})
	f.createNode("new", "")
	f.createPod("p", "new")
	f.clock.Step(time.Hour)
	f.syncNow("new")
	f.waitTaints("new", "")
	if got := f.podState("p"); got != "ready" {
		t.Fatalf("got pod %s, want ready", got)
	}
}

func TestEvictionAfterTolerationWindow(t *testing.T) {
	exists := func(key string, secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	maint := corev1.Taint{Key: "maint", Value: "disk", Effect: corev1.TaintEffectNoExecute, TimeAdded: &metav1.Time{Time: t0}}
	const forever = time.Duration(-1)
	cases := []struct {
		name        string
		defaultSecs *int64
		taint       *corev1.Taint // the node carries it from the start; nil: the node becomes unreachable
		tolerations []corev1.Toleration
		window      time.Duration
		wantMsg     string
	}{
		{name: "no toleration: the default window", window: 30 * time.Second,
			wantMsg: "Node n1 is unreachable (taint node.kubernetes.io/unreachable:NoExecute) for 30s; deleting the pod"},
		{name: "a default window from Deps", defaultSecs: ptr.To(int64(300)), window: 5 * time.Minute, wantMsg: "for 5m0s; deleting the pod"},
		{name: "tolerationSeconds 0: at once", tolerations: []corev1.Toleration{exists(corev1.TaintNodeUnreachable, ptr.To(int64(0)))}, window: 0,
			wantMsg: "for 0s; deleting the pod"},
		{name: "tolerationSeconds 45", tolerations: []corev1.Toleration{exists(corev1.TaintNodeUnreachable, ptr.To(int64(45)))}, window: 45 * time.Second,
			wantMsg: "for 45s; deleting the pod"},
		{name: "the shortest matching toleration counts", tolerations: []corev1.Toleration{exists("", nil), exists(corev1.TaintNodeUnreachable, ptr.To(int64(50)))},
			window: 50 * time.Second, wantMsg: "for 50s; deleting the pod"},
		{name: "a toleration of the other taint: the default window", tolerations: []corev1.Toleration{exists(corev1.TaintNodeNotReady, ptr.To(int64(5)))},
			window: 30 * time.Second, wantMsg: "for 30s; deleting the pod"},
		{name: "a toleration without seconds: never", tolerations: []corev1.Toleration{exists(corev1.TaintNodeUnreachable, nil)}, window: forever},
		{name: "tolerates everything: never", tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, window: forever},
		{name: "an operator's taint not tolerated: at once", taint: &maint, window: 0,
			wantMsg: "Node n1 has taint maint=disk:NoExecute, which the pod does not tolerate; deleting the pod"},
		{name: "an operator's taint tolerated for a while", taint: &maint,
			tolerations: []corev1.Toleration{{Key: "maint", Value: "disk", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(3600))}},
			window:      time.Hour, wantMsg: "Node n1 has had taint maint=disk:NoExecute for 1h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, Deps{DefaultTolerationSeconds: tc.defaultSecs})
			var added time.Time
			if tc.taint != nil {
				f.createNode("n1", corev1.ConditionTrue, *tc.taint)
				added = tc.taint.TimeAdded.Time
			} else {
				f.createNode("n1", corev1.ConditionTrue)
			}
			f.createPod("p", "n1", tc.tolerations...)
			if tc.taint == nil {
				f.setReady("n1", corev1.ConditionUnknown)
				added = f.waitTaints("n1", unreachable+"@0s")[0].TimeAdded.Time
			}
			if tc.window == 0 {
				f.waitPod("p", "deleting")
				f.waitEvent("p", ReasonEvicted, tc.wantMsg)
				return
			}
			before := tc.window - time.Second
			if tc.window == forever {
				before = 24 * time.Hour
			}
			f.clock.SetTime(added.Add(before))
			f.syncNow("n1")
			if got := f.podState("p"); got == "deleting" || got == "gone" {
				t.Fatalf("%s after the taint: got pod %s, want it kept", before, got)
			}
			if tc.window == forever {
				return
			}
			f.clock.SetTime(added.Add(tc.window))
			f.waitPod("p", "deleting") // a graceful delete: the node's agent stops it
			f.waitEvent("p", ReasonEvicted, tc.wantMsg)
		})
	}
}

func TestReadyAgainStopsPendingEviction(t *testing.T) {
	f := start(t, Deps{})
	f.createNode("n1", corev1.ConditionTrue)
	f.createPod("p", "n1")
	f.setReady("n1", corev1.ConditionUnknown)
	f.waitTaints("n1", unreachable+"@0s")
	f.clock.Step(10 * time.Second)
	f.setReady("n1", corev1.ConditionTrue)
	f.waitTaints("n1", "")
	f.clock.Step(time.Hour)
	f.syncNow("n1")
	if got := f.podState("p"); got == "deleting" || got == "gone" {
		t.Fatalf("got pod %s, want it kept: its node is ready again", got)
	}
}

func TestPodsOfMissingNodesAreRemoved(t *testing.T) {
	cases := []struct {
		name string
		// prepare makes pods bound to a node that is or will be missing,
		// and returns their names.
		prepare func(f *fixture) []string
	}{
		{name: "the node is deleted", prepare: func(f *fixture) []string {
			f.createNode("n1", corev1.ConditionTrue)
			f.createPod("running", "n1")
			f.createPod("terminating", "n1")
			if err := f.env.Client.CoreV1().Pods("default").Delete(f.ctx, "terminating", metav1.DeleteOptions{}); err != nil {
				f.t.Fatal(err)
			}
			f.waitPod("terminating", "deleting")
			if err := f.env.Client.CoreV1().Nodes().Delete(f.ctx, "n1", metav1.DeleteOptions{}); err != nil {
				f.t.Fatal(err)
			}
			return []string{"running", "terminating"}
		}},
		{name: "the node never existed", prepare: func(f *fixture) []string {
			f.createPod("ghost", "no-such-node")
			return []string{"ghost"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, Deps{})
			f.createNode("other", corev1.ConditionTrue)
			f.createPod("elsewhere", "other")
			for _, name := range tc.prepare(f) {
				f.waitPod(name, "gone")
			}
			f.syncNow("other")
			if got := f.podState("elsewhere"); got != "ready" {
				t.Fatalf("pod on an existing node: got %s, want ready", got)
			}
		})
	}
}

func TestTerminatingPodOnUnreachableNodeIsNotForceDeleted(t *testing.T) {
	f := start(t, Deps{})
	f.createNode("n1", corev1.ConditionTrue)
	f.createPod("p", "n1")
	if err := f.env.Client.CoreV1().Pods("default").Delete(f.ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.setReady("n1", corev1.ConditionUnknown)
	f.waitTaints("n1", unreachable+"@0s")
	f.clock.Step(24 * time.Hour)
	f.syncNow("n1")
	if got := f.podState("p"); got != "deleting" {
		t.Fatalf("got pod %s, want it still there, being deleted: its containers may still run on the node", got)
	}
}

func TestAgentLeavingGossipTaintsNodeAndMarksPods(t *testing.T) {
	m := &membership{alive: map[string]bool{"a": true, "b": true}, notify: make(chan struct{})}
	f := start(t, Deps{Alive: m.Alive, Changed: m.Changed, Grace: 100 * time.Millisecond, Clock: clock.RealClock{}})
	f.createNode("a", corev1.ConditionTrue)
	f.createNode("b", corev1.ConditionTrue)
	f.createPod("on-a", "a")
	f.createPod("on-b", "b")
	m.set("b", false)
	testutil.Eventually(t, 10*time.Second, func() string {
		n, err := f.env.Client.CoreV1().Nodes().Get(f.ctx, "b", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if s, got := readyStatus(n), showTaints(n.Spec.Taints); s != corev1.ConditionUnknown || !strings.HasPrefix(got, unreachable) {
			return fmt.Sprintf("node b: got Ready=%s taints %q, want Unknown and %s", s, got, unreachable)
		}
		return ""
	})
	f.waitPod("on-b", "not ready")
	if got := f.podState("on-a"); got != "ready" {
		t.Fatalf("pod on a, whose agent is alive: got %s, want ready", got)
	}
}
