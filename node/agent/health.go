package agent

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"orch.dev/orch/node/prober"
	rt "orch.dev/orch/node/runtime"
)

// Health probes and lifecycle hooks. The prober runs each probed
// container's probes in its own goroutine and pokes the pod worker when the
// container's started or ready flag flips or it must be killed; the worker
// then reads the probes' status into the pod's status (written only when it
// changed) and does the killing itself, so the engine is driven from one
// place.

func probeTarget(c *corev1.Container, id, podIP string) prober.Target {
	return prober.Target{PodIP: podIP, ContainerID: id, Ports: c.Ports}
}

// podGrace is the grace period a pod's containers get when stopped.
func podGrace(pod *corev1.Pod) time.Duration {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
}

// running handles an app container that runs: it makes sure its probes
// run, takes their verdict into the view, and kills the container when its
// liveness or startup probe failed (the next sync restarts it as the
// restart policy says).
func (w *podWorker) running(ctx context.Context, pod *corev1.Pod, c *corev1.Container, role string, v containerView, podIP string) (containerView, bool, time.Duration) {
	if role != rt.RoleApp || !prober.ProbesOf(c).Any() {
		return v, false, 0
	}
	a := w.a
	cur := *v.current
	a.probes.Ensure(ctx, prober.Spec{
		PodUID: string(w.uid), ContainerID: cur.ID, Container: c.DeepCopy(), PodIP: podIP, StartedAt: cur.StartedAt,
		Changed: w.poke,
		Event: func(typ, reason, msg string) {
			if p := w.currentPod(); p != nil {
				a.event(p, typ, reason, "%s", msg)
			}
		},
	})
	st, ok := a.probes.Status(cur.ID)
	if !ok {
		return v, false, 0
	}
	v.probe = &st
	if st.Kill == nil {
		return v, false, 0
	}
	a.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.Name, strings.ToLower(string(st.Kill.Kind)))
	grace := podGrace(pod)
	if st.Kill.Grace != nil {
		grace = *st.Kill.Grace
	}
	a.probes.Stop(cur.ID)
	a.stopContainer(ctx, pod, cur, podIP, grace)
	// Look again at once: the container has stopped and restarts now or
	// after its back-off.
	return v, false, 10 * time.Millisecond
}

// retainProbes stops the probes of the pod's containers that are not
// running any more (a die event usually stopped them already).
func (w *podWorker) retainProbes(v podView) {
	keep := map[string]bool{}
	for _, c := range v.app {
		if c.probe != nil && c.current != nil && c.current.State == rt.StateRunning {
			keep[c.current.ID] = true
		}
	}
	w.a.probes.Retain(string(w.uid), keep)
}

// postStart runs a container's postStart hook right after it started. A
// failed hook kills the container (event FailedPostStartHook); the restart
// policy then decides.
func (w *podWorker) postStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, role, id, podIP string) *corev1.ContainerStateWaiting {
	if role != rt.RoleApp || c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return nil
	}
	a := w.a
	err := a.probes.Runner().Hook(ctx, c.Lifecycle.PostStart, probeTarget(c, id, podIP))
	if err == nil {
		return nil
	}
	a.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook of container %s failed: %v", c.Name, err)
	a.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed its postStart hook, will be restarted", c.Name)
	cur := rt.Container{ID: id, State: rt.StateRunning, Labels: map[string]string{rt.LabelRole: rt.RoleApp, rt.LabelContainer: c.Name}}
	a.stopContainer(ctx, pod, cur, podIP, podGrace(pod))
	return &corev1.ContainerStateWaiting{Reason: "PostStartHookError", Message: err.Error()}
}

// appContainer returns the spec of an engine container of the pod's app
// containers, or nil.
func appContainer(pod *corev1.Pod, c rt.Container) *corev1.Container {
	if pod == nil || c.Labels[rt.LabelRole] != rt.RoleApp {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == c.Labels[rt.LabelContainer] {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// stopContainer stops a running container: its preStop hook first, then
// the stop signal with the part of the grace period the hook left, then
// SIGKILL when that runs out.
func (a *Agent) stopContainer(ctx context.Context, pod *corev1.Pod, c rt.Container, podIP string, grace time.Duration) {
	if spec := appContainer(pod, c); spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		left, err := a.probes.Runner().PreStop(ctx, spec.Lifecycle.PreStop, probeTarget(spec, c.ID, podIP), grace)
		if err != nil {
			a.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook of container %s failed: %v", spec.Name, err)
		}
		grace = left
	}
	a.stop(ctx, c, grace)
}

// stopForDeletion stops a deleted pod's running containers side by side,
// each after its preStop hook, and returns the containers with those
// marked stopped, for removal.
func (a *Agent) stopForDeletion(ctx context.Context, pod *corev1.Pod, cs []rt.Container, grace time.Duration) []rt.Container {
	a.probes.StopPod(string(pod.UID))
	podIP := pod.Status.PodIP
	if pod.Spec.HostNetwork {
		podIP = a.cfg.NodeIP
	} else if sbs := pick(cs, "", rt.RoleSandbox); len(sbs) > 0 && sbs[0].State == rt.StateRunning && sbs[0].IP != "" {
		podIP = sbs[0].IP
	}
	out := append([]rt.Container(nil), cs...)
	var wg sync.WaitGroup
	for i := range out {
		c := &out[i]
		if c.Labels[rt.LabelRole] == rt.RoleSandbox || c.State != rt.StateRunning {
			continue
		}
		running := *c
		c.State = rt.StateExited
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.stopContainer(ctx, pod, running, podIP, grace)
		}()
	}
	wg.Wait()
	return out
}
