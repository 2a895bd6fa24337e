package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// ExpectationsTimeout is how long a controller waits for its own writes to
// show in its informers before it trusts the informers again anyway (a
// watch event lost to a relist, say).
const ExpectationsTimeout = 5 * time.Minute

// Expectations remember, per controller key, the pod creations and
// deletions a controller has asked for and not yet seen in its informer, so
// it does not act twice on a stale cache: a ReplicaSet that created 3 pods
// must not create 3 more before its informer shows the first 3.
type Expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	now func() time.Time
}

type expectation struct {
	adds    int
	deletes map[types.UID]bool
	at      time.Time
}

// NewExpectations makes an empty set of expectations.
func NewExpectations() *Expectations {
	return &Expectations{m: map[string]*expectation{}, now: time.Now}
}

// Satisfied reports whether key has nothing outstanding (or its
// expectations are older than ExpectationsTimeout), so the controller may
// act on what its informers show.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletes) == 0 {
		return true
	}
	if e.now().Sub(x.at) > ExpectationsTimeout {
		delete(e.m, key)
		return true
	}
	return false
}

// ExpectCreations records that key is about to create n objects.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.get(key)
	x.adds += n
	x.at = e.now()
}

// ExpectDeletions records that key is about to delete the objects uids.
func (e *Expectations) ExpectDeletions(key string, uids ...types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.get(key)
	for _, u := range uids {
		x.deletes[u] = true
	}
	x.at = e.now()
}

// CreationObserved records that one creation of key showed in the informer
// (or failed and never will).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// DeletionObserved records that the deletion of uid by key showed in the
// informer (or failed and never will).
func (e *Expectations) DeletionObserved(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.deletes, uid)
	}
}

// Forget drops key's expectations (its owner is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

func (e *Expectations) get(key string) *expectation {
	x, ok := e.m[key]
	if !ok {
		x = &expectation{deletes: map[types.UID]bool{}}
		e.m[key] = x
	}
	return x
}
