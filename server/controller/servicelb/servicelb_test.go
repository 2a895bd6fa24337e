//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the object orch's service proxy reads.

package servicelb

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

func start(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	c := New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	return ctx, env.Client
}

func node(name, ip string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Status: corev1.NodeStatus{
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, LastTransitionTime: metav1.Now()}},
	}}
}

func lbService(name string, mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}},
	}}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

func waitIngress(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, want []string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() string {
		s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got := ingressIPs(s); !slices.Equal(got, want) {
			return fmt.Sprintf("%s: got ingress %v, want %v", name, got, want)
		}
		return ""
	})
}

func TestLoadBalancerIngress(t *testing.T) {
	ctx, cs := start(t)
	nodes := cs.CoreV1().Nodes()
	for _, n := range []*corev1.Node{
		node("node-b", "192.168.1.11", true, nil),
		node("node-a", "192.168.1.10", true, nil),
		node("node-down", "192.168.1.12", false, nil),
		node("node-excluded", "192.168.1.13", true, map[string]string{corev1.LabelNodeExcludeBalancers: ""}),
	} {
		if _, err := nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svcs := cs.CoreV1().Services("default")
	for _, s := range []*corev1.Service{
		lbService("web", nil),
		lbService("local", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
		lbService("classy", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") }),
		lbService("plain", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }),
	} {
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ready nodes", func(t *testing.T) {
		waitIngress(ctx, t, cs, "web", []string{"192.168.1.10", "192.168.1.11"})
	})
	t.Run("local policy without endpoints", func(t *testing.T) {
		waitIngress(ctx, t, cs, "local", nil)
	})
	t.Run("local policy follows endpoints", func(t *testing.T) {
		b := "node-b"
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.1.5", NodeName: &b}},
			Ports:     []corev1.EndpointPort{{Port: 80}},
		}}}
		if _, err := cs.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIngress(ctx, t, cs, "local", []string{"192.168.1.11"})
	})
	t.Run("node goes down", func(t *testing.T) {
		n, err := nodes.Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions[0].Status = corev1.ConditionFalse
		if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIngress(ctx, t, cs, "web", []string{"192.168.1.11"})
	})
	t.Run("node joins", func(t *testing.T) {
		if _, err := nodes.Create(ctx, node("node-c", "192.168.1.9", true, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIngress(ctx, t, cs, "web", []string{"192.168.1.9", "192.168.1.11"})
	})
	t.Run("others left alone", func(t *testing.T) {
		// By now every LoadBalancer Service was synced more than once.
		for _, name := range []string{"classy", "plain"} {
			s, err := svcs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ingressIPs(s); len(got) != 0 {
				t.Errorf("%s: got ingress %v, want none", name, got)
			}
		}
	})
	t.Run("type change clears the ingress", func(t *testing.T) {
		s, err := svcs.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Type = corev1.ServiceTypeClusterIP
		if _, err := svcs.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIngress(ctx, t, cs, "web", nil)
	})
}

func TestIngressOrder(t *testing.T) {
	nodes := []*corev1.Node{node("a", "10.0.0.10", true, nil), node("b", "10.0.0.9", true, nil), node("c", "10.0.0.10", true, nil), node("d", "", true, nil)}
	got := Ingress(nodes, nil)
	want := []corev1.LoadBalancerIngress{{IP: "10.0.0.9"}, {IP: "10.0.0.10"}}
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
