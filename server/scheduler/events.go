package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Event reasons the scheduler posts.
const (
	reasonScheduled        = "Scheduled"
	reasonFailedScheduling = "FailedScheduling"
	conditionUnschedulable = corev1.PodReasonUnschedulable
)

// reporter writes what the scheduler has to tell about pods (events, the
// PodScheduled condition) in the background, off the scheduling loop and
// the binders. Reports are diagnostics: when the API falls far behind they
// are dropped (and counted) rather than slowing scheduling down, as
// Kubernetes' event broadcaster does.
type reporter struct {
	client    kubernetes.Interface
	component string
	clock     clock.Clock
	log       *slog.Logger
	tasks     chan func(context.Context)
	seq       atomic.Uint64
	dropped   atomic.Uint64
	// posted counts the events written.
	posted atomic.Uint64
}

func newReporter(client kubernetes.Interface, component string, clk clock.Clock, log *slog.Logger, size int) *reporter {
	return &reporter{client: client, component: component, clock: clk, log: log, tasks: make(chan func(context.Context), size)}
}

// run works through the reports until close; ctx bounds each request.
func (r *reporter) run(ctx context.Context) {
	for task := range r.tasks {
		task(ctx)
	}
}

func (r *reporter) close() { close(r.tasks) }

func (r *reporter) submit(what string, pod *corev1.Pod, task func(context.Context)) {
	select {
	case r.tasks <- task:
	default:
		if n := r.dropped.Add(1); n&(n-1) == 0 {
			// Powers of two only: a flood of drops is one log line per
			// doubling.
			r.log.Warn("scheduler reports are falling behind; dropped one", "what", what, "ns", pod.Namespace, "pod", pod.Name, "dropped", n)
		}
	}
}

// event posts a core/v1 Event about a pod.
func (r *reporter) event(pod *corev1.Pod, eventType, reason, message string) {
	ev := r.newEvent(pod, eventType, reason, message)
	r.submit("event "+reason, pod, func(ctx context.Context) {
		_, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		switch {
		case err == nil:
			r.posted.Add(1)
		case ctx.Err() == nil:
			r.log.Warn("posting event failed", "ns", pod.Namespace, "pod", pod.Name, "reason", reason, "err", err)
		}
	})
}

// newEvent builds an event named as Kubernetes names them: the object's
// name and a unique hexadecimal suffix.
func (r *reporter) newEvent(pod *corev1.Pod, eventType, reason, message string) *corev1.Event {
	now := metav1.NewTime(r.clock.Now())
	suffix := fmt.Sprintf("%x%04x", now.UnixNano(), r.seq.Add(1)&0xffff)
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: eventName(pod.Name, suffix), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason: reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: r.component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: r.component,
	}
}

// eventName keeps the name a valid DNS subdomain of at most 253
// characters however long the pod's name.
func eventName(podName, suffix string) string {
	if room := 253 - 1 - len(suffix); len(podName) > room {
		podName = strings.TrimRight(podName[:room], ".-")
	}
	return podName + "." + suffix
}

// unschedulable sets the pod's PodScheduled condition to False with the
// reason, unless it already says exactly that.
func (r *reporter) unschedulable(pod *corev1.Pod, message string) {
	patch, changed, err := unschedulablePatch(pod, message, r.clock.Now())
	if err != nil {
		r.log.Error("building the PodScheduled patch failed", "ns", pod.Namespace, "pod", pod.Name, "err", err)
		return
	}
	if !changed {
		return
	}
	r.submit("PodScheduled condition", pod, func(ctx context.Context) {
		_, err := r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil && ctx.Err() == nil {
			r.log.Warn("setting PodScheduled=False failed", "ns", pod.Namespace, "pod", pod.Name, "err", err)
		}
	})
}

// unschedulablePatch is the strategic merge patch of the pod's status
// that sets PodScheduled=False (conditions merge by type); changed is
// false when the condition already says this. The transition time moves
// only when the status does.
func unschedulablePatch(pod *corev1.Pod, message string, now time.Time) (patch []byte, changed bool, err error) {
	want := corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: conditionUnschedulable, Message: message,
		LastTransitionTime: metav1.NewTime(now),
	}
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return nil, false, nil
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
	}
	patch, err = json.Marshal(map[string]any{
		"status": map[string]any{"conditions": []corev1.PodCondition{want}},
	})
	return patch, true, err
}
