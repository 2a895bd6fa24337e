package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// statusManager writes pod statuses to the API: only when one changed, the
// latest winning over any not yet written, so a pod polled every few
// seconds costs no writes while nothing happens.
type statusManager struct {
	client kubernetes.Interface
	log    *slog.Logger

	mu      sync.Mutex
	pending map[types.UID]statusUpdate
	written map[types.UID]writtenStatus
	kick    chan struct{}
}

// writtenStatus is the last status the agent wrote for a pod and the
// resourceVersion that write made (0 when unknown).
type writtenStatus struct {
	status corev1.PodStatus
	rv     int64
}

type statusUpdate struct {
	namespace, name string
	uid             types.UID
	status          corev1.PodStatus
}

func newStatusManager(client kubernetes.Interface, log *slog.Logger) *statusManager {
	return &statusManager{client: client, log: log, pending: map[types.UID]statusUpdate{}, written: map[types.UID]writtenStatus{}, kick: make(chan struct{}, 1)}
}

// set asks for the pod's status to become st. pod is the latest copy the
// agent has: when it is newer than the agent's own last write, someone
// else changed the status since (the node lifecycle loop marks pods of a
// node it lost not ready), and that status is what st is compared with,
// so the agent puts its own back once it runs the pod again.
func (m *statusManager) set(pod *corev1.Pod, st corev1.PodStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := pod.Status
	if w, ok := m.written[pod.UID]; ok && (w.rv == 0 || revisionOf(pod) <= w.rv) {
		last = w.status // the copy is not past the agent's write yet
	}
	if statusEqual(last, st) {
		delete(m.pending, pod.UID)
		if _, ok := m.written[pod.UID]; !ok {
			m.written[pod.UID] = writtenStatus{status: last, rv: revisionOf(pod)}
		}
		return
	}
	m.pending[pod.UID] = statusUpdate{namespace: pod.Namespace, name: pod.Name, uid: pod.UID, status: st}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *statusManager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.pending, uid)
	delete(m.written, uid)
	m.mu.Unlock()
}

func (m *statusManager) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		m.flush(ctx)
	}
}

func (m *statusManager) flush(ctx context.Context) {
	m.mu.Lock()
	batch := m.pending
	m.pending = map[types.UID]statusUpdate{}
	m.mu.Unlock()
	retry := false
	for uid, u := range batch {
		rv, err := m.write(ctx, u)
		switch {
		case err == nil:
			m.mu.Lock()
			m.written[uid] = writtenStatus{status: u.status, rv: rv}
			m.mu.Unlock()
		case apierrors.IsNotFound(err) || apierrors.IsInvalid(err):
			// The pod is gone, or it is another pod now (the UID test
			// failed): nothing to write.
		default:
			m.log.Warn("write pod status; retrying", "pod", u.namespace+"/"+u.name, "err", err)
			m.mu.Lock()
			if _, newer := m.pending[uid]; !newer {
				m.pending[uid] = u
			}
			m.mu.Unlock()
			retry = true
		}
	}
	if retry {
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
				select {
				case m.kick <- struct{}{}:
				default:
				}
			}
		}()
	}
}

// write replaces the pod's status, provided the pod is still the one with
// that UID (a JSON patch test makes that part of the write), and returns
// the resourceVersion the write made.
func (m *statusManager) write(ctx context.Context, u statusUpdate) (int64, error) {
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": u.uid},
		{"op": "replace", "path": "/status", "value": u.status},
	})
	if err != nil {
		return 0, err
	}
	out, err := m.client.CoreV1().Pods(u.namespace).Patch(ctx, u.name, types.JSONPatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return 0, err
	}
	return revisionOf(out), nil
}

// revisionOf is a pod's resourceVersion as a number (orch's are the store
// revisions), 0 when it is not one.
func revisionOf(pod *corev1.Pod) int64 {
	rv, err := strconv.ParseInt(pod.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return rv
}
