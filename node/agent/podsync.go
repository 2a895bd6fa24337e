package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	rt "orch.dev/orch/node/runtime"
)

// podWorker converges the engine to one pod. Events only kick it; each
// sync looks at the pod and its containers as they are now.
type podWorker struct {
	a    *Agent
	uid  types.UID
	kick chan struct{}

	mu        sync.Mutex
	pod       *corev1.Pod // the latest from the API; nil once deleted there
	startTime time.Time
	pullFail  map[string]pullFailure // per container: the last failed pull
	backedOff map[string]int         // per container: the attempt a BackOff event was sent for
	// nextUsageCheck is when to measure the emptyDirs against their
	// sizeLimit again; failed is why the pod was failed, once it was.
	nextUsageCheck time.Time
	failed         *podFailure
}

type pullFailure struct {
	at       time.Time
	msg      string
	reported bool // the BackOff event for this failure was sent
}

// setPod records the pod's latest state, and kicks a sync when something
// the worker acts on changed. Status updates (most of them the agent's own
// writes coming back) only refresh the copy: syncing on each would churn
// the engine and cut short states meant to last (ErrImagePull).
func (w *podWorker) setPod(p *corev1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p
	w.mu.Unlock()
	if old == nil || p == nil || old.Generation != p.Generation || old.UID != p.UID ||
		(old.DeletionTimestamp == nil) != (p.DeletionTimestamp == nil) ||
		!ptrEqual(old.DeletionGracePeriodSeconds, p.DeletionGracePeriodSeconds) ||
		old.Status.Phase != p.Status.Phase && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
		w.poke()
	}
}

func ptrEqual(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func (w *podWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *podWorker) currentPod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

// run syncs the pod whenever kicked, and at least every resync period,
// until the pod and its containers are gone.
func (w *podWorker) run(ctx context.Context) {
	t := time.NewTicker(w.a.cfg.Resync)
	defer t.Stop()
	for {
		finished, wake := w.sync(ctx)
		if finished {
			w.a.forgetWorker(w.uid)
			return
		}
		var timer <-chan time.Time
		if wake > 0 {
			timer = time.After(wake)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
		case <-timer:
		}
	}
}

// engineContainers lists the pod's containers, inspected: the list does
// not carry exit codes or times.
func (w *podWorker) engineContainers(ctx context.Context) ([]rt.Container, error) {
	list, err := w.a.rt.ListContainers(ctx, map[string]string{rt.LabelNode: w.a.cfg.Name, rt.LabelPodUID: string(w.uid)})
	if err != nil {
		return nil, err
	}
	out := make([]rt.Container, 0, len(list))
	for _, c := range list {
		full, err := w.a.inspect(ctx, c)
		if errors.Is(err, rt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, full)
	}
	return out, nil
}

func attemptOf(c rt.Container) int {
	n, _ := strconv.Atoi(c.Labels[rt.LabelAttempt])
	return n
}

// pick returns the containers of one name and role, newest attempt first.
func pick(cs []rt.Container, name, role string) []rt.Container {
	var out []rt.Container
	for _, c := range cs {
		if c.Labels[rt.LabelRole] == role && (role == rt.RoleSandbox || c.Labels[rt.LabelContainer] == name) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return attemptOf(out[i]) > attemptOf(out[j]) })
	return out
}

func ptrTo(c rt.Container) *rt.Container { return &c }

