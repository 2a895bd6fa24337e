package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// startWithObjects starts a server holding a small cluster: a ready node,
// a running pod and a crash-looping one in default, a pending pod in
// kube-system, a NodePort service, a deployment with one of two replicas
// ready, a configmap and an event about the running pod.
func startWithObjects(t *testing.T) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	ctx := context.Background()
	cs := env.Client
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"node-role.kubernetes.io/master": ""}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.0-orch", OSImage: "Debian", KernelVersion: "6.1.0",
				ContainerRuntimeVersion: "docker://28.0.0"},
		},
	}, metav1.CreateOptions{}))

	pod := func(ns, name, app string, status corev1.PodStatus) {
		t.Helper()
		p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "orch/hello:dev"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status = status
		must(cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}))
	}
	pod("default", "web-1", "web", corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.42.0.5",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}},
	})
	pod("default", "crash", "crash", corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "c", RestartCount: 3,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}},
	})
	pod("kube-system", "sys", "sys", corev1.PodStatus{Phase: corev1.PodPending})

	must(cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.43.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
				{Name: "https", Port: 443, NodePort: 30443, Protocol: corev1.ProtocolTCP},
			},
		},
	}, metav1.CreateOptions{}))

	two := int32(2)
	d, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "orch/hello:dev"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1}
	must(cs.AppsV1().Deployments("default").UpdateStatus(ctx, d, metav1.UpdateOptions{}))

	must(cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"a": "1", "b": "2"},
	}, metav1.CreateOptions{}))

	web1, err := cs.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	must(cs.CoreV1().Events("default").Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1.started"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", UID: web1.UID,
			APIVersion: "v1"},
		Type: corev1.EventTypeNormal, Reason: "Started", Message: "Started container c",
		Source:        corev1.EventSource{Component: "orch-agent", Host: "n1"},
		LastTimestamp: metav1.Now(), FirstTimestamp: metav1.Now(), Count: 1,
	}, metav1.CreateOptions{}))
	return env
}

