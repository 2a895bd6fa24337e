package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "orch.dev/orch/node/runtime"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func running(id string) *rt.Container {
	return &rt.Container{ID: id, State: rt.StateRunning, StartedAt: t0}
}

func exited(id string, code int) *rt.Container {
	return &rt.Container{ID: id, State: rt.StateExited, ExitCode: code, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
}

func podWith(policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy}}
}

func condStatus(st corev1.PodStatus, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return "missing"
}

func TestComputeStatus(t *testing.T) {
	crashLoop := &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=app"}
	cases := []struct {
		name        string
		pod         *corev1.Pod
		view        podView
		wantPhase   corev1.PodPhase
		wantReady   corev1.ConditionStatus
		wantInit    corev1.ConditionStatus
		check       func(t *testing.T, st corev1.PodStatus)
		wantWaiting string // state.waiting.reason of the first app container
	}{
		{name: "nothing started yet", pod: podWith(corev1.RestartPolicyAlways),
			view:      podView{app: []containerView{{name: "app"}}},
			wantPhase: corev1.PodPending, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "ContainerCreating"},
		{name: "all running", pod: podWith(corev1.RestartPolicyAlways),
			view:      podView{sandboxReady: true, podIP: "10.42.0.5", hostIP: "192.168.1.2", startTime: t0, app: []containerView{{name: "a", current: running("1")}, {name: "b", current: running("2")}}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionTrue, wantInit: corev1.ConditionTrue,
			check: func(t *testing.T, st corev1.PodStatus) {
				if st.PodIP != "10.42.0.5" || st.HostIP != "192.168.1.2" || st.StartTime == nil || st.ContainerStatuses[0].ContainerID != "docker://1" || !st.ContainerStatuses[0].Ready {
					t.Fatalf("got %+v, want pod IP, host IP, start time and a ready container", st)
				}
			}},
		{name: "one running one being created", pod: podWith(corev1.RestartPolicyAlways),
			view:      podView{app: []containerView{{name: "a", current: running("1")}, {name: "b"}}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue},
		{name: "Never and a non-zero exit ends Failed", pod: podWith(corev1.RestartPolicyNever),
			view:      podView{app: []containerView{{name: "app", current: exited("1", 3)}}},
			wantPhase: corev1.PodFailed, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue,
			check: func(t *testing.T, st corev1.PodStatus) {
				term := st.ContainerStatuses[0].State.Terminated
				if term == nil || term.ExitCode != 3 || term.Reason != "Error" {
					t.Fatalf("got %+v, want terminated with exit 3, reason Error", st.ContainerStatuses[0].State)
				}
				for _, c := range st.Conditions {
					if c.Type == corev1.PodReady && c.Reason != "PodCompleted" {
						t.Fatalf("got Ready reason %q, want PodCompleted", c.Reason)
					}
				}
			}},
		{name: "OnFailure and exit 0 ends Succeeded", pod: podWith(corev1.RestartPolicyOnFailure),
			view:      podView{app: []containerView{{name: "app", current: exited("1", 0)}}},
			wantPhase: corev1.PodSucceeded, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue,
			check: func(t *testing.T, st corev1.PodStatus) {
				if r := st.ContainerStatuses[0].State.Terminated.Reason; r != "Completed" {
					t.Fatalf("got reason %q, want Completed", r)
				}
			}},
		{name: "OnFailure and a failure keeps running", pod: podWith(corev1.RestartPolicyOnFailure),
			view:      podView{app: []containerView{{name: "app", current: exited("1", 1), restarts: 1, waiting: crashLoop}}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "CrashLoopBackOff"},
		{name: "crash loop", pod: podWith(corev1.RestartPolicyAlways),
			view:      podView{app: []containerView{{name: "app", current: exited("2", 1), previous: exited("1", 1), restarts: 2, waiting: crashLoop}}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "CrashLoopBackOff",
			check: func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if cs.RestartCount != 2 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
					t.Fatalf("got %+v, want 2 restarts and the last termination with exit 1", cs)
				}
			}},
		{name: "OOM killed", pod: podWith(corev1.RestartPolicyNever),
			view:      podView{app: []containerView{{name: "app", current: &rt.Container{ID: "1", State: rt.StateExited, ExitCode: 137, OOMKilled: true}}}},
			wantPhase: corev1.PodFailed, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue,
			check: func(t *testing.T, st corev1.PodStatus) {
				if r := st.ContainerStatuses[0].State.Terminated.Reason; r != "OOMKilled" {
					t.Fatalf("got reason %q, want OOMKilled", r)
				}
			}},
		{name: "init container running", pod: podWith(corev1.RestartPolicyAlways),
			view: podView{init: []containerView{{name: "setup", current: running("i")}},
				app: []containerView{{name: "app", waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
			wantPhase: corev1.PodPending, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionFalse, wantWaiting: "PodInitializing"},
		{name: "init container failed with Never", pod: podWith(corev1.RestartPolicyNever),
			view:      podView{init: []containerView{{name: "setup", current: exited("i", 1)}}, app: []containerView{{name: "app"}}},
			wantPhase: corev1.PodFailed, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionFalse},
		{name: "init done, app running", pod: podWith(corev1.RestartPolicyAlways),
			view:      podView{init: []containerView{{name: "setup", current: exited("i", 0)}}, app: []containerView{{name: "app", current: running("a")}}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionTrue, wantInit: corev1.ConditionTrue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := computeStatus(tc.pod, tc.view, t0)
			if st.Phase != tc.wantPhase {
				t.Fatalf("got phase %s, want %s", st.Phase, tc.wantPhase)
			}
			if got := condStatus(st, corev1.PodReady); got != tc.wantReady {
				t.Fatalf("got Ready %s, want %s", got, tc.wantReady)
			}
			if got := condStatus(st, corev1.ContainersReady); got != tc.wantReady {
				t.Fatalf("got ContainersReady %s, want %s", got, tc.wantReady)
			}
			if got := condStatus(st, corev1.PodInitialized); got != tc.wantInit {
				t.Fatalf("got Initialized %s, want %s", got, tc.wantInit)
			}
			if got := condStatus(st, corev1.PodScheduled); got != corev1.ConditionTrue {
				t.Fatalf("got PodScheduled %s, want True", got)
			}
			if tc.wantWaiting != "" {
				w := st.ContainerStatuses[0].State.Waiting
				if w == nil || w.Reason != tc.wantWaiting {
					t.Fatalf("got state %+v, want waiting %s", st.ContainerStatuses[0].State, tc.wantWaiting)
				}
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}

func TestTransitionTimesAreKept(t *testing.T) {
	pod := podWith(corev1.RestartPolicyAlways)
	v := podView{app: []containerView{{name: "app", current: running("1")}}}
	first := computeStatus(pod, v, t0)
	pod.Status = first
	second := computeStatus(pod, v, t0.Add(time.Minute))
	if !statusEqual(first, second) {
		t.Fatalf("the same state computed later differs:\n%+v\n%+v", first.Conditions, second.Conditions)
	}
	v.app[0].current = exited("1", 1)
	v.app[0].waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
	third := computeStatus(pod, v, t0.Add(2*time.Minute))
	for _, c := range third.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.Equal(&metav1.Time{Time: t0.Add(2 * time.Minute)}) {
			t.Fatalf("got Ready transition at %v, want the time it changed", c.LastTransitionTime)
		}
	}
}