// sync converges once. It reports whether the worker is finished, and
// when it wants to look again (a back-off ending).
func (w *podWorker) sync(ctx context.Context) (finished bool, wake time.Duration) {
	a := w.a
	pod := w.currentPod()
	cs, err := w.engineContainers(ctx)
	if err != nil {
		a.log.Warn("list containers", "pod", w.uid, "err", err)
		return false, time.Second
	}
	if pod == nil {
		// Gone from the API (force-deleted, or our final delete landed).
		a.removeAll(ctx, cs, 0)
		if err := a.volumes.tearDown(w.uid); err != nil {
			a.log.Warn("remove pod volumes", "pod", w.uid, "err", err)
		}
		return true, 0
	}
	if pod.DeletionTimestamp != nil {
		return false, w.terminate(ctx, pod, cs)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished pods do not run again; their sandbox is stopped.
		for _, sb := range pick(cs, "", rt.RoleSandbox) {
			if sb.State == rt.StateRunning {
				a.stop(ctx, sb, 0)
			}
		}
		return false, 0
	}
	w.mu.Lock()
	if w.startTime.IsZero() {
		w.startTime = a.now()
		if pod.Status.StartTime != nil {
			w.startTime = pod.Status.StartTime.Time
		}
	}
	w.mu.Unlock()

	view := podView{hostIP: a.cfg.NodeIP, startTime: w.startTime}
	f, failWake := w.failure(pod, w.startTime)
	if f != nil {
		w.fail(ctx, pod, cs, view, f)
		return false, 0
	}
	if ok, retry := w.setUpVolumes(ctx, pod, view); !ok {
		return false, retry
	}
	sandboxes := pick(cs, "", rt.RoleSandbox)
	var sandbox *rt.Container
	if len(sandboxes) > 0 && sandboxes[0].State == rt.StateRunning {
		sandbox = &sandboxes[0]
	} else {
		attempt := 0
		if len(sandboxes) > 0 {
			attempt = attemptOf(sandboxes[0]) + 1
			// A new sandbox means a new network namespace: every
			// container of the old one stops and starts again in it.
			for _, c := range cs {
				if c.Labels[rt.LabelRole] != rt.RoleSandbox && c.State == rt.StateRunning {
					a.stop(ctx, c, time.Second)
				}
			}
		}
		sb, err := a.runSandbox(ctx, pod, attempt)
		if err != nil {
			a.log.Warn("start sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			a.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			w.report(pod, w.waitingView(pod, view, "ContainerCreating", err.Error()))
			return false, 2 * time.Second
		}
		sandbox = &sb
		cs = append(cs, sb)
	}
	view.sandboxReady = true
	view.podIP = sandbox.IP
	if pod.Spec.HostNetwork {
		view.podIP = a.cfg.NodeIP
	}
	inSandbox := func(c rt.Container) bool { return c.Labels[rt.LabelSandbox] == sandbox.ID }

	// Init containers, one at a time, in order.
	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !initDone {
			view.init = append(view.init, containerView{name: c.Name, image: c.Image, waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}})
			continue
		}
		v, done, next := w.converge(ctx, pod, c, rt.RoleInit, cs, sandbox, view.podIP, inSandbox)
		view.init = append(view.init, v)
		wake = minWake(wake, next)
		if !done {
			initDone = false
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if !initDone {
			view.app = append(view.app, containerView{name: c.Name, image: c.Image, waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}})
			continue
		}
		v, _, next := w.converge(ctx, pod, c, rt.RoleApp, cs, sandbox, view.podIP, inSandbox)
		view.app = append(view.app, v)
		wake = minWake(wake, next)
	}
	a.gcOld(ctx, cs)
	w.retainProbes(view)
	w.report(pod, view)
	return false, minWake(wake, failWake)
}

func minWake(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// converge brings one container to what its role and the restart policy
// want. It reports the container's view, whether it is done (an init
// container that succeeded), and when to look again.
func (w *podWorker) converge(ctx context.Context, pod *corev1.Pod, c *corev1.Container, role string, cs []rt.Container, sandbox *rt.Container, podIP string, inSandbox func(rt.Container) bool) (containerView, bool, time.Duration) {
	a := w.a
	all := pick(cs, c.Name, role)
	v := attemptsView(c, all)
	next := 0
	if len(all) > 0 {
		next = attemptOf(all[0]) + 1
	}
	cur := v.current
	switch {
	case cur == nil:
		// Never started: start it.
	case !inSandbox(*cur):
		// From an old sandbox: start again in this one, without back-off.
		if cur.State == rt.StateRunning {
			a.stop(ctx, *cur, time.Second)
		}
	case cur.State == rt.StateRunning:
		return w.running(ctx, pod, c, role, v, podIP)
	case cur.State == rt.StateCreated:
		// Created but not started (the agent stopped in between): start it.
		if err := a.rt.StartContainer(ctx, cur.ID); err != nil {
			v.waiting = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		}
		return v, false, time.Second
	case cur.State == rt.StateExited:
		succeeded := cur.ExitCode == 0
		if role == rt.RoleInit && succeeded {
			return v, true, 0
		}
		restart := role == rt.RoleInit || pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
			(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && !succeeded)
		if role == rt.RoleInit && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			restart = false
		}
		if !restart {
			return v, false, 0
		}
		key := backoffKey(string(pod.UID), role+"/"+c.Name)
		ran := cur.FinishedAt.Sub(cur.StartedAt)
		if wait := a.backoff.restart(key, a.now(), cur.FinishedAt, ran); wait > 0 {
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", a.backoff.current(key).Round(time.Second), c.Name, pod.Name, pod.Namespace, pod.UID)
			v.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
			w.mu.Lock()
			first := w.backedOff[c.Name] != attemptOf(*cur)+1
			w.backedOff[c.Name] = attemptOf(*cur) + 1
			w.mu.Unlock()
			if first {
				a.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			}
			return v, false, wait
		}
		a.event(pod, corev1.EventTypeNormal, "Restarting", "Restarting container %s (exit code %d)", c.Name, cur.ExitCode)
	}
	if waiting, retry := w.start(ctx, pod, c, role, next, sandbox, podIP); waiting != nil {
		v.waiting = waiting
		return v, false, retry
	}
	return v, false, time.Second
}

