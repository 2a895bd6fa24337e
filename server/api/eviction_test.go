package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
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

func TestEvictionHonoursDisruptionBudgets(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pods := e.client.CoreV1().Pods("default")
	pdbs := e.client.PolicyV1().PodDisruptionBudgets("default")
	readyPod := func(name, app string, ready bool) {
		t.Helper()
		p := pod(name, "n1")
		p.Labels = map[string]string{"app": app}
		p, err := pods.Create(c, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if _, err := pods.UpdateStatus(c, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// budget makes a PDB whose status says what the disruption controller
	// would have computed.
	budget := func(name, app string, allowed, current, desired int32) {
		t.Helper()
		b, err := pdbs.Create(c, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(desired)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: b.Generation, DisruptionsAllowed: allowed,
			CurrentHealthy: current, DesiredHealthy: desired, ExpectedPods: current}
		if _, err := pdbs.UpdateStatus(c, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evict := func(name string) error {
		return e.client.PolicyV1().Evictions("default").Evict(c, eviction(name))
	}

	budget("web", "web", 1, 3, 2)
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		readyPod(n, "web", true)
	}
	t.Run("an eviction within the budget takes one disruption", func(t *testing.T) {
		if err := evict("web-0"); err != nil {
			t.Fatalf("got %v, want the eviction allowed", err)
		}
		b, err := pdbs.Get(c, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Status.DisruptedPods["web-0"]; !ok || b.Status.DisruptionsAllowed != 0 {
			t.Fatalf("budget status %+v, want web-0 disrupted and no disruption left", b.Status)
		}
	})
	t.Run("the next one is refused with 429", func(t *testing.T) {
		err := evict("web-1")
		if !apierrors.IsTooManyRequests(err) {
			t.Fatalf("got %v, want 429 Too Many Requests", err)
		}
		if p, err := pods.Get(c, "web-1", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
			t.Fatalf("web-1: %v, deleting %v; want it kept", err, p.DeletionTimestamp)
		}
	})
	t.Run("a pod that is not ready may go while the budget is healthy", func(t *testing.T) {
		readyPod("web-sick", "web", false)
		if err := evict("web-sick"); err != nil {
			t.Fatalf("got %v, want the eviction allowed", err)
		}
	})
	t.Run("a pod of no budget goes", func(t *testing.T) {
		readyPod("free", "other", true)
		if err := evict("free"); err != nil {
			t.Fatalf("got %v, want the eviction allowed", err)
		}
	})
	t.Run("a budget not yet processed refuses", func(t *testing.T) {
		readyPod("db-0", "db", true)
		if _, err := pdbs.Create(c, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := evict("db-0"); !apierrors.IsTooManyRequests(err) {
			t.Fatalf("got %v, want 429 until the budget's status is observed", err)
		}
	})
	t.Run("two budgets selecting one pod refuse", func(t *testing.T) {
		readyPod("both", "both", true)
		budget("both-a", "both", 1, 1, 0)
		budget("both-b", "both", 1, 1, 0)
		err := evict("both")
		if err == nil || !strings.Contains(err.Error(), "more than one PodDisruptionBudget") {
			t.Fatalf("got %v, want the two budgets named as the reason", err)
		}
	})
}

func TestDisruptionBudgetValidation(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	for _, tc := range []struct {
		name string
		spec policyv1.PodDisruptionBudgetSpec
		want string // "" for valid
	}{
		{name: "minAvailable", spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: sel}},
		{name: "maxUnavailable percent", spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("25%")), Selector: sel}},
		{name: "both", spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: sel},
			want: "minAvailable and maxUnavailable cannot be both set"},
		{name: "neither", spec: policyv1.PodDisruptionBudgetSpec{Selector: sel}, want: "spec.minAvailable: Required value"},
		{name: "negative", spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(-1)), Selector: sel}, want: "spec.minAvailable"},
		{name: "over 100%", spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("150%")), Selector: sel}, want: "spec.maxUnavailable"},
		{name: "bad policy", spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: sel,
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.UnhealthyPodEvictionPolicyType("Sometimes"))}, want: "spec.unhealthyPodEvictionPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.PolicyV1().PodDisruptionBudgets("default").Create(c, &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "pdb-"}, Spec: tc.spec}, metav1.CreateOptions{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want it accepted", err)
			case tc.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want Invalid naming %q", err, tc.want)
			}
		})
	}
}
