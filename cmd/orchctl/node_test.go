package main

import (
	"context"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

// createNode makes a ready node n1 with the given taints and
// schedulability, and returns the server.
func createNode(t *testing.T, unschedulable bool, taints ...corev1.Taint) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	_, err := env.Client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Spec:       corev1.NodeSpec{Unschedulable: unschedulable, Taints: taints},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.0-orch"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func getNode(t *testing.T, env *apitest.Env, name string) *corev1.Node {
	t.Helper()
	n, err := env.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCordon(t *testing.T) {
	cases := []struct {
		name              string
		cordoned          bool
		args              []string
		wantCode          int
		wantStdout        string
		wantStderr        string
		wantUnschedulable bool
	}{
		{name: "cordon", args: []string{"cordon", "n1"}, wantStdout: "node/n1 cordoned\n", wantUnschedulable: true},
		{name: "cordon node/NAME", args: []string{"cordon", "node/n1"}, wantStdout: "node/n1 cordoned\n", wantUnschedulable: true},
		{name: "cordon twice", cordoned: true, args: []string{"cordon", "n1"}, wantStdout: "node/n1 already cordoned\n", wantUnschedulable: true},
		{name: "uncordon", cordoned: true, args: []string{"uncordon", "n1"}, wantStdout: "node/n1 uncordoned\n"},
		{name: "uncordon twice", args: []string{"uncordon", "nodes/n1"}, wantStdout: "node/n1 already uncordoned\n"},
		{name: "a missing node does not stop the others", args: []string{"cordon", "nope", "n1"}, wantCode: 1,
			wantStdout: "node/n1 cordoned\n", wantStderr: `error: nodes "nope" not found`, wantUnschedulable: true},
		{name: "no node", args: []string{"cordon"}, wantCode: 1, wantStderr: "say which nodes, e.g. orchctl cordon node-1"},
		{name: "not a node", args: []string{"uncordon", "pod/n1"}, cordoned: true, wantCode: 1, wantStderr: `"pod/n1": this command works on nodes`,
			wantUnschedulable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := createNode(t, tc.cordoned)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			if got := getNode(t, env, "n1").Spec.Unschedulable; got != tc.wantUnschedulable {
				t.Fatalf("got unschedulable %v, want %v", got, tc.wantUnschedulable)
			}
		})
	}
}

