package scheduler

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bindTask is a decision waiting to be written: pod goes to node. The pod
// is assumed on the node in the cache from the moment of the decision.
type bindTask struct {
	pod  *corev1.Pod
	node string
	// claims are unbound WaitForFirstConsumer claims to be given node
	// before the pod is bound.
	claims []*corev1.PersistentVolumeClaim
}

// runBinder writes bindings until tasks closes. Many binders run at once:
// a binding is a round trip through the API and the Raft log, and keeping
// many in flight lets the store batch them.
func (s *Scheduler) runBinder(ctx context.Context, tasks <-chan bindTask) {
	for t := range tasks {
		s.bind(ctx, t)
	}
}

func (s *Scheduler) bind(ctx context.Context, t bindTask) {
	pod := t.pod
	if len(t.claims) > 0 {
		if err := s.selectNode(ctx, t.claims, t.node); err != nil {
			s.vols.forget(t.claims)
			s.unassume(pod)
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("selecting a node for claims failed; will retry", "ns", pod.Namespace, "pod", pod.Name, "node", t.node, "err", err)
			s.queue.BindFailed(pod.UID)
			return
		}
	}
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: t.node},
	}
	err := s.deps.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	switch {
	case err == nil:
		s.queue.Done(pod.UID)
		s.log.Debug("bound pod", "ns", pod.Namespace, "pod", pod.Name, "node", t.node)
		s.reports.event(pod, corev1.EventTypeNormal, reasonScheduled, "Successfully assigned "+pod.Namespace+"/"+pod.Name+" to "+t.node)
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		// Someone else bound the pod, or it is gone or going: nothing
		// left to do. The informer brings its real placement.
		s.log.Debug("pod no longer needs binding", "ns", pod.Namespace, "pod", pod.Name, "node", t.node, "err", err)
		s.unassume(pod)
		s.queue.Done(pod.UID)
	default:
		s.unassume(pod)
		if ctx.Err() != nil {
			return // shutting down: the next leader schedules the pod
		}
		s.log.Warn("binding failed; will retry", "ns", pod.Namespace, "pod", pod.Name, "node", t.node, "err", err)
		s.queue.BindFailed(pod.UID)
	}
}

// unassume takes back a decision that was not written; what it held is
// free again for waiting pods.
func (s *Scheduler) unassume(pod *corev1.Pod) {
	if s.cache.forget(pod.UID) {
		s.queue.Move(failResources | failPorts)
	}
}
