package daemonset

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

const ns = "default"

// start runs a controller against a fresh API server until the test ends.
func start(t *testing.T) (kubernetes.Interface, context.Context) {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	f := informers.NewSharedInformerFactory(env.Client, 0)
	c := New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
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
	return env.Client, ctx
}

type nodeOption func(*corev1.Node)

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

func tainted(key, value string, effect corev1.TaintEffect) nodeOption {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func labelled(k, v string) nodeOption {
	return func(n *corev1.Node) { n.Labels[k] = v }
}

func notReady(n *corev1.Node) {
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	tainted(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoExecute)(n)
}

// makeNode is a Ready node with some allocatable CPU and memory.
func makeNode(name string, opts ...nodeOption) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
			},
		},
	}
	n.Status.Capacity = n.Status.Allocatable
	for _, o := range opts {
		o(n)
	}
	return n
}

func createNode(t *testing.T, ctx context.Context, cs kubernetes.Interface, n *corev1.Node) {
	t.Helper()
	if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

type dsOption func(*appsv1.DaemonSet)

func makeDaemonSet(name string, opts ...dsOption) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:1"}}},
			},
		},
	}
	for _, o := range opts {
		o(ds)
	}
	return ds
}

func createDaemonSet(t *testing.T, ctx context.Context, cs kubernetes.Interface, ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	t.Helper()
	out, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podsOf lists the DaemonSet's pods by node; pods being deleted are left
// out unless all is set.
func podsOf(ctx context.Context, cs kubernetes.Interface, name string, all bool) (map[string][]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	m := map[string][]corev1.Pod{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil || all {
			m[p.Spec.NodeName] = append(m[p.Spec.NodeName], p)
		}
	}
	return m, nil
}

func nodeNames(m map[string][]corev1.Pod) []string {
	var names []string
	for n, pods := range m {
		for range pods {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// waitPlaced waits until the DaemonSet has exactly one pod on each of
// nodes and none elsewhere, and its status says so.
func waitPlaced(t *testing.T, ctx context.Context, cs kubernetes.Interface, name string, nodes ...string) map[string][]corev1.Pod {
	t.Helper()
	return waitPlacedOf(t, ctx, cs, name, len(nodes), nodes...)
}

// waitPlacedOf is waitPlaced for a DaemonSet that should run on desired
// nodes, of which only nodes got their pod.
func waitPlacedOf(t *testing.T, ctx context.Context, cs kubernetes.Interface, name string, desired int, nodes ...string) map[string][]corev1.Pod {
	t.Helper()
	want := slices.Sorted(slices.Values(nodes))
	var got map[string][]corev1.Pod
	testutil.Eventually(t, 10*time.Second, func() string {
		m, err := podsOf(ctx, cs, name, true)
		if err != nil {
			return err.Error()
		}
		if names := nodeNames(m); !slices.Equal(names, want) {
			return fmt.Sprintf("pods on nodes %v, want %v", names, want)
		}
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		st := ds.Status
		if st.ObservedGeneration != ds.Generation || int(st.DesiredNumberScheduled) != desired ||
			int(st.CurrentNumberScheduled) != len(want) || st.NumberMisscheduled != 0 {
			return fmt.Sprintf("status %+v, want %d desired and %d scheduled at generation %d", st, desired, len(want), ds.Generation)
		}
		got = m
		return ""
	})
	return got
}

func TestPodsGoToEligibleNodes(t *testing.T) {
	gpu := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	zoneA := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
		}}},
	}}}
	needs := func(cpu string) dsOption {
		return func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
		}
	}
	cases := []struct {
		name  string
		nodes []*corev1.Node
		busy  map[string]string // node → cpu requested by a pod already there
		ds    []dsOption
		want  []string
		// desired is how many nodes should run the pod, when not all of
		// them get it (a node without room still counts, as in Kubernetes).
		desired int
	}{
		{name: "a node without room for the pod's requests gets none",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3")},
			busy:  map[string]string{"n2": "3800m", "n3": "3"},
			ds:    []dsOption{needs("500m")},
			want:  []string{"n1", "n3"}, desired: 3},
		{name: "a cordoned node gets its pod",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3", cordoned)},
			want:  []string{"n1", "n2", "n3"}},
		{name: "a NoSchedule taint the template does not tolerate keeps the pod off",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3", tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			want:  []string{"n1", "n2"}},
		{name: "a NoExecute taint the template does not tolerate keeps the pod off",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3", tainted("dedicated", "gpu", corev1.TaintEffectNoExecute))},
			want:  []string{"n1", "n2"}},
		{name: "a tolerated taint does not",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3", tainted("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			ds:    []dsOption{func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{gpu} }},
			want:  []string{"n1", "n2", "n3"}},
		{name: "a node that is not ready gets its pod",
			nodes: []*corev1.Node{makeNode("n1"), makeNode("n2"), makeNode("n3", notReady)},
			want:  []string{"n1", "n2", "n3"}},
		{name: "a node not matching the nodeSelector gets none",
			nodes: []*corev1.Node{makeNode("n1", labelled("disk", "ssd")), makeNode("n2", labelled("disk", "ssd")), makeNode("n3", labelled("disk", "hdd"))},
			ds:    []dsOption{func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }},
			want:  []string{"n1", "n2"}},
		{name: "a node not matching the required node affinity gets none",
			nodes: []*corev1.Node{makeNode("n1", labelled("zone", "a")), makeNode("n2", labelled("zone", "b")), makeNode("n3", labelled("zone", "a"))},
			ds:    []dsOption{func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Affinity = zoneA }},
			want:  []string{"n1", "n3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, ctx := start(t)
			for _, n := range tc.nodes {
				createNode(t, ctx, cs, n)
			}
			for node, cpu := range tc.busy {
				busy := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "busy-" + node, Namespace: ns},
					Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busy",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}}}
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, busy, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			ds := createDaemonSet(t, ctx, cs, makeDaemonSet("agent", tc.ds...))
			desired := tc.desired
			if desired == 0 {
				desired = len(tc.want)
			}
			placed := waitPlacedOf(t, ctx, cs, "agent", desired, tc.want...)
			for node, pods := range placed {
				p := pods[0]
				if !strings.HasPrefix(p.Name, "agent-") || p.GenerateName != "agent-" {
					t.Errorf("pod %s on %s: got generateName %q, want agent-", p.Name, node, p.GenerateName)
				}
				if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != ds.UID || ref.Kind != "DaemonSet" {
					t.Errorf("pod %s: got controller %+v, want DaemonSet agent", p.Name, ref)
				}
				if p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
					t.Errorf("pod %s: no %s label", p.Name, appsv1.ControllerRevisionHashLabelKey)
				}
				for _, want := range daemonTolerations {
					if !slices.Contains(p.Spec.Tolerations, want) {
						t.Errorf("pod %s: tolerations %v lack %v", p.Name, p.Spec.Tolerations, want)
					}
				}
			}
		})
	}
}

