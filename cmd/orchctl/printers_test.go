package main

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStatus(t *testing.T) {
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	terminated := func(reason string, code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	now := metav1.Now()
	cases := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{name: "phase", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, want: "Running"},
		{name: "no phase yet", pod: corev1.Pod{}, want: "Pending"},
		{name: "pod reason", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}}, want: "Evicted"},
		{name: "waiting reason", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}}}, want: "CrashLoopBackOff"},
		{name: "image pull", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{State: waiting("ErrImagePull")}}}}, want: "ErrImagePull"},
		{name: "completed", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}}}}, want: "Completed"},
		{name: "exit code without reason", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{{State: terminated("", 2)}}}}, want: "ExitCode:2"},
		{name: "one completed, one still serving", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}, {State: running, Ready: true}}}}, want: "Running"},
		{name: "the first container with a reason wins", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: running, Ready: true}, {State: waiting("ErrImagePull")}, {State: waiting("CrashLoopBackOff")}}}},
			want: "ErrImagePull"},
		{name: "terminating", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}}},
			want: "Terminating"},
		{name: "init containers running", pod: corev1.Pod{
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{State: terminated("Completed", 0)}, {State: running}}}},
			want: "Init:1/2"},
		{name: "init container failed", pod: corev1.Pod{
			Spec:   corev1.PodSpec{InitContainers: []corev1.Container{{Name: "a"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{State: terminated("Error", 1)}}}},
			want: "Init:Error"},
		{name: "init container crash-looping", pod: corev1.Pod{
			Spec:   corev1.PodSpec{InitContainers: []corev1.Container{{Name: "a"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}}},
			want: "Init:CrashLoopBackOff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := podStatus(&tc.pod); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodRestarts(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		statuses []corev1.ContainerStatus
		want     string
	}{
		{name: "none", want: "0"},
		{name: "count only", statuses: []corev1.ContainerStatus{{RestartCount: 2}, {RestartCount: 1}}, want: "3"},
		{name: "with the last one", statuses: []corev1.ContainerStatus{{RestartCount: 4, LastTerminationState: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now.Add(-125 * time.Second))}}}}, want: "4 (2m5s ago)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: tc.statuses}}
			if got := podRestarts(p, now); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServiceCells(t *testing.T) {
	cases := []struct {
		name      string
		spec      corev1.ServiceSpec
		status    corev1.ServiceStatus
		wantPorts string
		wantExt   string
	}{
		{name: "cluster IP", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}},
			wantPorts: "53/UDP", wantExt: "<none>"},
		{name: "node ports", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}, {Port: 443}}},
			wantPorts: "80:30080/TCP,443/TCP", wantExt: "<none>"},
		{name: "load balancer pending", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}, wantPorts: "<none>", wantExt: "<pending>"},
		{name: "load balancer with ingress", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			status:    corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}, {Hostname: "lb.example"}}}},
			wantPorts: "<none>", wantExt: "192.0.2.1,lb.example"},
		{name: "external IPs", spec: corev1.ServiceSpec{ExternalIPs: []string{"192.0.2.7"}}, wantPorts: "<none>", wantExt: "192.0.2.7"},
		{name: "external name", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example"}, wantPorts: "<none>", wantExt: "db.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: tc.spec, Status: tc.status}
			if got := servicePorts(s.Spec.Ports); got != tc.wantPorts {
				t.Fatalf("got PORT(S) %q, want %q", got, tc.wantPorts)
			}
			if got := serviceExternalIP(s); got != tc.wantExt {
				t.Fatalf("got EXTERNAL-IP %q, want %q", got, tc.wantExt)
			}
		})
	}
}

func TestNodeStatus(t *testing.T) {
	cond := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: s}}
	}
	cases := []struct {
		name string
		node corev1.Node
		want string
	}{
		{name: "ready", node: corev1.Node{Status: corev1.NodeStatus{Conditions: cond(corev1.ConditionTrue)}}, want: "Ready"},
		{name: "not ready", node: corev1.Node{Status: corev1.NodeStatus{Conditions: cond(corev1.ConditionFalse)}}, want: "NotReady"},
		{name: "unknown", node: corev1.Node{Status: corev1.NodeStatus{Conditions: cond(corev1.ConditionUnknown)}}, want: "Unknown"},
		{name: "no condition", node: corev1.Node{}, want: "Unknown"},
		{name: "cordoned", node: corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: cond(corev1.ConditionTrue)}},
			want: "Ready,SchedulingDisabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeStatus(&tc.node); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestJobCells(t *testing.T) {
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	i32 := func(n int32) *int32 { return &n }
	ts := func(d time.Duration) *metav1.Time { t := metav1.NewTime(start.Add(d)); return &t }
	cases := []struct {
		name                                   string
		job                                    batchv1.Job
		wantStatus, wantCompletions, wantSince string
	}{
		{name: "running", job: batchv1.Job{Spec: batchv1.JobSpec{Completions: i32(3)}, Status: batchv1.JobStatus{Succeeded: 1, StartTime: ts(0)}},
			wantStatus: "Running", wantCompletions: "1/3", wantSince: "90s"},
		{name: "complete", job: batchv1.Job{Spec: batchv1.JobSpec{Completions: i32(1)}, Status: batchv1.JobStatus{Succeeded: 1, StartTime: ts(0), CompletionTime: ts(5 * time.Second),
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}},
			wantStatus: "Complete", wantCompletions: "1/1", wantSince: "5s"},
		{name: "parallel work queue", job: batchv1.Job{Spec: batchv1.JobSpec{Parallelism: i32(4)}},
			wantStatus: "Running", wantCompletions: "0/1 of 4", wantSince: ""},
		{name: "failed", job: batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}},
			wantStatus: "Failed", wantCompletions: "0/1", wantSince: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobStatus(&tc.job); got != tc.wantStatus {
				t.Fatalf("got STATUS %q, want %q", got, tc.wantStatus)
			}
			if got := jobCompletions(&tc.job); got != tc.wantCompletions {
				t.Fatalf("got COMPLETIONS %q, want %q", got, tc.wantCompletions)
			}
			if got := jobDuration(&tc.job, start.Add(90*time.Second)); got != tc.wantSince {
				t.Fatalf("got DURATION %q, want %q", got, tc.wantSince)
			}
		})
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		ago  time.Duration
		want string
	}{
		{ago: 5 * time.Second, want: "5s"},
		{ago: 3*time.Minute + 2*time.Second, want: "3m2s"},
		{ago: 4 * time.Hour, want: "4h"},
		{ago: 6 * 24 * time.Hour, want: "6d"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := age(metav1.NewTime(now.Add(-tc.ago)), now); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := age(metav1.Time{}, now); got != "<unknown>" {
		t.Fatalf("got %q for no timestamp, want <unknown>", got)
	}
}
