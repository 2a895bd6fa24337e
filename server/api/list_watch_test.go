package api

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"orch.dev/orch/internal/testutil"
)

func names[T any](items []T, name func(T) string) string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func podNames(ps []corev1.Pod) string { return names(ps, func(p corev1.Pod) string { return p.Name }) }

func TestListSelectorsAndPagination(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pods := e.client.CoreV1().Pods("default")
	for i := 0; i < 7; i++ {
		p := pod(fmt.Sprintf("p%d", i), fmt.Sprintf("node%d", i%2))
		if i%3 == 0 {
			p.Labels["tier"] = "db"
		}
		if _, err := pods.Create(c, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.client.CoreV1().Pods("kube-system").Create(c, pod("sys", "node0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		ns   string
		opts metav1.ListOptions
		want string
	}{
		{name: "all in namespace", ns: "default", want: "p0,p1,p2,p3,p4,p5,p6"},
		{name: "all namespaces", ns: "", opts: metav1.ListOptions{LabelSelector: "app=web"}, want: "p0,p1,p2,p3,p4,p5,p6,sys"},
		{name: "label equality", ns: "default", opts: metav1.ListOptions{LabelSelector: "tier=db"}, want: "p0,p3,p6"},
		{name: "label set-based", ns: "default", opts: metav1.ListOptions{LabelSelector: "tier notin (db)"}, want: "p1,p2,p4,p5"},
		{name: "field spec.nodeName", ns: "", opts: metav1.ListOptions{FieldSelector: "spec.nodeName=node0"}, want: "p0,p2,p4,p6,sys"},
		{name: "field status.phase", ns: "default", opts: metav1.ListOptions{FieldSelector: "status.phase=Pending"}, want: "p0,p1,p2,p3,p4,p5,p6"},
		{name: "field metadata.name", ns: "default", opts: metav1.ListOptions{FieldSelector: "metadata.name=p3"}, want: "p3"},
		{name: "field metadata.namespace", ns: "", opts: metav1.ListOptions{FieldSelector: "metadata.namespace=kube-system"}, want: "sys"},
		{name: "both", ns: "default", opts: metav1.ListOptions{LabelSelector: "tier=db", FieldSelector: "spec.nodeName!=node0"}, want: "p3"},
		{name: "resourceVersion 0 reads locally", ns: "default", opts: metav1.ListOptions{ResourceVersion: "0", LabelSelector: "tier=db"}, want: "p0,p3,p6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := e.client.CoreV1().Pods(tc.ns).List(c, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := podNames(l.Items); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if l.ResourceVersion == "" {
				t.Fatal("got no list resourceVersion")
			}
		})
	}

	t.Run("unsupported field label", func(t *testing.T) {
		_, err := pods.List(c, metav1.ListOptions{FieldSelector: "spec.hostname=x"})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "field label not supported: spec.hostname") {
			t.Fatalf("got %v, want BadRequest naming the field", err)
		}
	})
	t.Run("bad label selector", func(t *testing.T) {
		_, err := pods.List(c, metav1.ListOptions{LabelSelector: "a in (b"})
		if !apierrors.IsBadRequest(err) {
			t.Fatalf("got %v, want BadRequest", err)
		}
	})

	t.Run("pagination is consistent across writes", func(t *testing.T) {
		first, err := pods.List(c, metav1.ListOptions{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Items) != 3 || first.Continue == "" {
			t.Fatalf("got %d items continue=%q, want 3 and a token", len(first.Items), first.Continue)
		}
		// Writes between pages do not show up in later pages.
		if err := pods.Delete(c, "p5", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Create(c, pod("p9", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		all := append([]corev1.Pod{}, first.Items...)
		cont := first.Continue
		for cont != "" {
			page, err := pods.List(c, metav1.ListOptions{Limit: 3, Continue: cont})
			if err != nil {
				t.Fatal(err)
			}
			if page.ResourceVersion != first.ResourceVersion {
				t.Fatalf("got page resourceVersion %s, want %s", page.ResourceVersion, first.ResourceVersion)
			}
			all = append(all, page.Items...)
			cont = page.Continue
		}
		if got := podNames(all); got != "p0,p1,p2,p3,p4,p5,p6" {
			t.Fatalf("got %s, want the list as of the first page", got)
		}
	})

	t.Run("paginated with a label selector", func(t *testing.T) {
		l, err := pods.List(c, metav1.ListOptions{Limit: 2, LabelSelector: "tier=db"})
		if err != nil {
			t.Fatal(err)
		}
		l2, err := pods.List(c, metav1.ListOptions{Limit: 2, LabelSelector: "tier=db", Continue: l.Continue})
		if err != nil {
			t.Fatal(err)
		}
		if got := podNames(append(l.Items, l2.Items...)); got != "p0,p3,p6" || l2.Continue != "" {
			t.Fatalf("got %s continue=%q, want p0,p3,p6 and no more", got, l2.Continue)
		}
	})

	t.Run("expired continue token is 410", func(t *testing.T) {
		l, err := pods.List(c, metav1.ListOptions{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Create(c, pod("later", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.store.Compact(e.store.Revision())
		_, err = pods.List(c, metav1.ListOptions{Limit: 1, Continue: l.Continue})
		if !apierrors.IsResourceExpired(err) {
			t.Fatalf("got %v, want 410 Expired", err)
		}
	})
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event within 5s")
	}
	return watch.Event{}
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	cms := e.client.CoreV1().ConfigMaps("default")
	start, err := cms.List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(c, metav1.ListOptions{ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created, _ := cms.Create(c, configMap("a", map[string]string{"k": "1"}), metav1.CreateOptions{})
	created.Data["k"] = "2"
	updated, err := cms.Update(c, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(c, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []watch.EventType{watch.Added, watch.Modified, watch.Deleted}
	var rvs []string
	for i, typ := range want {
		ev := nextEvent(t, w)
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != typ || !ok || cm.Name != "a" {
			t.Fatalf("event %d: got %s %T, want %s of configmap a", i, ev.Type, ev.Object, typ)
		}
		rvs = append(rvs, cm.ResourceVersion)
	}
	if rvs[0] != created.ResourceVersion || rvs[1] != updated.ResourceVersion || rvs[2] <= rvs[1] {
		t.Fatalf("got resourceVersions %v, want create %s, update %s, then a later delete", rvs, created.ResourceVersion, updated.ResourceVersion)
	}

	t.Run("resume from a resourceVersion", func(t *testing.T) {
		w2, err := cms.Watch(c, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w2.Stop()
		if ev := nextEvent(t, w2); ev.Type != watch.Modified {
			t.Fatalf("got %s, want MODIFIED (the first event after the resume point)", ev.Type)
		}
	})

	t.Run("label selector: leaving the selection is DELETED", func(t *testing.T) {
		cm := configMap("sel", nil)
		cm.Labels = map[string]string{"watch": "me"}
		cur, _ := cms.Create(c, cm, metav1.CreateOptions{})
		w3, err := cms.Watch(c, metav1.ListOptions{LabelSelector: "watch=me", ResourceVersion: cur.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w3.Stop()
		cur.Labels = map[string]string{"watch": "not-me"}
		if _, err := cms.Update(c, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, w3)
		if ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).Labels["watch"] != "me" {
			t.Fatalf("got %s %+v, want DELETED carrying the old labels", ev.Type, ev.Object)
		}
	})

	t.Run("an expired resourceVersion is 410", func(t *testing.T) {
		if _, err := cms.Create(c, configMap("b", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.store.Compact(e.store.Revision())
		_, err := cms.Watch(c, metav1.ListOptions{ResourceVersion: start.ResourceVersion})
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Fatalf("got %v, want 410", err)
		}
	})

	t.Run("bookmarks", func(t *testing.T) {
		w4, err := cms.Watch(c, metav1.ListOptions{ResourceVersion: e.srvRevision(), AllowWatchBookmarks: true})
		if err != nil {
			t.Fatal(err)
		}
		defer w4.Stop()
		if ev := nextEvent(t, w4); ev.Type != watch.Bookmark {
			t.Fatalf("got %s, want BOOKMARK", ev.Type)
		}
	})
}

func (e *testEnv) srvRevision() string { return revString(e.store.Revision()) }

// An informer sees every change, through client-go's watch-list protocol.
func TestInformer(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	cms := e.client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(c, configMap("before", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(e.client, 0)
	inf := factory.Core().V1().ConfigMaps().Informer()
	var mu sync.Mutex
	var log []string
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, s)
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record("add " + o.(*corev1.ConfigMap).Name) },
		UpdateFunc: func(_, o any) { record("update " + o.(*corev1.ConfigMap).Name) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record("delete " + o.(*corev1.ConfigMap).Name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	cm, _ := cms.Create(c, configMap("x", nil), metav1.CreateOptions{})
	cm.Data = map[string]string{"a": "b"}
	if _, err := cms.Update(c, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(c, "x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "add before,add x,update x,delete x"
	testutil.Eventually(t, 5*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(log, ","); got != want {
			return "informer saw " + got + ", want " + want
		}
		return ""
	})
}
