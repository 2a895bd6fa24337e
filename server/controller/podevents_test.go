package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// podEventsFixture is a loop managing the owners "ns/a" and "ns/b" (kind
// Set, UIDs a-uid and b-uid), each waiting for one creation and for the
// deletion of pod p.
type podEventsFixture struct {
	queue   workqueue.TypedInterface[string]
	expect  *Expectations
	updated []string
}

const podUID = types.UID("p-uid")

func newPodEventsFixture() *podEventsFixture {
	f := &podEventsFixture{queue: workqueue.NewTyped[string](), expect: NewExpectations()}
	for _, key := range []string{"ns/a", "ns/b"} {
		f.expect.ExpectCreations(key, 1)
		f.expect.ExpectDeletions(key, podUID)
	}
	return f
}

func (f *podEventsFixture) handler(markedCountsAsCreated bool) cache.ResourceEventHandler {
	owners := map[string]types.UID{"a": "a-uid", "b": "b-uid"}
	return PodEvents{
		Queue:        f.queue,
		Expectations: f.expect,
		OwnerOf: func(ns string, ref *metav1.OwnerReference) (string, bool) {
			if ref.Kind != "Set" || owners[ref.Name] == "" || owners[ref.Name] != ref.UID {
				return "", false
			}
			return ns + "/" + ref.Name, true
		},
		// The owners that may adopt a pod are those its label "adopter"
		// names.
		Orphan: func(pod *corev1.Pod) []string {
			if name := pod.Labels["adopter"]; name != "" {
				return []string{pod.Namespace + "/" + name}
			}
			return nil
		},
		Updated: func(key string, _, _ *corev1.Pod) {
			f.updated = append(f.updated, key)
		},
		MarkedCountsAsCreated: markedCountsAsCreated,
	}.Handler()
}

// queued drains the queue.
func (f *podEventsFixture) queued() []string {
	var keys []string
	for f.queue.Len() > 0 {
		key, _ := f.queue.Get()
		f.queue.Done(key)
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// observed lists the expectations settled since the fixture was made.
func (f *podEventsFixture) observed() []string {
	var out []string
	for _, key := range []string{"ns/a", "ns/b"} {
		x := f.expect.m[key]
		if x.adds == 0 {
			out = append(out, "created "+key)
		}
		if !x.deletes[podUID] {
			out = append(out, "deleted "+key)
		}
	}
	return out
}

type podOption func(*corev1.Pod)

func testPod(opts ...podOption) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: podUID, ResourceVersion: "1"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ownedBy(kind, name, uid string) podOption {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: new(true)}}
	}
}

func marked(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }

func adopter(name string) podOption {
	return func(p *corev1.Pod) { p.Labels = map[string]string{"adopter": name} }
}

func version(rv string) podOption { return func(p *corev1.Pod) { p.ResourceVersion = rv } }

