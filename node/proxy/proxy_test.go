//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// recorder keeps the scripts a proxy applies and the conntrack entries it
// clears.
type recorder struct {
	mu       sync.Mutex
	scripts  []string
	cleared  []string
	failNext bool
}

func (r *recorder) Apply(_ context.Context, script string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext {
		r.failNext = false
		return fmt.Errorf("injected failure")
	}
	r.scripts = append(r.scripts, script)
	return nil
}

func (r *recorder) ClearUDPEndpoint(ep netip.AddrPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleared = append(r.cleared, "endpoint "+ep.String())
	return nil
}

func (r *recorder) ClearUDPService(vip netip.Addr, port uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleared = append(r.cleared, fmt.Sprintf("service %s:%d", vip, port))
	return nil
}

func (r *recorder) last() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.scripts) == 0 {
		return "", 0
	}
	return r.scripts[len(r.scripts)-1], len(r.scripts)
}

func (r *recorder) clearedList() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.cleared, ", ")
}

func TestServiceProxyFollowsTheAPI(t *testing.T) {
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	f := informers.NewSharedInformerFactory(env.Client, 0)
	p, err := New(Deps{Client: env.Client, Informers: f, NodeName: testNode, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		Applier: rec, Conntrack: rec, Sysctl: func(string, string) error { return nil }, MinSyncInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	testutil.Eventually(t, 10*time.Second, func() string {
		if s, _ := rec.last(); !strings.Contains(s, "add table ip orch") {
			return "no full sync yet"
		}
		return ""
	})

	svc := service("default", "dns", "", corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	svc, err = env.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" {
		// Without an allocator in the API the test picks the address.
		svc.Spec.ClusterIP = "10.43.0.53"
		svc.Spec.ClusterIPs = []string{"10.43.0.53"}
		if svc, err = env.Client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	vip := svc.Spec.ClusterIP
	udp := []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}}
	eps, err := env.Client.CoreV1().Endpoints("default").Create(ctx,
		endpoints("default", "dns", udp, addr{"10.42.0.5", testNode}, addr{"10.42.1.7", "n2"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		s, _ := rec.last()
		if !strings.Contains(s, "add element ip orch service-ips { "+vip+" . udp . 53 : goto svc-") ||
			!strings.Contains(s, "10.42.1.7 . 5353") {
			return "the service's rules were not written; last script:\n" + s
		}
		if !strings.Contains(rec.clearedList(), "service "+vip+":53") {
			return "the UDP service's stale conntrack entries were not cleared: " + rec.clearedList()
		}
		return ""
	})

	// One endpoint goes: only this service's chain changes, and the
	// removed endpoint's UDP entries are cleared.
	eps.Subsets[0].Addresses = eps.Subsets[0].Addresses[:1]
	if _, err := env.Client.CoreV1().Endpoints("default").Update(ctx, eps, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		s, _ := rec.last()
		if strings.Contains(s, "add table") || !strings.Contains(s, "flush chain ip orch svc-") || strings.Contains(s, "10.42.1.7") {
			return "want an incremental update without 10.42.1.7; last script:\n" + s
		}
		if !strings.Contains(rec.clearedList(), "endpoint 10.42.1.7:5353") {
			return "conntrack entries of the removed endpoint were not cleared: " + rec.clearedList()
		}
		return ""
	})

	// A failed write is retried with a full sync.
	rec.mu.Lock()
	rec.failNext = true
	rec.mu.Unlock()
	if err := env.Client.CoreV1().Services("default").Delete(ctx, "dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, func() string {
		s, _ := rec.last()
		if !strings.Contains(s, "add table ip orch") || strings.Contains(s, vip) {
			return "want a full sync without the deleted service; last script:\n" + s
		}
		return ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
}
