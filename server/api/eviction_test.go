package api

import (
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

func TestEviction(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pods := e.client.CoreV1().Pods("default")
	// state says what became of a pod: gone, deleting (with its grace
	// period) or there.
	state := func(name string) string {
		p, err := pods.Get(c, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return "gone"
		case err != nil:
			t.Fatal(err)
		case p.DeletionTimestamp != nil:
			return fmt.Sprintf("deleting grace=%d", *p.DeletionGracePeriodSeconds)
		}
		return "there"
	}
	cases := []struct {
		name    string
		node    string // the pod's node; "" leaves it unscheduled
		grace   *int64 // the pod's terminationGracePeriodSeconds
		evict   func(p *corev1.Pod) *policyv1.Eviction
		wantErr func(error) bool
		want    string
	}{
		{name: "a bound pod is deleted gracefully", node: "n1", grace: ptr.To(int64(45)), want: "deleting grace=45"},
		{name: "deleteOptions set the grace period", node: "n1", want: "deleting grace=5",
			evict: func(p *corev1.Pod) *policyv1.Eviction {
				ev := eviction(p.Name)
				ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(5))}
				return ev
			}},
		{name: "grace period 0 removes it", node: "n1", want: "gone",
			evict: func(p *corev1.Pod) *policyv1.Eviction {
				ev := eviction(p.Name)
				ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}
				return ev
			}},
		{name: "an unscheduled pod goes at once", want: "gone"},
		{name: "a UID precondition that fails", node: "n1", wantErr: apierrors.IsConflict, want: "there",
			evict: func(p *corev1.Pod) *policyv1.Eviction {
				ev := eviction(p.Name)
				ev.DeleteOptions = &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("not-" + p.UID))}}
				return ev
			}},
		{name: "dry run", node: "n1", want: "there",
			evict: func(p *corev1.Pod) *policyv1.Eviction {
				ev := eviction(p.Name)
				ev.DeleteOptions = &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
				return ev
			}},
		{name: "a missing pod", wantErr: apierrors.IsNotFound, want: "there",
			evict: func(*corev1.Pod) *policyv1.Eviction { return eviction("no-such-pod") }},
		{name: "a negative grace period", node: "n1", wantErr: apierrors.IsBadRequest, want: "there",
			evict: func(p *corev1.Pod) *policyv1.Eviction {
				ev := eviction(p.Name)
				ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(-1))}
				return ev
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pod(fmt.Sprintf("evict-%d", i), tc.node)
			p.Spec.TerminationGracePeriodSeconds = tc.grace
			p, err := pods.Create(c, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ev := eviction(p.Name)
			if tc.evict != nil {
				ev = tc.evict(p)
			}
			err = e.client.PolicyV1().Evictions("default").Evict(c, ev)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("got %v, want the eviction accepted", err)
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Fatalf("got %v, want another error", err)
			}
			if got := state(p.Name); got != tc.want {
				t.Fatalf("got pod %s, want %s", got, tc.want)
			}
		})
	}

	t.Run("bodies that do not match the URL", func(t *testing.T) {
		if _, err := pods.Create(c, pod("target", "n1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{
			`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"other"}}`,
			`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"target","namespace":"kube-system"}}`,
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"target"}}`,
			`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"target"},"extra":1}`,
		} {
			err := e.client.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/pods/target/eviction").
				SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(c).Error()
			if !apierrors.IsBadRequest(err) {
				t.Fatalf("%s: got %v, want BadRequest", body, err)
			}
		}
		if got := state("target"); got != "there" {
			t.Fatalf("got pod %s, want there", got)
		}
	})

	t.Run("policy/v1beta1 JSON bodies are accepted", func(t *testing.T) {
		if _, err := pods.Create(c, pod("old-client", "n1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		body := `{"apiVersion":"policy/v1beta1","kind":"Eviction","metadata":{"name":"old-client"},"deleteOptions":{"gracePeriodSeconds":7}}`
		var code int
		err := e.client.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/pods/old-client/eviction").
			SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(c).StatusCode(&code).Error()
		if err != nil || code != http.StatusCreated {
			t.Fatalf("got %d %v, want 201", code, err)
		}
		if got := state("old-client"); got != "deleting grace=7" {
			t.Fatalf("got pod %s, want deleting grace=7", got)
		}
	})

	t.Run("protobuf bodies", func(t *testing.T) {
		if _, err := pods.Create(c, pod("pb", "n1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg := rest.CopyConfig(e.config)
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ev := eviction("pb")
		ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(3))}
		if err := cs.PolicyV1().Evictions("default").Evict(c, ev); err != nil {
			t.Fatal(err)
		}
		if got := state("pb"); got != "deleting grace=3" {
			t.Fatalf("got pod %s, want deleting grace=3", got)
		}
	})

	t.Run("only pods, only POST", func(t *testing.T) {
		err := e.client.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/configmaps/x/eviction").
			SetHeader("Content-Type", "application/json").Body([]byte(`{}`)).Do(c).Error()
		if !apierrors.IsNotFound(err) {
			t.Fatalf("configmaps/x/eviction: got %v, want NotFound", err)
		}
		err = e.client.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default/pods/target/eviction").Do(c).Error()
		if !apierrors.IsNotFound(err) {
			t.Fatalf("GET pods/target/eviction: got %v, want NotFound", err)
		}
	})

	t.Run("discovery lists pods/eviction", func(t *testing.T) {
		list, err := e.client.Discovery().ServerResourcesForGroupVersion("v1")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			if r.Name == "pods/eviction" && r.Group == "policy" && r.Version == "v1" && r.Kind == "Eviction" {
				return
			}
		}
		t.Fatalf("got %d resources without pods/eviction (policy/v1 Eviction)", len(list.APIResources))
	})
}

func eviction(name string) *policyv1.Eviction {
	return &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}