func TestPodEvents(t *testing.T) {
	type event struct {
		add, delete any
		old, cur    any // an update
	}
	cases := []struct {
		name                  string
		markedCountsAsCreated bool
		event                 event
		wantQueued            []string
		wantObserved          []string
		wantUpdated           []string
	}{
		{name: "owned pod appears",
			event:      event{add: testPod(ownedBy("Set", "a", "a-uid"))},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"created ns/a"}},
		{name: "pod of an owner made again under the same name",
			event: event{add: testPod(ownedBy("Set", "a", "old-uid"), adopter("b"))}, wantQueued: []string{"ns/b"}},
		{name: "pod of another kind of owner",
			event: event{add: testPod(ownedBy("Other", "a", "a-uid"))}},
		{name: "orphan appears",
			event: event{add: testPod(adopter("b"))}, wantQueued: []string{"ns/b"}},
		{name: "pod appears marked: a deletion alone",
			event:      event{add: testPod(ownedBy("Set", "a", "a-uid"), marked)},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"deleted ns/a"}},
		{name: "orphan appears marked",
			event: event{add: testPod(adopter("b"), marked)}},
		{name: "pod appears marked: created and deleted", markedCountsAsCreated: true,
			event:      event{add: testPod(ownedBy("Set", "a", "a-uid"), marked)},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"created ns/a", "deleted ns/a"}},
		{name: "orphan appears marked, may still be adopted", markedCountsAsCreated: true,
			event: event{add: testPod(adopter("b"), marked)}, wantQueued: []string{"ns/b"}},
		{name: "not a pod",
			event: event{add: &corev1.Node{}}},
		{name: "nil pod",
			event: event{add: (*corev1.Pod)(nil)}},

		{name: "owned pod changes",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid")), cur: testPod(ownedBy("Set", "a", "a-uid"), version("2"))},
			wantQueued: []string{"ns/a"}, wantUpdated: []string{"ns/a"}},
		{name: "resync of the same version",
			event: event{old: testPod(ownedBy("Set", "a", "a-uid")), cur: testPod(ownedBy("Set", "a", "a-uid"))}},
		{name: "pod is marked",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid")), cur: testPod(ownedBy("Set", "a", "a-uid"), marked, version("2"))},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"deleted ns/a"}, wantUpdated: []string{"ns/a"}},
		{name: "marked pod changes again",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid"), marked), cur: testPod(ownedBy("Set", "a", "a-uid"), marked, version("2"))},
			wantQueued: []string{"ns/a"}, wantUpdated: []string{"ns/a"}},
		{name: "marked pod changes again, each change observed", markedCountsAsCreated: true,
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid"), marked), cur: testPod(ownedBy("Set", "a", "a-uid"), marked, version("2"))},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"deleted ns/a"}, wantUpdated: []string{"ns/a"}},
		{name: "pod moves to another owner",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid")), cur: testPod(ownedBy("Set", "b", "b-uid"), version("2"))},
			wantQueued: []string{"ns/a", "ns/b"}, wantUpdated: []string{"ns/b"}},
		{name: "pod moves to another owner as it is marked",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid")), cur: testPod(ownedBy("Set", "b", "b-uid"), marked, version("2"))},
			wantQueued: []string{"ns/a", "ns/b"}, wantObserved: []string{"deleted ns/a", "deleted ns/b"}, wantUpdated: []string{"ns/b"}},
		{name: "pod released, may be adopted",
			event:      event{old: testPod(ownedBy("Set", "a", "a-uid"), adopter("b")), cur: testPod(adopter("b"), version("2"))},
			wantQueued: []string{"ns/a", "ns/b"}},
		{name: "orphan relabelled",
			event:      event{old: testPod(adopter("a")), cur: testPod(adopter("b"), version("2"))},
			wantQueued: []string{"ns/b"}},
		{name: "orphan changes, labels kept",
			event: event{old: testPod(adopter("b")), cur: testPod(adopter("b"), version("2"))}},
		{name: "pod of a foreign owner relabelled",
			event: event{old: testPod(ownedBy("Other", "x", "x-uid")), cur: testPod(ownedBy("Other", "x", "x-uid"), adopter("b"), version("2"))}},
		{name: "update of something else",
			event: event{old: &corev1.Node{}, cur: testPod()}},
		{name: "update of nil pods",
			event: event{old: (*corev1.Pod)(nil), cur: (*corev1.Pod)(nil)}},

		{name: "owned pod gone",
			event:      event{delete: testPod(ownedBy("Set", "a", "a-uid"))},
			wantQueued: []string{"ns/a"}, wantObserved: []string{"deleted ns/a"}},
		{name: "owned pod gone, seen after a relist",
			event:      event{delete: cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: testPod(ownedBy("Set", "b", "b-uid"))}},
			wantQueued: []string{"ns/b"}, wantObserved: []string{"deleted ns/b"}},
		{name: "tombstone of something else",
			event: event{delete: cache.DeletedFinalStateUnknown{Key: "n", Obj: &corev1.Node{}}}},
		{name: "orphan gone",
			event: event{delete: testPod(adopter("b"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newPodEventsFixture()
			h := f.handler(tc.markedCountsAsCreated)
			switch e := tc.event; {
			case e.add != nil:
				h.OnAdd(e.add, false)
			case e.delete != nil:
				h.OnDelete(e.delete)
			default:
				h.OnUpdate(e.old, e.cur)
			}
			if got := f.queued(); !slices.Equal(got, tc.wantQueued) {
				t.Errorf("queued %q, want %q", got, tc.wantQueued)
			}
			if got := f.observed(); !slices.Equal(got, tc.wantObserved) {
				t.Errorf("observed %q, want %q", got, tc.wantObserved)
			}
			if !slices.Equal(f.updated, tc.wantUpdated) {
				t.Errorf("Updated called for %q, want %q", f.updated, tc.wantUpdated)
			}
		})
	}
}

func TestResolveControllerRef(t *testing.T) {
	kind := corev1.SchemeGroupVersion.WithKind("ReplicationController")
	stored := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rc", UID: "rc-uid"}}
	get := func(name string) (*corev1.ReplicationController, error) {
		if name != stored.Name {
			return nil, apierrors.NewNotFound(corev1.Resource("replicationcontrollers"), name)
		}
		return stored, nil
	}
	ref := func(apiVersion, kind, name, uid string) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(uid)}
	}
	cases := []struct {
		name string
		ref  *metav1.OwnerReference
		want bool
	}{
		{name: "found with its UID", ref: ref("v1", "ReplicationController", "rc", "rc-uid"), want: true},
		{name: "no reference"},
		{name: "another UID", ref: ref("v1", "ReplicationController", "rc", "older-uid")},
		{name: "gone", ref: ref("v1", "ReplicationController", "other", "rc-uid")},
		{name: "another kind", ref: ref("v1", "Pod", "rc", "rc-uid")},
		{name: "another group", ref: ref("apps/v1", "ReplicationController", "rc", "rc-uid")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ResolveControllerRef(tc.ref, kind, get)
			if ok != tc.want || (got != nil) != tc.want {
				t.Errorf("got %v, %v, want found %v", got, ok, tc.want)
			}
		})
	}
}

func TestDeletionObservedIfGone(t *testing.T) {
	cases := []struct {
		name   string
		cached *corev1.Pod
		want   bool
	}{
		{name: "still there", cached: testPod()},
		{name: "marked", cached: testPod(marked), want: true},
		{name: "gone", want: true},
		{name: "made again under the same name", cached: testPod(func(p *corev1.Pod) { p.UID = "new-uid" }), want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
			if tc.cached != nil {
				if err := idx.Add(tc.cached); err != nil {
					t.Fatal(err)
				}
			}
			e := NewExpectations()
			e.ExpectDeletions("ns/a", podUID)
			e.DeletionObservedIfGone(corelisters.NewPodLister(idx), "ns/a", testPod())
			if got := e.Satisfied("ns/a"); got != tc.want {
				t.Errorf("got satisfied %v, want %v", got, tc.want)
			}
		})
	}
}
