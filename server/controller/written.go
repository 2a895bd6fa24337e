package controller

import (
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WrittenVersions remember, per key, the resourceVersion of the last
// object a controller wrote (its status, typically), so a sync can tell
// that its informer still shows an older copy and wait for the newer one
// instead of acting twice on state it already changed: counting a pod
// again, or starting a run it already started. orch's resourceVersions are
// store revisions, which only grow.
type WrittenVersions struct {
	mu sync.Mutex
	m  map[string]int64
}

// NewWrittenVersions makes an empty set.
func NewWrittenVersions() *WrittenVersions {
	return &WrittenVersions{m: map[string]int64{}}
}

// Record notes that the controller wrote obj under key.
func (w *WrittenVersions) Record(key string, obj metav1.Object) {
	rv, err := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if rv > w.m[key] {
		w.m[key] = rv
	}
}

// Stale reports whether obj is older than what the controller last wrote
// under key.
func (w *WrittenVersions) Stale(key string, obj metav1.Object) bool {
	rv, err := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return rv < w.m[key]
}

// Forget drops key (its object is gone).
func (w *WrittenVersions) Forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