// start pulls and starts one attempt of a container. On failure it returns
// why the container waits and when to try again.
func (w *podWorker) start(ctx context.Context, pod *corev1.Pod, c *corev1.Container, role string, attempt int, sandbox *rt.Container, podIP string) (*corev1.ContainerStateWaiting, time.Duration) {
	a := w.a
	key := backoffKey(string(pod.UID), "pull/"+c.Name)
	w.mu.Lock()
	pf, failedBefore := w.pullFail[c.Name]
	w.mu.Unlock()
	if failedBefore {
		if wait := a.pullBackoff.restart(key, a.now(), pf.at, 0); wait > 0 {
			if !pf.reported {
				pf.reported = true
				w.mu.Lock()
				w.pullFail[c.Name] = pf
				w.mu.Unlock()
				a.event(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
			}
			return &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q: %s", c.Image, pf.msg)}, wait
		}
	}
	policy := rt.PullPolicy(c.ImagePullPolicy)
	if policy == "" {
		policy = rt.PullIfNotPresent
	}
	if err := a.rt.EnsureImage(ctx, c.Image, policy, a.pullAuth(ctx, pod)); err != nil {
		if errors.Is(err, rt.ErrImageNeverPull) {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			a.event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
			return &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}, 10 * time.Second
		}
		w.mu.Lock()
		w.pullFail[c.Name] = pullFailure{at: a.now(), msg: err.Error()}
		w.mu.Unlock()
		if !failedBefore {
			a.pullBackoff.restart(key, a.now(), a.now(), 0) // arm the back-off for the next failure
		}
		a.event(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
		// Look again shortly: for the rest of the back-off the container
		// waits as ImagePullBackOff.
		return &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}, time.Second
	}
	w.mu.Lock()
	delete(w.pullFail, c.Name)
	w.mu.Unlock()
	a.pullBackoff.forgetKey(key)
	spec, err := a.containerConfig(ctx, pod, c, role, attempt, sandbox.ID, podIP)
	if err != nil {
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}, 10 * time.Second
	}
	spec.Labels[rt.LabelSandbox] = sandbox.ID
	id, err := a.rt.CreateContainer(ctx, spec)
	if err != nil {
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}, 10 * time.Second
	}
	a.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if err := a.rt.StartContainer(ctx, id); err != nil {
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}, time.Second
	}
	a.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if waiting := w.postStart(ctx, pod, c, role, id, podIP); waiting != nil {
		return waiting, time.Second
	}
	return nil, 0
}

// waitingView is a view in which every container waits for the same reason.
func (w *podWorker) waitingView(pod *corev1.Pod, v podView, reason, msg string) podView {
	for _, c := range pod.Spec.InitContainers {
		v.init = append(v.init, containerView{name: c.Name, image: c.Image, waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}})
	}
	for _, c := range pod.Spec.Containers {
		v.app = append(v.app, containerView{name: c.Name, image: c.Image, waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}})
	}
	return v
}

func (w *podWorker) report(pod *corev1.Pod, v podView) {
	w.a.status.set(pod, computeStatus(pod, v, w.a.now()))
}