func TestGetTables(t *testing.T) {
	env := startWithObjects(t)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "pods",
			args: []string{"get", "pods"},
			want: []string{
				"NAME    READY   STATUS             RESTARTS   AGE",
				"crash   0/1     CrashLoopBackOff   3          AGE",
				"web-1   1/1     Running            0          AGE",
			},
		},
		{
			name: "pods wide",
			args: []string{"get", "pods", "-o", "wide"},
			want: []string{
				"NAME    READY   STATUS             RESTARTS   AGE   IP          NODE",
				"crash   0/1     CrashLoopBackOff   3          AGE   <none>      <none>",
				"web-1   1/1     Running            0          AGE   10.42.0.5   <none>",
			},
		},
		{
			name: "all namespaces",
			args: []string{"get", "po", "-A"},
			want: []string{
				"NAMESPACE     NAME    READY   STATUS             RESTARTS   AGE",
				"default       crash   0/1     CrashLoopBackOff   3          AGE",
				"default       web-1   1/1     Running            0          AGE",
				"kube-system   sys     0/1     Pending            0          AGE",
			},
		},
		{
			name: "label selector",
			args: []string{"get", "pods", "-l", "app=web"},
			want: []string{
				"NAME    READY   STATUS    RESTARTS   AGE",
				"web-1   1/1     Running   0          AGE",
			},
		},
		{
			name: "field selector across namespaces",
			args: []string{"get", "pods", "--field-selector", "status.phase=Pending", "--all-namespaces"},
			want: []string{
				"NAMESPACE     NAME   READY   STATUS    RESTARTS   AGE",
				"kube-system   sys    0/1     Pending   0          AGE",
			},
		},
		{
			name: "services wide",
			args: []string{"get", "svc", "-o", "wide"},
			want: []string{
				"NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)                      AGE   SELECTOR",
				"web    NodePort   10.43.0.10   <none>        80:30080/TCP,443:30443/TCP   AGE   app=web",
			},
		},
		{
			name: "deployments",
			args: []string{"get", "deployments"},
			want: []string{
				"NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
				"web    1/2     2            1           AGE",
			},
		},
		{
			name: "several kinds",
			args: []string{"get", "deploy,cm"},
			want: []string{
				"NAME                  READY   UP-TO-DATE   AVAILABLE   AGE",
				"deployment.apps/web   1/2     2            1           AGE",
				"",
				"NAME                 DATA   AGE",
				"configmap/settings   2      AGE",
			},
		},
		{
			name: "all",
			args: []string{"get", "all"},
			want: []string{
				"NAME        READY   STATUS             RESTARTS   AGE",
				"pod/crash   0/1     CrashLoopBackOff   3          AGE",
				"pod/web-1   1/1     Running            0          AGE",
				"",
				"NAME          TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)                      AGE",
				"service/web   NodePort   10.43.0.10   <none>        80:30080/TCP,443:30443/TCP   AGE",
				"",
				"NAME                  READY   UP-TO-DATE   AVAILABLE   AGE",
				"deployment.apps/web   1/2     2            1           AGE",
			},
		},
		{
			name: "nodes",
			args: []string{"get", "nodes"},
			want: []string{
				"NAME   STATUS   ROLES    AGE   VERSION        INTERNAL-IP",
				"n1     Ready    master   AGE   v1.37.0-orch   10.0.0.1",
			},
		},
		{
			name: "nodes wide",
			args: []string{"get", "nodes", "-o", "wide"},
			want: []string{
				"NAME   STATUS   ROLES    AGE   VERSION        INTERNAL-IP   EXTERNAL-IP   OS-IMAGE   KERNEL-VERSION   CONTAINER-RUNTIME",
				"n1     Ready    master   AGE   v1.37.0-orch   10.0.0.1      <none>        Debian     6.1.0            docker://28.0.0",
			},
		},
		{
			name: "events",
			args: []string{"get", "ev"},
			want: []string{
				"LAST SEEN   TYPE     REASON    OBJECT      MESSAGE",
				"AGE         Normal   Started   pod/web-1   Started container c",
			},
		},
		{
			name: "namespaces",
			args: []string{"get", "ns"},
			want: []string{
				"NAME          STATUS   AGE",
				"default       Active   AGE",
				"kube-public   Active   AGE",
				"kube-system   Active   AGE",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustSucceed(t, env, "", tc.args...)
			matchTable(t, r.stdout, tc.want...)
			if r.stderr != "" {
				t.Fatalf("got stderr %q, want none", r.stderr)
			}
		})
	}
}

func TestGetNamesAndKinds(t *testing.T) {
	env := startWithObjects(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "plural", args: []string{"get", "pods", "-o", "name"}, want: "pod/crash\npod/web-1"},
		{name: "singular", args: []string{"get", "pod", "web-1", "-o", "name"}, want: "pod/web-1"},
		{name: "short name", args: []string{"get", "po", "web-1", "-o", "name"}, want: "pod/web-1"},
		{name: "Kind", args: []string{"get", "Pod", "web-1", "-o", "name"}, want: "pod/web-1"},
		{name: "kind.group", args: []string{"get", "deployment.apps", "-o", "name"}, want: "deployment.apps/web"},
		{name: "resource.version.group", args: []string{"get", "deployments.v1.apps", "-o", "name"}, want: "deployment.apps/web"},
		{name: "kind/name arguments", args: []string{"get", "deploy/web", "cm/settings", "-o", "name"}, want: "deployment.apps/web\nconfigmap/settings"},
		{name: "namespace flag before the command", args: []string{"-n", "kube-system", "get", "pods", "-o", "name"}, want: "pod/sys"},
		{name: "namespace flag after the kind", args: []string{"get", "pods", "-n", "kube-system", "-o", "name"}, want: "pod/sys"},
		{name: "glued short flag", args: []string{"get", "pods", "-nkube-system", "-oname"}, want: "pod/sys"},
		{name: "cluster-scoped kinds ignore the namespace", args: []string{"get", "no", "-n", "kube-system", "-o", "name"}, want: "node/n1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustSucceed(t, env, "", tc.args...)
			if got := strings.TrimSpace(r.stdout); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGetStructuredOutput(t *testing.T) {
	env := startWithObjects(t)
	t.Run("one object as itself in JSON", func(t *testing.T) {
		r := mustSucceed(t, env, "", "get", "pod", "web-1", "-o", "json")
		var obj map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil {
			t.Fatalf("got %v parsing %q, want JSON", err, r.stdout)
		}
		if got := obj["kind"]; got != "Pod" {
			t.Fatalf("got kind %v, want Pod", got)
		}
	})
	t.Run("a listing as a List in YAML", func(t *testing.T) {
		r := mustSucceed(t, env, "", "get", "pods", "-o", "yaml")
		var list struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Items      []struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Metadata   metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}
		if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("got %v parsing %q, want YAML", err, r.stdout)
		}
		if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 {
			t.Fatalf("got %s %s with %d items, want v1 List with 2", list.APIVersion, list.Kind, len(list.Items))
		}
		for _, it := range list.Items {
			if it.APIVersion != "v1" || it.Kind != "Pod" {
				t.Fatalf("got item %s with apiVersion %q kind %q, want v1 Pod", it.Metadata.Name, it.APIVersion, it.Kind)
			}
		}
	})
}

