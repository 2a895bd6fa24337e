//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the object orch's service proxy and DNS read.

package endpoints

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// start runs the controller against a fresh API server.
func start(t *testing.T) (context.Context, kubernetes.Interface, *Controller) {
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
	return ctx, env.Client, c
}

// podSpec says what a test pod is; the test plays the node agent.
type podSpec struct {
	name      string
	labels    map[string]string
	ip        string
	phase     corev1.PodPhase
	ready     bool
	ports     []corev1.ContainerPort
	hostname  string
	subdomain string
}

var web = map[string]string{"app": "web"}

func createPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ps podSpec) *corev1.Pod {
	t.Helper()
	if ps.labels == nil {
		ps.labels = web
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ps.name, Labels: ps.labels},
		Spec: corev1.PodSpec{NodeName: "node-1", Hostname: ps.hostname, Subdomain: ps.subdomain,
			Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev", Ports: ps.ports}}},
	}
	p, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setPodStatus(ctx, t, cs, p, ps)
	return p
}

func setPodStatus(ctx context.Context, t *testing.T, cs kubernetes.Interface, p *corev1.Pod, ps podSpec) {
	t.Helper()
	p, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ps.phase == "" {
		ps.phase = corev1.PodRunning
	}
	ready := corev1.ConditionFalse
	if ps.ready {
		ready = corev1.ConditionTrue
	}
	p.Status.Phase = ps.phase
	p.Status.PodIP = ps.ip
	if ps.ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ps.ip}}
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Now()}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func svcPorts(ps ...corev1.ServicePort) []corev1.ServicePort { return ps }

func addr(ip, pod string) corev1.EndpointAddress {
	node := "node-1"
	return corev1.EndpointAddress{IP: ip, NodeName: &node, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod}}
}

// comparable drops what a test cannot know in advance (pod UIDs).
func comparable(ss []corev1.EndpointSubset) []corev1.EndpointSubset {
	out := make([]corev1.EndpointSubset, len(ss))
	for i := range ss {
		out[i] = *ss[i].DeepCopy()
		for _, as := range [][]corev1.EndpointAddress{out[i].Addresses, out[i].NotReadyAddresses} {
			for j := range as {
				if as[j].TargetRef != nil {
					as[j].TargetRef.UID, as[j].TargetRef.ResourceVersion = "", ""
				}
			}
		}
	}
	return out
}

func show(v any) string {
	b, _ := json.Marshal(v) // test output only
	return string(b)
}

// waitSubsets waits until the Endpoints named name hold want.
func waitSubsets(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, want []corev1.EndpointSubset) *corev1.Endpoints {
	t.Helper()
	var ep *corev1.Endpoints
	testutil.Eventually(t, 15*time.Second, func() string {
		var err error
		ep, err = cs.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got := comparable(ep.Subsets); !apiequality.Semantic.DeepEqual(got, want) {
			return "got subsets " + show(got) + ", want " + show(want)
		}
		return ""
	})
	return ep
}

func TestEndpointsSubsets(t *testing.T) {
	tcp := corev1.ProtocolTCP
	tests := []struct {
		name string
		svc  corev1.ServiceSpec
		pods []podSpec
		want []corev1.EndpointSubset
	}{
		{
			name: "ready and not ready",
			svc:  corev1.ServiceSpec{Selector: web, Ports: svcPorts(corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)})},
			pods: []podSpec{
				{name: "ready", ip: "10.42.0.5", ready: true},
				{name: "running-not-ready", ip: "10.42.0.6"},
				{name: "pending-with-ip", ip: "10.42.0.7", phase: corev1.PodPending},
				{name: "no-ip", ready: true},
				{name: "succeeded", ip: "10.42.0.8", phase: corev1.PodSucceeded},
				{name: "other-app", ip: "10.42.0.9", ready: true, labels: map[string]string{"app": "other"}},
			},
			want: []corev1.EndpointSubset{{
				Addresses:         []corev1.EndpointAddress{addr("10.42.0.5", "ready")},
				NotReadyAddresses: []corev1.EndpointAddress{addr("10.42.0.6", "running-not-ready"), addr("10.42.0.7", "pending-with-ip")},
				Ports:             []corev1.EndpointPort{{Port: 8080, Protocol: tcp}},
			}},
		},
		{
			name: "named port with different numbers",
			svc: corev1.ServiceSpec{Selector: web, Ports: svcPorts(
				corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				corev1.ServicePort{Name: "metrics", Port: 9100})},
			pods: []podSpec{
				{name: "a", ip: "10.42.0.5", ready: true, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}},
				{name: "b", ip: "10.42.0.6", ready: true, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9090}}},
				{name: "c", ip: "10.42.0.7", ready: true, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}},
				{name: "no-http", ip: "10.42.0.8", ready: true},
			},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.42.0.5", "a"), addr("10.42.0.7", "c")},
					Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: tcp}, {Name: "metrics", Port: 9100, Protocol: tcp}}},
				{Addresses: []corev1.EndpointAddress{addr("10.42.0.6", "b")},
					Ports: []corev1.EndpointPort{{Name: "http", Port: 9090, Protocol: tcp}, {Name: "metrics", Port: 9100, Protocol: tcp}}},
				{Addresses: []corev1.EndpointAddress{addr("10.42.0.8", "no-http")},
					Ports: []corev1.EndpointPort{{Name: "metrics", Port: 9100, Protocol: tcp}}},
			},
		},
		{
			name: "hostname with the service as subdomain",
			svc:  corev1.ServiceSpec{Selector: web, ClusterIP: corev1.ClusterIPNone, Ports: svcPorts(corev1.ServicePort{Port: 80})},
			pods: []podSpec{
				{name: "web-0", ip: "10.42.0.5", ready: true, hostname: "web-0", subdomain: "svc"},
				{name: "web-1", ip: "10.42.0.6", ready: true, hostname: "web-1", subdomain: "elsewhere"},
			},
			want: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{func() corev1.EndpointAddress { a := addr("10.42.0.5", "web-0"); a.Hostname = "web-0"; return a }(), addr("10.42.0.6", "web-1")},
				Ports:     []corev1.EndpointPort{{Port: 80, Protocol: tcp}},
			}},
		},
		{
			name: "publishNotReadyAddresses",
			svc:  corev1.ServiceSpec{Selector: web, PublishNotReadyAddresses: true, Ports: svcPorts(corev1.ServicePort{Port: 80})},
			pods: []podSpec{{name: "starting", ip: "10.42.0.5"}, {name: "ready", ip: "10.42.0.6", ready: true}},
			want: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{addr("10.42.0.5", "starting"), addr("10.42.0.6", "ready")},
				Ports:     []corev1.EndpointPort{{Port: 80, Protocol: tcp}},
			}},
		},
		{
			name: "headless without ports",
			svc:  corev1.ServiceSpec{Selector: web, ClusterIP: corev1.ClusterIPNone},
			pods: []podSpec{{name: "a", ip: "10.42.0.5", ready: true}},
			want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr("10.42.0.5", "a")}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cs, _ := start(t)
			for _, p := range tc.pods {
				createPod(ctx, t, cs, p)
			}
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Labels: map[string]string{"team": "a"}}, Spec: tc.svc}
			if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			ep := waitSubsets(ctx, t, cs, "svc", tc.want)
			if ep.Labels["team"] != "a" {
				t.Errorf("got labels %v, want the Service's", ep.Labels)
			}
			if _, headless := ep.Labels[corev1.IsHeadlessService]; headless != (tc.svc.ClusterIP == corev1.ClusterIPNone) {
				t.Errorf("got labels %v, want the headless label only on a headless Service", ep.Labels)
			}
		})
	}
}

