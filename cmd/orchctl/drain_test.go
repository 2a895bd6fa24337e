package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"orch.dev/orch/server/api/apitest"
)

// drainPod is a pod for drain to sort: on a node, maybe controlled by
// something, maybe with an emptyDir, a mirror or finished.
type drainPod struct {
	name, node string
	controller string // the controller's kind; "" for a bare pod
	emptyDir   bool
	mirror     bool
	finished   bool
}

func createDrainPods(t *testing.T, env *apitest.Env, pods ...drainPod) {
	t.Helper()
	ctx := context.Background()
	for _, dp := range pods {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: dp.name},
			Spec:       corev1.PodSpec{NodeName: dp.node, Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}},
		}
		if dp.controller != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: dp.controller, Name: "owner", UID: "owner-uid", Controller: ptr.To(true)}}
		}
		if dp.emptyDir {
			p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}
		if dp.mirror {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
		}
		created, err := env.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dp.finished {
			created.Status.Phase = corev1.PodSucceeded
			if _, err := env.Client.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// playAgent stands in for a node's agent: a pod marked for deletion there
// is stopped at once (deleted with grace period 0).
func playAgent(t *testing.T, env *apitest.Env, node string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := env.Client.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.DeletionTimestamp == nil {
				continue
			}
			err := env.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
			if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
				t.Errorf("agent: delete pod %s: %v", p.Name, err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		wg.Wait()
	})
}

// podsLeft lists the pods that remain, as NAME, or NAME(grace N) for one
// being deleted.
func podsLeft(t *testing.T, env *apitest.Env) string {
	t.Helper()
	list, err := env.Client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		s := p.Name
		if p.DeletionTimestamp != nil {
			s += fmt.Sprintf("(grace %d)", ptr.Deref(p.DeletionGracePeriodSeconds, -1))
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestDrain(t *testing.T) {
	web := drainPod{name: "web", node: "n1", controller: "ReplicaSet"}
	daemon := drainPod{name: "daemon", node: "n1", controller: "DaemonSet"}
	bare := drainPod{name: "bare", node: "n1"}
	cache := drainPod{name: "cache", node: "n1", controller: "ReplicaSet", emptyDir: true}
	cases := []struct {
		name       string
		cordoned   bool
		pods       []drainPod
		noAgent    bool
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		wantLeft   string
	}{
		{name: "evicts what controllers recreate, leaves the rest",
			pods: []drainPod{web, daemon, {name: "mirror", node: "n1", mirror: true}, {name: "done", node: "n1", finished: true},
				{name: "elsewhere", node: "n2", controller: "ReplicaSet"}},
			args:       []string{"drain", "n1"},
			wantStdout: "node/n1 cordoned\nevicting pod default/web\npod/web evicted\nnode/n1 drained\n",
			wantStderr: "Warning: ignoring DaemonSet-managed Pods: default/daemon\n",
			wantLeft:   "daemon done elsewhere mirror"},
		{name: "node/NAME, already cordoned, nothing to evict", cordoned: true, args: []string{"drain", "node/n1"},
			wantStdout: "node/n1 already cordoned\nnode/n1 drained\n"},
		{name: "bare pods are refused", pods: []drainPod{web, bare}, args: []string{"drain", "n1"}, wantCode: 1,
			wantStdout: "node/n1 cordoned\n",
			wantStderr: "error: cannot drain node/n1 (it stays cordoned): cannot delete Pods that declare no controller (use --force to override): default/bare\n",
			wantLeft:   "bare web"},
		{name: "--force evicts bare pods", pods: []drainPod{bare}, args: []string{"drain", "n1", "--force"},
			wantStdout: "node/n1 cordoned\nevicting pod default/bare\npod/bare evicted\nnode/n1 drained\n",
			wantStderr: "Warning: deleting Pods that declare no controller: default/bare\n"},
		{name: "emptyDir pods are refused", pods: []drainPod{cache}, args: []string{"drain", "n1"}, wantCode: 1,
			wantStdout: "node/n1 cordoned\n",
			wantStderr: "error: cannot drain node/n1 (it stays cordoned): cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache\n",
			wantLeft:   "cache"},
		{name: "--delete-emptydir-data evicts them", pods: []drainPod{cache}, args: []string{"drain", "n1", "--delete-emptydir-data"},
			wantStdout: "node/n1 cordoned\nevicting pod default/cache\npod/cache evicted\nnode/n1 drained\n",
			wantStderr: "Warning: deleting Pods with local storage: default/cache\n"},
		{name: "--ignore-daemonsets=false refuses DaemonSet pods", pods: []drainPod{daemon, bare}, args: []string{"drain", "n1", "--ignore-daemonsets=false"},
			wantCode: 1, wantStdout: "node/n1 cordoned\n",
			wantStderr: "error: cannot drain node/n1 (it stays cordoned): cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/daemon; " +
				"cannot delete Pods that declare no controller (use --force to override): default/bare\n",
			wantLeft: "bare daemon"},
		{name: "gives up after --timeout naming the pods still there", pods: []drainPod{web}, noAgent: true,
			args: []string{"drain", "n1", "--timeout", "1s", "--grace-period", "7"}, wantCode: 1,
			wantStdout: "node/n1 cordoned\nevicting pod default/web\n",
			wantStderr: "error: drain of node/n1 timed out after --timeout 1s; still there: default/web\n",
			wantLeft:   "web(grace 7)"},
		{name: "an unknown node", args: []string{"drain", "nope"}, wantCode: 1, wantStderr: "error: nodes \"nope\" not found\n"},
		{name: "no node", args: []string{"drain"}, wantCode: 1, wantStderr: "error: say which node, e.g. orchctl drain node-1 (one node at a time)\n"},
		{name: "two nodes", args: []string{"drain", "n1", "n2"}, wantCode: 1, wantStderr: "error: say which node, e.g. orchctl drain node-1 (one node at a time)\n"},
		{name: "a bad grace period", args: []string{"drain", "n1", "--grace-period", "-2"}, wantCode: 1,
			wantStderr: "error: --grace-period -2: want -1 (the pod's own) or 0 and up\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := createNode(t, tc.cordoned)
			if _, err := env.Client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			createDrainPods(t, env, tc.pods...)
			if !tc.noAgent {
				playAgent(t, env, "n1")
			}
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || r.stderr != tc.wantStderr {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			if got := podsLeft(t, env); got != tc.wantLeft {
				t.Fatalf("got pods %q left, want %q", got, tc.wantLeft)
			}
			if got, want := getNode(t, env, "n1").Spec.Unschedulable, tc.cordoned || tc.wantStdout != ""; got != want {
				t.Fatalf("got node n1 unschedulable %v, want %v", got, want)
			}
		})
	}
}

func TestPlanDrainLeavesPodsBeingDeleted(t *testing.T) {
	now := metav1.Now()
	pods := []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "going", DeletionTimestamp: &now}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bare"}},
	}
	plan := planDrain(pods, drainRules{force: true, ignoreDaemonSets: true})
	var names []string
	for _, p := range plan.evict {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "going,bare"; got != want {
		t.Fatalf("got evict %q, want %q", got, want)
	}
	if got, want := strings.Join(plan.warnings, "|"), "deleting Pods that declare no controller: ns/bare"; got != want {
		t.Fatalf("got warnings %q, want %q (a pod already going is not warned about)", got, want)
	}
}