func TestGetErrors(t *testing.T) {
	env := startWithObjects(t)
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "unknown kind", args: []string{"get", "foo"}, wantCode: 1, wantStderr: `error: the server doesn't have a resource type "foo"`},
		{name: "missing object", args: []string{"get", "pods", "nope"}, wantCode: 1, wantStderr: `error: pods "nope" not found`},
		{name: "one of two missing", args: []string{"get", "pods", "web-1", "nope", "-o", "name"}, wantCode: 1,
			wantStdout: "pod/web-1", wantStderr: `error: pods "nope" not found`},
		{name: "empty namespace", args: []string{"get", "pods", "-n", "kube-public"}, wantStderr: "No resources found in kube-public namespace."},
		{name: "bad output", args: []string{"get", "pods", "-o", "xml"}, wantCode: 1, wantStderr: `error: --output "xml": want wide, yaml, json or name`},
		{name: "bad selector", args: []string{"get", "pods", "-l", "a in ("}, wantCode: 1, wantStderr: `error: --selector "a in (":`},
		{name: "names with -A", args: []string{"get", "pods", "web-1", "-A"}, wantCode: 1, wantStderr: "cannot be fetched by name across all namespaces"},
		{name: "no kind", args: []string{"get"}, wantCode: 1, wantStderr: "say which kind to get"},
		{name: "unknown flag", args: []string{"get", "pods", "--colour"}, wantCode: 1, wantStderr: "flag provided but not defined: -colour (see 'orchctl get --help')"},
		{name: "unknown command", args: []string{"gte", "pods"}, wantCode: 1, wantStderr: `unknown command "gte"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if got := strings.TrimSpace(r.stdout); got != tc.wantStdout {
				t.Fatalf("got stdout %q, want %q", got, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}
}

func TestGetWatch(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		wantFirst string // printed before the change
		wantLater string // printed for the change
	}{
		{name: "table", args: []string{"get", "pods", "--watch"}, wantFirst: "NAME    READY", wantLater: "late    0/1     Pending"},
		{name: "names", args: []string{"get", "pods", "-w", "-o", "name"}, wantFirst: "pod/web-1", wantLater: "pod/late"},
		{name: "one object", args: []string{"get", "pod", "late", "-w", "-o", "name"}, wantFirst: "", wantLater: "pod/late"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startWithObjects(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, append([]string{"--kubeconfig", env.Kubeconfig}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			}()
			testutil.Eventually(t, 10*time.Second, func() string {
				if tc.wantFirst == "" && !strings.Contains(stderr.String(), "No resources found") {
					return "the watch has not listed yet; stderr: " + stderr.String()
				}
				if !strings.Contains(stdout.String(), tc.wantFirst) {
					return "the listing has no " + tc.wantFirst + "; stdout: " + stdout.String()
				}
				return ""
			})
			_, err := env.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "late"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, func() string {
				if !strings.Contains(stdout.String(), tc.wantLater) {
					return "no " + tc.wantLater + " yet; stdout: " + stdout.String()
				}
				return ""
			})
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("got exit %d after interrupting the watch, want 0; stderr: %s", code, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the watch did not end when its context was cancelled")
			}
		})
	}
}