func TestNodeChanges(t *testing.T) {
	cs, ctx := start(t)
	kubelet := testutil.StartFakeKubelet(t, cs, ns)
	createNode(t, ctx, cs, makeNode("n1", labelled("role", "edge")))
	createDaemonSet(t, ctx, cs, makeDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"}
	}))
	waitPlaced(t, ctx, cs, "agent", "n1")

	t.Run("a new node gets a pod", func(t *testing.T) {
		createNode(t, ctx, cs, makeNode("n2", labelled("role", "edge")))
		createNode(t, ctx, cs, makeNode("n3", labelled("role", "edge")))
		waitPlaced(t, ctx, cs, "agent", "n1", "n2", "n3")
	})
	t.Run("a node that stops matching loses its pod", func(t *testing.T) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delete(n.Labels, "role")
		if _, err := cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPlaced(t, ctx, cs, "agent", "n1", "n2")
	})
	t.Run("the pods of a deleted node are deleted", func(t *testing.T) {
		// The node's agent is gone for good: nothing but the controller
		// removes its pod.
		kubelet.StopNode("n2")
		if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPlaced(t, ctx, cs, "agent", "n1")
	})
	t.Run("a failed pod is replaced", func(t *testing.T) {
		before := waitPlaced(t, ctx, cs, "agent", "n1")["n1"][0]
		testutil.Eventually(t, 5*time.Second, func() string {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, before.Name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			p.Status.Phase = corev1.PodFailed
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				return err.Error()
			}
			return ""
		})
		testutil.Eventually(t, 10*time.Second, func() string {
			m, err := podsOf(ctx, cs, "agent", true)
			if err != nil {
				return err.Error()
			}
			if pods := m["n1"]; len(pods) != 1 || pods[0].UID == before.UID || pods[0].Status.Phase != corev1.PodRunning {
				return fmt.Sprintf("pods on n1: %s, want one new running pod", describe(pods))
			}
			return ""
		})
	})
	t.Run("an extra pod on a node is deleted", func(t *testing.T) {
		keep := waitPlaced(t, ctx, cs, "agent", "n1")["n1"][0]
		if keep.Status.Phase != corev1.PodRunning {
			t.Fatalf("pod %s is %s, want Running", keep.Name, keep.Status.Phase)
		}
		extra := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: ns, Labels: map[string]string{"app": "agent"}},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "agent", Image: "agent:1"}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, extra, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			if _, err := cs.CoreV1().Pods(ns).Get(ctx, "stray", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Sprintf("the stray pod is still there (%v)", err)
			}
			return ""
		})
		if got := waitPlaced(t, ctx, cs, "agent", "n1")["n1"][0]; got.UID != keep.UID {
			t.Errorf("got pod %s on n1, want the older %s kept", got.Name, keep.Name)
		}
	})
}