// terminate stops a pod being deleted: containers get the grace period
// (SIGTERM, then SIGKILL), then the sandbox goes, then the pod object.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, cs []rt.Container) time.Duration {
	a := w.a
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	var running []rt.Container
	for _, c := range cs {
		if c.Labels[rt.LabelRole] != rt.RoleSandbox && c.State == rt.StateRunning {
			running = append(running, c)
		}
	}
	if len(running) > 0 {
		a.event(pod, corev1.EventTypeNormal, "Killing", "Stopping %d container(s) with a grace period of %s", len(running), grace)
	}
	a.removeAll(ctx, a.stopForDeletion(ctx, pod, cs, grace), grace)
	// The containers are gone: the pod object can go too. Sending this
	// again (until the informer sees the pod gone) is harmless.
	zero := int64(0)
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		a.log.Warn("final delete of pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return time.Second
	}
	a.backoff.forget(string(pod.UID))
	a.pullBackoff.forget(string(pod.UID))
	return 2 * time.Second
}

// removeAll stops a pod's containers (all at once, each given grace) and
// its sandbox, and removes them.
func (a *Agent) removeAll(ctx context.Context, cs []rt.Container, grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c.Labels[rt.LabelRole] == rt.RoleSandbox {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.State == rt.StateRunning {
				a.stop(ctx, c, grace)
			}
			if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
				a.log.Warn("remove container", "container", c.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	for _, c := range cs {
		if c.Labels[rt.LabelRole] == rt.RoleSandbox {
			if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
				a.log.Warn("remove sandbox", "container", c.Name, "err", err)
			}
		}
	}
}

func (a *Agent) stop(ctx context.Context, c rt.Container, grace time.Duration) {
	if err := a.rt.StopContainer(ctx, c.ID, grace); err != nil {
		a.log.Warn("stop container", "container", c.Name, "err", err)
	}
	a.forgetInspect(c.ID)
}

// gcOld removes exited attempts older than the previous one of each
// container: the latest and the one before are kept for status and logs.
func (a *Agent) gcOld(ctx context.Context, cs []rt.Container) {
	byName := map[string][]rt.Container{}
	for _, c := range cs {
		if c.Labels[rt.LabelRole] == rt.RoleSandbox {
			if c.State == rt.StateExited {
				byName["sandbox"] = append(byName["sandbox"], c)
			}
			continue
		}
		k := c.Labels[rt.LabelRole] + "/" + c.Labels[rt.LabelContainer]
		byName[k] = append(byName[k], c)
	}
	for k, list := range byName {
		sort.Slice(list, func(i, j int) bool { return attemptOf(list[i]) > attemptOf(list[j]) })
		keep := 2
		if k == "sandbox" {
			keep = 0
		}
		for i, c := range list {
			if i >= keep && c.State == rt.StateExited {
				if err := a.rt.RemoveContainer(ctx, c.ID); err == nil {
					a.forgetInspect(c.ID)
				}
			}
		}
	}
}

// runSandbox starts a pod's sandbox on the node's network.
func (a *Agent) runSandbox(ctx context.Context, pod *corev1.Pod, attempt int) (rt.Container, error) {
	spec := rt.SandboxSpec{
		Labels:   containerLabels(pod, "", rt.RoleSandbox, attempt, a.cfg.Name),
		Hostname: pod.Name,
		Network:  a.network,
	}
	if pod.Spec.Hostname != "" {
		spec.Hostname = pod.Spec.Hostname
	}
	if pod.Spec.HostNetwork {
		spec.Network = ""
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 && !pod.Spec.HostNetwork {
				spec.Ports = append(spec.Ports, rt.PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(string(p.Protocol))})
			}
		}
	}
	for _, h := range pod.Spec.HostAliases {
		for _, name := range h.Hostnames {
			spec.ExtraHosts = append(spec.ExtraHosts, name+":"+h.IP)
		}
	}
	if a.podDNS(pod, &spec) {
		path, err := a.writeResolvConf(pod.UID, &spec)
		if err != nil {
			return rt.Container{}, fmt.Errorf("write the pod's resolv.conf: %w", err)
		}
		spec.ResolvConf = path
	}
	return a.rt.RunSandbox(ctx, spec)
}

// attemptsView is a container's view from its engine containers, latest
// attempt first: the current one, the one before, the restart count.
func attemptsView(c *corev1.Container, all []rt.Container) containerView {
	v := containerView{name: c.Name, image: c.Image}
	if len(all) > 0 {
		v.current = ptrTo(all[0])
		v.restarts = int32(attemptOf(all[0]))
	}
	if len(all) > 1 {
		v.previous = ptrTo(all[1])
	}
	return v
}
