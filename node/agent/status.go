package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/node/prober"
	rt "orch.dev/orch/node/runtime"
)

// containerView is what the agent knows about one container of a pod:
// its latest and previous engine containers, its restarts, and why it is
// waiting, when it is.
type containerView struct {
	name     string
	image    string
	current  *rt.Container // the latest attempt, if any
	previous *rt.Container // the attempt before it, if any
	restarts int32
	// waiting, when set, is why the container is not running now
	// (ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
	// CreateContainerConfigError, CreateContainerError, PodInitializing).
	waiting *corev1.ContainerStateWaiting
	// probe is what the container's probes say while it runs; nil
	// without probes (a running container is then started and ready).
	probe *prober.Status
}

// podView is the agent's picture of a pod for computing its status.
type podView struct {
	init         []containerView
	app          []containerView
	sandboxReady bool
	podIP        string
	hostIP       string
	startTime    time.Time
	// failure, when set, ends the pod: phase Failed with its reason.
	failure *podFailure
}

func containerID(c *rt.Container) string {
	if c == nil {
		return ""
	}
	return "docker://" + c.ID
}

func terminatedState(c *rt.Container) *corev1.ContainerStateTerminated {
	reason := "Completed"
	switch {
	case c.OOMKilled:
		reason = "OOMKilled"
	case c.ExitCode != 0:
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: int32(c.ExitCode), Reason: reason, Message: c.Error,
		StartedAt: metav1.NewTime(c.StartedAt), FinishedAt: metav1.NewTime(c.FinishedAt), ContainerID: containerID(c),
	}
}

// containerStatus is the Kubernetes status of one container.
func containerStatus(v containerView) corev1.ContainerStatus {
	st := corev1.ContainerStatus{Name: v.name, Image: v.image, RestartCount: v.restarts}
	cur := v.current
	if cur != nil {
		st.ContainerID = containerID(cur)
		st.ImageID = cur.ImageID
	}
	if v.previous != nil && v.previous.State == rt.StateExited {
		st.LastTerminationState.Terminated = terminatedState(v.previous)
	}
	switch {
	case v.waiting != nil:
		st.State.Waiting = v.waiting.DeepCopy()
		if cur != nil && cur.State == rt.StateExited {
			// Waiting to restart: the attempt that stopped is the last state.
			st.LastTerminationState.Terminated = terminatedState(cur)
		}
	case cur == nil || cur.State == rt.StateCreated:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	case cur.State == rt.StateRunning:
		st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.StartedAt)}
		started, ready := true, true
		if v.probe != nil {
			started, ready = v.probe.Started, v.probe.Ready
		}
		st.Started = &started
		st.Ready = ready
	case cur.State == rt.StateExited:
		st.State.Terminated = terminatedState(cur)
		started := false
		st.Started = &started
	default:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if st.Started == nil {
		started := false
		st.Started = &started
	}
	return st
}

// initDone reports whether every init container has succeeded, and
// whether one failed for good (restartPolicy Never).
func initDone(pod *corev1.Pod, v podView) (done, failed bool) {
	for _, c := range v.init {
		switch {
		case c.current != nil && c.current.State == rt.StateExited && c.current.ExitCode == 0:
		case c.current != nil && c.current.State == rt.StateExited && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return false, true
		default:
			return false, false
		}
	}
	return true, false
}

// podPhase follows Kubernetes' rules for a pod's phase.
func podPhase(pod *corev1.Pod, v podView) corev1.PodPhase {
	done, failed := initDone(pod, v)
	if failed {
		return corev1.PodFailed
	}
	if !done {
		return corev1.PodPending
	}
	var waiting, running, succeeded, failedN int
	for _, c := range v.app {
		switch {
		case c.current != nil && c.current.State == rt.StateRunning:
			running++
		case c.current != nil && c.current.State == rt.StateExited:
			if c.waiting != nil {
				running++ // stopped, and about to restart: still a running pod
			} else if c.current.ExitCode == 0 {
				succeeded++
			} else {
				failedN++
			}
		case c.restarts > 0:
			running++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0 && running == 0 && succeeded == 0 && failedN == 0:
		return corev1.PodPending
	case running > 0 || waiting > 0:
		return corev1.PodRunning
	}
	// Every container has stopped.
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyAlways:
		return corev1.PodRunning
	case corev1.RestartPolicyOnFailure:
		if failedN > 0 {
			return corev1.PodRunning
		}
		return corev1.PodSucceeded
	}
	if failedN > 0 {
		return corev1.PodFailed
	}
	return corev1.PodSucceeded
}

func condition(typ corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
	c := corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: reason, Message: message}
	if ok {
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
	}
	return c
}

// computeStatus is the pod's status as the agent sees it. old is the
// status in the API, for the fields the agent does not own (PodScheduled,
// QoS class) and for condition transition times.
func computeStatus(pod *corev1.Pod, v podView, now time.Time) corev1.PodStatus {
	old := pod.Status
	st := corev1.PodStatus{
		Phase:    podPhase(pod, v),
		HostIP:   v.hostIP,
		PodIP:    v.podIP,
		QOSClass: old.QOSClass,
	}
	if v.failure != nil {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, v.failure.reason, v.failure.message
	}
	if v.hostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: v.hostIP}}
	}
	if v.podIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: v.podIP}}
	}
	if !v.startTime.IsZero() {
		t := metav1.NewTime(v.startTime)
		st.StartTime = &t
	}
	for _, c := range v.init {
		st.InitContainerStatuses = append(st.InitContainerStatuses, containerStatus(c))
	}
	for _, c := range v.app {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(c))
	}
	// Init containers are not ready once done: only running ones are.
	for i := range st.InitContainerStatuses {
		s := &st.InitContainerStatuses[i]
		s.Ready = s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
	}

	done, _ := initDone(pod, v)
	var notInit, notReady []string
	for _, s := range st.InitContainerStatuses {
		if !s.Ready {
			notInit = append(notInit, s.Name)
		}
	}
	for _, s := range st.ContainerStatuses {
		if !s.Ready {
			notReady = append(notReady, s.Name)
		}
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	initialized := condition(corev1.PodInitialized, done, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " ")))
	ready := len(notReady) == 0 && !terminal
	reason, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	if terminal {
		reason, msg = "PodCompleted", ""
	}
	conds := []corev1.PodCondition{
		condition(corev1.PodReadyToStartContainers, v.sandboxReady, "", ""),
		initialized,
		condition(corev1.ContainersReady, ready, reason, msg),
		condition(corev1.PodReady, ready, reason, msg),
	}
	// PodScheduled belongs to the scheduler; keep it, defaulting to True
	// since the pod is on this node.
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
	for _, c := range old.Conditions {
		if c.Type == corev1.PodScheduled {
			scheduled = c
		}
	}
	conds = append([]corev1.PodCondition{scheduled}, conds...)
	for i := range conds {
		c := &conds[i]
		if c.Type == corev1.PodScheduled {
			continue
		}
		c.LastTransitionTime = metav1.NewTime(now)
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	st.Conditions = conds
	return st
}

// statusEqual reports whether two statuses say the same, ignoring the
// order of conditions.
func statusEqual(a, b corev1.PodStatus) bool {
	sortConds := func(cs []corev1.PodCondition) []corev1.PodCondition {
		out := append([]corev1.PodCondition(nil), cs...)
		sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
		return out
	}
	a.Conditions, b.Conditions = sortConds(a.Conditions), sortConds(b.Conditions)
	return apiequality.Semantic.DeepEqual(a, b)
}