func describe(pods []corev1.Pod) string {
	var parts []string
	for _, p := range pods {
		s := p.Name + " " + string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			s += " (deleting)"
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// rolloutWatch follows the DaemonSet's pods through a watch, so that it
// sees every state the API went through, and records the most nodes
// without an available pod and the most pods on one node at any time.
type rolloutWatch struct {
	mu             sync.Mutex
	pods           map[string]*corev1.Pod
	nodes          []string
	maxUnavailable int
	maxPerNode     int
}

func watchRollout(t *testing.T, ctx context.Context, cs kubernetes.Interface, name string, nodes []string) *rolloutWatch {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	r := &rolloutWatch{pods: map[string]*corev1.Pod{}, nodes: nodes}
	for i := range l.Items {
		r.pods[l.Items[i].Name] = &l.Items[i]
	}
	r.observe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			r.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(r.pods, p.Name)
			} else {
				r.pods[p.Name] = p
			}
			r.mu.Unlock()
			r.observe()
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	return r
}

func (r *rolloutWatch) observe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	available := map[string]bool{}
	count := map[string]int{}
	for _, p := range r.pods {
		count[p.Spec.NodeName]++
		if p.DeletionTimestamp == nil && isReady(p) {
			available[p.Spec.NodeName] = true
		}
	}
	unavailable := 0
	for _, n := range r.nodes {
		if !available[n] {
			unavailable++
		}
		r.maxPerNode = max(r.maxPerNode, count[n])
	}
	r.maxUnavailable = max(r.maxUnavailable, unavailable)
}

func (r *rolloutWatch) peaks() (unavailable, perNode int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxUnavailable, r.maxPerNode
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitAllReady waits until every node has one ready pod of the template
// with the given image, and the status counts them all as updated and
// available.
func waitAllReady(t *testing.T, ctx context.Context, cs kubernetes.Interface, name, image string, nodes []string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() string {
		m, err := podsOf(ctx, cs, name, true)
		if err != nil {
			return err.Error()
		}
		for _, n := range nodes {
			pods := m[n]
			if len(pods) != 1 || !isReady(&pods[0]) || pods[0].Spec.Containers[0].Image != image || pods[0].DeletionTimestamp != nil {
				return fmt.Sprintf("node %s has pods %s, want one ready pod of %s", n, describe(pods), image)
			}
		}
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		st, want := ds.Status, int32(len(nodes))
		if st.ObservedGeneration != ds.Generation || st.UpdatedNumberScheduled != want || st.NumberAvailable != want ||
			st.NumberReady != want || st.NumberUnavailable != 0 {
			return fmt.Sprintf("status %+v, want %d updated and available at generation %d", st, want, ds.Generation)
		}
		return ""
	})
}