func TestEndpointsFollowChanges(t *testing.T) {
	ctx, cs, c := start(t)
	svcs := cs.CoreV1().Services("default")
	port := []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	a := createPod(ctx, t, cs, podSpec{name: "a", ip: "10.42.0.5"})
	createPod(ctx, t, cs, podSpec{name: "b", ip: "10.42.0.6", ready: true, labels: map[string]string{"app": "web", "track": "canary"}})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: web, Ports: svcPorts(corev1.ServicePort{Port: 80})}}
	if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSubsets(ctx, t, cs, "web", []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{addr("10.42.0.6", "b")}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.42.0.5", "a")}, Ports: port}})

	t.Run("pod becomes ready", func(t *testing.T) {
		setPodStatus(ctx, t, cs, a, podSpec{ip: "10.42.0.5", ready: true})
		waitSubsets(ctx, t, cs, "web", []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{addr("10.42.0.5", "a"), addr("10.42.0.6", "b")}, Ports: port}})
	})
	t.Run("no write when nothing changed", func(t *testing.T) {
		cur, err := cs.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			cached, err := c.endpoints.Endpoints("default").Get("web")
			if err != nil || cached.ResourceVersion != cur.ResourceVersion {
				return "the cache does not show the latest Endpoints yet"
			}
			return ""
		})
		if err := c.sync(ctx, "default/web"); err != nil {
			t.Fatal(err)
		}
		again, err := cs.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.ResourceVersion != cur.ResourceVersion {
			t.Errorf("got resourceVersion %s after a sync with nothing new, want %s (no write)", again.ResourceVersion, cur.ResourceVersion)
		}
	})
	t.Run("selector change", func(t *testing.T) {
		cur, err := svcs.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Selector = map[string]string{"track": "canary"}
		if _, err := svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitSubsets(ctx, t, cs, "web", []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr("10.42.0.6", "b")}, Ports: port}})
	})
	t.Run("pod relabelled out", func(t *testing.T) {
		b, err := cs.CoreV1().Pods("default").Get(ctx, "b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Labels = map[string]string{"app": "web"}
		if _, err := cs.CoreV1().Pods("default").Update(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitSubsets(ctx, t, cs, "web", nil)
	})
	t.Run("endpoints deleted by hand come back", func(t *testing.T) {
		if err := cs.CoreV1().Endpoints("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitSubsets(ctx, t, cs, "web", nil)
	})
	t.Run("service delete", func(t *testing.T) {
		if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			_, err := cs.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return "endpoints still there (" + errString(err) + ")"
			}
			return ""
		})
	})
}

func TestEndpointsOfServiceWithoutSelectorLeftAlone(t *testing.T) {
	ctx, cs, c := start(t)
	createPod(ctx, t, cs, podSpec{name: "a", ip: "10.42.0.5", ready: true})
	user := []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 5432, Protocol: corev1.ProtocolTCP}}}}
	if _, err := cs.CoreV1().Endpoints("default").Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Subsets: user}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{Ports: svcPorts(corev1.ServicePort{Port: 5432})}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if _, err := c.services.Services("default").Get("db"); err != nil {
			return "the cache does not show the Service yet"
		}
		return ""
	})
	if err := c.sync(ctx, "default/db"); err != nil {
		t.Fatal(err)
	}
	waitSubsets(ctx, t, cs, "db", user)
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