// taintString shows taints as KEY[=VALUE]:EFFECT, sorted, with "+t" after
// those that carry the time they were added.
func taintString(taints []corev1.Taint) string {
	var out []string
	for _, t := range taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		s += ":" + string(t.Effect)
		if t.TimeAdded != nil {
			s += "+t"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestTaint(t *testing.T) {
	db := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	dbPrefer := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectPreferNoSchedule}
	gpu := corev1.Taint{Key: "example.com/gpu", Effect: corev1.TaintEffectNoSchedule}
	cases := []struct {
		name       string
		taints     []corev1.Taint
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		want       string // the taints after, as taintString
	}{
		{name: "add", args: []string{"taint", "nodes", "n1", "dedicated=db:NoSchedule"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=db:NoSchedule"},
		{name: "add several, node/NAME", taints: []corev1.Taint{gpu}, args: []string{"taint", "node/n1", "dedicated=db:NoSchedule", "maint:NoExecute"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=db:NoSchedule,example.com/gpu:NoSchedule,maint:NoExecute+t"},
		{name: "the same taint again", taints: []corev1.Taint{db}, args: []string{"taint", "no", "n1", "dedicated=db:NoSchedule"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=db:NoSchedule"},
		{name: "another effect is another taint", taints: []corev1.Taint{db}, args: []string{"taint", "nodes", "n1", "dedicated=web:PreferNoSchedule"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=db:NoSchedule,dedicated=web:PreferNoSchedule"},
		{name: "a new value needs --overwrite", taints: []corev1.Taint{db}, args: []string{"taint", "nodes", "n1", "dedicated=web:NoSchedule"},
			wantCode: 1, wantStderr: "error: node/n1: the node already has taint dedicated=db:NoSchedule; pass --overwrite to change its value",
			want: "dedicated=db:NoSchedule"},
		{name: "--overwrite", taints: []corev1.Taint{db, gpu}, args: []string{"taint", "nodes", "n1", "dedicated=web:NoSchedule", "--overwrite"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=web:NoSchedule,example.com/gpu:NoSchedule"},
		{name: "remove by key and effect", taints: []corev1.Taint{db, dbPrefer, gpu}, args: []string{"taint", "nodes", "n1", "dedicated:NoSchedule-"},
			wantStdout: "node/n1 untainted\n", want: "dedicated=db:PreferNoSchedule,example.com/gpu:NoSchedule"},
		{name: "remove by key", taints: []corev1.Taint{db, dbPrefer, gpu}, args: []string{"taint", "nodes", "n1", "dedicated-"},
			wantStdout: "node/n1 untainted\n", want: "example.com/gpu:NoSchedule"},
		{name: "remove the last", taints: []corev1.Taint{gpu}, args: []string{"taint", "nodes", "n1", "example.com/gpu-"},
			wantStdout: "node/n1 untainted\n", want: ""},
		{name: "add and remove", taints: []corev1.Taint{gpu}, args: []string{"taint", "nodes", "n1", "example.com/gpu-", "dedicated=db:NoSchedule"},
			wantStdout: "node/n1 tainted\n", want: "dedicated=db:NoSchedule"},
		{name: "remove a missing taint", taints: []corev1.Taint{gpu}, args: []string{"taint", "nodes", "n1", "dedicated:NoSchedule-"},
			wantCode: 1, wantStderr: `error: node/n1: taint "dedicated:NoSchedule" not found`, want: "example.com/gpu:NoSchedule"},
		{name: "unknown node", args: []string{"taint", "nodes", "nope", "a=b:NoSchedule"}, wantCode: 1, wantStderr: `nodes "nope" not found`},
		{name: "bad effect", args: []string{"taint", "nodes", "n1", "a=b:Never"}, wantCode: 1,
			wantStderr: `invalid taint "a=b:Never": effect "Never": want NoSchedule, PreferNoSchedule or NoExecute`},
		{name: "bad key", args: []string{"taint", "nodes", "n1", "a b=c:NoSchedule"}, wantCode: 1, wantStderr: `invalid taint "a b=c:NoSchedule": key "a b": name part must consist of`},
		{name: "bad value", args: []string{"taint", "nodes", "n1", "a=b c:NoSchedule"}, wantCode: 1, wantStderr: `invalid taint "a=b c:NoSchedule": value "b c": a valid label must be`},
		{name: "no effect", args: []string{"taint", "nodes", "n1", "a=b"}, wantCode: 1, wantStderr: `invalid taint "a=b": say its effect, e.g. a=b:NoSchedule`},
		{name: "a value in a removal", taints: []corev1.Taint{db}, args: []string{"taint", "nodes", "n1", "dedicated=db:NoSchedule-"}, wantCode: 1,
			wantStderr: `invalid taint "dedicated=db:NoSchedule-": a removal names the key`, want: "dedicated=db:NoSchedule"},
		{name: "added and removed", args: []string{"taint", "nodes", "n1", "a=b:NoSchedule", "a-"}, wantCode: 1,
			wantStderr: `taints "a=b:NoSchedule" and "a-" are about the same key and effect`},
		{name: "added twice", args: []string{"taint", "nodes", "n1", "a=b:NoSchedule", "a=c:NoSchedule"}, wantCode: 1,
			wantStderr: `taints "a=b:NoSchedule" and "a=c:NoSchedule" are about the same key and effect`},
		{name: "not nodes", args: []string{"taint", "pods", "n1", "a=b:NoSchedule"}, wantCode: 1, wantStderr: `"pods": only nodes have taints`},
		{name: "no node", args: []string{"taint", "nodes", "a=b:NoSchedule"}, wantCode: 1, wantStderr: "say which nodes"},
		{name: "no taint", args: []string{"taint", "nodes", "n1"}, wantCode: 1, wantStderr: "say which taints to add"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := createNode(t, false, tc.taints...)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || r.stdout != tc.wantStdout || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			if got := taintString(getNode(t, env, "n1").Spec.Taints); got != tc.want {
				t.Fatalf("got taints %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGetNodes(t *testing.T) {
	env := apitest.Start(t)
	ctx := context.Background()
	for _, n := range []*corev1.Node{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "a-master", Labels: map[string]string{
				"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "zone": "z1"}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "a"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.0-orch", OSImage: "Debian GNU/Linux 12", KernelVersion: "6.1.0",
					ContainerRuntimeVersion: "docker://20.10.24"},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "b-worker"},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.2"}},
				NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.0-orch"},
			},
		},
		{ObjectMeta: metav1.ObjectMeta{Name: "c-new"}},
	} {
		if _, err := env.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustSucceed(t, env, "", "cordon", "a-master")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{name: "table", args: []string{"get", "nodes"}, want: []string{
			"NAME       STATUS                     ROLES                  AGE   VERSION        INTERNAL-IP",
			"a-master   Ready,SchedulingDisabled   control-plane,master   AGE   v1.37.0-orch   10.0.0.1",
			"b-worker   NotReady                   <none>                 AGE   v1.37.0-orch   10.0.0.2",
			"c-new      Unknown                    <none>                 AGE   <none>         <none>",
		}},
		{name: "wide", args: []string{"get", "nodes", "-o", "wide"}, want: []string{
			"NAME       STATUS                     ROLES                  AGE   VERSION        INTERNAL-IP   EXTERNAL-IP   OS-IMAGE              KERNEL-VERSION   CONTAINER-RUNTIME",
			"a-master   Ready,SchedulingDisabled   control-plane,master   AGE   v1.37.0-orch   10.0.0.1      <none>        Debian GNU/Linux 12   6.1.0            docker://20.10.24",
			"b-worker   NotReady                   <none>                 AGE   v1.37.0-orch   10.0.0.2      203.0.113.2   <unknown>             <unknown>        <unknown>",
			"c-new      Unknown                    <none>                 AGE   <none>         <none>        <none>        <unknown>             <unknown>        <unknown>",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			matchTable(t, mustSucceed(t, env, "", tc.args...).stdout, tc.want...)
		})
	}
}