func setImage(t *testing.T, ctx context.Context, cs kubernetes.Interface, name, image string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() string {
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		ds.Spec.Template.Spec.Containers[0].Image = image
		if _, err := cs.AppsV1().DaemonSets(ns).Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

func TestRollingUpdate(t *testing.T) {
	intOr := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	cases := []struct {
		name           string
		maxUnavailable *intstr.IntOrString
		maxSurge       *intstr.IntOrString
		// The most nodes without an available pod, and the most pods on a
		// node, at any time of the rollout.
		wantUnavailable, wantPerNode int
	}{
		{name: "maxUnavailable 1", maxUnavailable: intOr(intstr.FromInt32(1)), wantUnavailable: 1, wantPerNode: 1},
		{name: "maxUnavailable 50% of 4 nodes", maxUnavailable: intOr(intstr.FromString("50%")), wantUnavailable: 2, wantPerNode: 1},
		{name: "maxSurge 1", maxUnavailable: intOr(intstr.FromInt32(0)), maxSurge: intOr(intstr.FromInt32(1)), wantUnavailable: 0, wantPerNode: 2},
	}
	nodes := []string{"n1", "n2", "n3", "n4"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, ctx := start(t)
			testutil.StartFakeKubelet(t, cs, ns)
			for _, n := range nodes {
				createNode(t, ctx, cs, makeNode(n))
			}
			createDaemonSet(t, ctx, cs, makeDaemonSet("agent", func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: tc.maxUnavailable, MaxSurge: tc.maxSurge}}
			}))
			waitAllReady(t, ctx, cs, "agent", "agent:1", nodes)

			r := watchRollout(t, ctx, cs, "agent", nodes)
			setImage(t, ctx, cs, "agent", "agent:2")
			waitAllReady(t, ctx, cs, "agent", "agent:2", nodes)
			unavailable, perNode := r.peaks()
			if unavailable != tc.wantUnavailable {
				t.Errorf("got at most %d nodes without an available pod during the rollout, want %d", unavailable, tc.wantUnavailable)
			}
			if perNode != tc.wantPerNode {
				t.Errorf("got at most %d pods on a node during the rollout, want %d", perNode, tc.wantPerNode)
			}
		})
	}
}

func TestOnDeleteReplacesOnlyDeletedPods(t *testing.T) {
	cs, ctx := start(t)
	testutil.StartFakeKubelet(t, cs, ns)
	nodes := []string{"n1", "n2"}
	for _, n := range nodes {
		createNode(t, ctx, cs, makeNode(n))
	}
	createDaemonSet(t, ctx, cs, makeDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	waitAllReady(t, ctx, cs, "agent", "agent:1", nodes)
	setImage(t, ctx, cs, "agent", "agent:2")
	testutil.Eventually(t, 10*time.Second, func() string {
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ds.Status.ObservedGeneration != ds.Generation || ds.Status.UpdatedNumberScheduled != 0 || ds.Status.NumberAvailable != 2 {
			return fmt.Sprintf("status %+v, want generation %d observed with no pod updated and 2 available", ds.Status, ds.Generation)
		}
		return ""
	})
	m, err := podsOf(ctx, cs, "agent", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, m["n1"][0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		m, err := podsOf(ctx, cs, "agent", true)
		if err != nil {
			return err.Error()
		}
		if p := m["n1"]; len(p) != 1 || p[0].Spec.Containers[0].Image != "agent:2" || !isReady(&p[0]) {
			return fmt.Sprintf("n1 has %s, want one ready pod of agent:2", describe(p))
		}
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ds.Status.UpdatedNumberScheduled != 1 {
			return fmt.Sprintf("status %+v, want 1 updated", ds.Status)
		}
		return ""
	})
	m, err = podsOf(ctx, cs, "agent", true)
	if err != nil {
		t.Fatal(err)
	}
	if p := m["n2"]; len(p) != 1 || p[0].Spec.Containers[0].Image != "agent:1" {
		t.Errorf("n2 has %s, want its agent:1 pod untouched", describe(p))
	}
}
