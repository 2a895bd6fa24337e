package api

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/ipalloc"
)

func service(name string, typ corev1.ServiceType, ports ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name}}}
	for i, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: p})
	}
	return svc
}

// newEnvWithServiceCIDR is newEnv with a service range of its own.
func newEnvWithServiceCIDR(t *testing.T, cidr string) *testEnv {
	t.Helper()
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := New(Config{Store: store, ServiceCIDR: netip.MustParsePrefix(cidr),
		Authenticate: func(tok string) (string, bool) { return "admin", tok == testToken }, BookmarkInterval: 200 * time.Millisecond})
	for _, ns := range InitialNamespaces {
		if err := srv.EnsureNamespace(ctx(t), ns); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	cfg := &rest.Config{Host: hs.URL, BearerToken: testToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: -1}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{srv: srv, store: store, http: hs, client: cs, config: cfg}
}

// checkAllocations fails unless the allocation keys in the store are
// exactly the ones the stored Services hold, each naming its Service.
func checkAllocations(t *testing.T, e *testEnv) {
	t.Helper()
	svcs, err := e.client.CoreV1().Services("").List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.UID{}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		for _, k := range ipalloc.Keys(s) {
			if other, dup := want[k]; dup {
				t.Errorf("%s is held by two Services (%s and %s)", k, other, s.UID)
			}
			want[k] = s.UID
		}
	}
	kvs, _, _, err := e.store.List(ctx(t), ipalloc.Prefix, raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]types.UID{}
	for _, kv := range kvs {
		o, err := ipalloc.DecodeOwner(kv.Value)
		if err != nil {
			t.Errorf("%s: %v", kv.Key, err)
		}
		got[kv.Key] = o.UID
	}
	for k, uid := range want {
		if g, ok := got[k]; !ok || g != uid {
			t.Errorf("allocation %s: got owner %q (present %v), want %q", k, g, ok, uid)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("allocation %s is held by no Service", k)
		}
	}
}

// wantInvalid fails unless err is a 422 naming field with a message
// containing msg.
func wantInvalid(t *testing.T, err error, fieldPath, msg string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want a 422 Invalid error", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Field == fieldPath && strings.Contains(c.Message, msg) {
				return
			}
		}
	}
	t.Fatalf("got %v, want a cause on %s saying %q", err, fieldPath, msg)
}

func TestServiceIPConcurrentCreatesNeverShare(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	const n = 50
	ips := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc, err := e.client.CoreV1().Services("default").Create(c, service(fmt.Sprintf("svc-%d", i), "", 80), metav1.CreateOptions{})
			if err == nil {
				ips[i] = svc.Spec.ClusterIP
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	cidr := netip.MustParsePrefix("10.43.0.0/16")
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create svc-%d: %v", i, errs[i])
		}
		a, err := netip.ParseAddr(ips[i])
		if err != nil || !cidr.Contains(a) {
			t.Errorf("svc-%d: got cluster IP %q, want one in %s", i, ips[i], cidr)
		}
		if j, dup := seen[ips[i]]; dup {
			t.Errorf("svc-%d and svc-%d share %s", j, i, ips[i])
		}
		seen[ips[i]] = i
	}
	checkAllocations(t, e)
}

func TestServiceIPAllocation(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	svcs := e.client.CoreV1().Services("default")

	t.Run("defaults", func(t *testing.T) {
		got, err := svcs.Create(c, service("plain", "", 80), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP == "" || !slices.Equal(got.Spec.ClusterIPs, []string{got.Spec.ClusterIP}) {
			t.Errorf("got clusterIP %q clusterIPs %v, want one allocated IP in both", got.Spec.ClusterIP, got.Spec.ClusterIPs)
		}
		if !slices.Equal(got.Spec.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol}) || got.Spec.IPFamilyPolicy == nil || *got.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Errorf("got ipFamilies %v policy %v, want [IPv4] SingleStack", got.Spec.IPFamilies, got.Spec.IPFamilyPolicy)
		}
		// The dynamic allocation keeps off the static band at the start.
		if a := netip.MustParseAddr(got.Spec.ClusterIP); a.Less(netip.MustParseAddr("10.43.1.1")) {
			t.Errorf("got %s, want an address above the static band (10.43.0.1-10.43.1.0)", a)
		}
		checkAllocations(t, e)
	})
	t.Run("requested IP honoured", func(t *testing.T) {
		s := service("dns", "", 53)
		s.Spec.ClusterIP = "10.43.0.10"
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "10.43.0.10" {
			t.Errorf("got %s, want 10.43.0.10", got.Spec.ClusterIP)
		}
		checkAllocations(t, e)
	})
	t.Run("requested IP taken", func(t *testing.T) {
		s := service("dns2", "", 53)
		s.Spec.ClusterIP = "10.43.0.10"
		_, err := svcs.Create(c, s, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.clusterIP", "already allocated")
		checkAllocations(t, e)
	})
	t.Run("requested IP out of range", func(t *testing.T) {
		for _, ip := range []string{"10.44.0.10", "10.43.0.0", "10.43.255.255"} {
			s := service("far", "", 53)
			s.Spec.ClusterIP = ip
			_, err := svcs.Create(c, s, metav1.CreateOptions{})
			wantInvalid(t, err, "spec.clusterIP", "not in the valid range")
		}
		checkAllocations(t, e)
	})
	t.Run("clusterIPs alone", func(t *testing.T) {
		s := service("by-ips", "", 80)
		s.Spec.ClusterIPs = []string{"10.43.0.11"}
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "10.43.0.11" {
			t.Errorf("got %s, want 10.43.0.11", got.Spec.ClusterIP)
		}
	})
	t.Run("dual stack refused", func(t *testing.T) {
		s := service("dual", "", 80)
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		_, err := svcs.Create(c, s, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ipFamilyPolicy", "dual-stack")
		s = service("v6", "", 80)
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		_, err = svcs.Create(c, s, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ipFamilies[0]", "not configured")
	})
	t.Run("delete frees", func(t *testing.T) {
		if err := svcs.Delete(c, "dns", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		checkAllocations(t, e)
		s := service("dns3", "", 53)
		s.Spec.ClusterIP = "10.43.0.10"
		if _, err := svcs.Create(c, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with the freed IP: %v", err)
		}
		checkAllocations(t, e)
	})
	t.Run("headless", func(t *testing.T) {
		s := service("headless", "", 80)
		s.Spec.ClusterIP = corev1.ClusterIPNone
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != corev1.ClusterIPNone || !slices.Equal(got.Spec.ClusterIPs, []string{corev1.ClusterIPNone}) || *got.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Errorf("got clusterIP %q clusterIPs %v policy %v, want None, [None], SingleStack", got.Spec.ClusterIP, got.Spec.ClusterIPs, *got.Spec.IPFamilyPolicy)
		}
		s = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "headless-manual"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}
		got, err = svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *got.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack || !slices.Equal(got.Spec.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol}) {
			t.Errorf("headless without selector: got policy %v families %v, want RequireDualStack [IPv4]", *got.Spec.IPFamilyPolicy, got.Spec.IPFamilies)
		}
		checkAllocations(t, e)
	})
	t.Run("update keeps IP", func(t *testing.T) {
		cur, err := svcs.Get(c, "plain", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := cur.Spec.ClusterIP
		// A manifest applied again has no clusterIP: the allocated one stays.
		next := service("plain", "", 80, 81)
		next.ResourceVersion = cur.ResourceVersion
		got, err := svcs.Update(c, next, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != ip {
			t.Errorf("got %s, want %s kept", got.Spec.ClusterIP, ip)
		}
		got.Spec.ClusterIP, got.Spec.ClusterIPs = "10.43.0.12", nil
		_, err = svcs.Update(c, got, metav1.UpdateOptions{})
		wantInvalid(t, err, "spec.clusterIP", "immutable")
		checkAllocations(t, e)
	})
	t.Run("to and from ExternalName", func(t *testing.T) {
		cur, err := svcs.Get(c, "plain", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := cur.Spec.ClusterIP
		cur.Spec.Type, cur.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
		ext, err := svcs.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ext.Spec.ClusterIP != "" || len(ext.Spec.ClusterIPs) != 0 || len(ext.Spec.IPFamilies) != 0 {
			t.Errorf("ExternalName: got clusterIP %q clusterIPs %v families %v, want none", ext.Spec.ClusterIP, ext.Spec.ClusterIPs, ext.Spec.IPFamilies)
		}
		checkAllocations(t, e)
		if kv, _, _ := e.store.Get(c, ipalloc.ServiceIPKey(netip.MustParseAddr(ip)), raftstore.ReadOptions{Linearizable: true}); kv != nil {
			t.Errorf("%s still allocated after the switch to ExternalName", ip)
		}
		ext.Spec.Type, ext.Spec.ExternalName = corev1.ServiceTypeClusterIP, ""
		back, err := svcs.Update(c, ext, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if back.Spec.ClusterIP == "" {
			t.Error("back to ClusterIP: got no cluster IP, want one allocated")
		}
		checkAllocations(t, e)

		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "alias"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "" {
			t.Errorf("ExternalName create: got cluster IP %q, want none", got.Spec.ClusterIP)
		}
	})
	t.Run("deleted through finalizers", func(t *testing.T) {
		s := service("held", "", 80)
		s.Finalizers = []string{"example.com/hold"}
		if _, err := svcs.Create(c, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := svcs.Delete(c, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		checkAllocations(t, e)
		cur, err := svcs.Get(c, "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Finalizers = nil
		if _, err := svcs.Update(c, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkAllocations(t, e)
	})
	t.Run("dry run takes nothing", func(t *testing.T) {
		got, err := svcs.Create(c, service("dry", "", 80), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP == "" {
			t.Error("got no cluster IP in the dry-run answer, want one")
		}
		checkAllocations(t, e)
	})
}

func TestServiceNodePorts(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	svcs := e.client.CoreV1().Services("default")

	np, err := svcs.Create(c, service("np", corev1.ServiceTypeNodePort, 80, 443), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range np.Spec.Ports {
		if p.NodePort < 30000 || p.NodePort > 32767 {
			t.Errorf("port %d: got node port %d, want one in 30000-32767", p.Port, p.NodePort)
		}
	}
	if np.Spec.Ports[0].NodePort == np.Spec.Ports[1].NodePort {
		t.Errorf("both ports got node port %d", np.Spec.Ports[0].NodePort)
	}
	checkAllocations(t, e)

	t.Run("requested honoured", func(t *testing.T) {
		s := service("np-fixed", corev1.ServiceTypeNodePort, 80)
		s.Spec.Ports[0].NodePort = 30080
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Ports[0].NodePort != 30080 {
			t.Errorf("got %d, want 30080", got.Spec.Ports[0].NodePort)
		}
	})
	t.Run("requested taken", func(t *testing.T) {
		s := service("np-clash", corev1.ServiceTypeNodePort, 80)
		s.Spec.Ports[0].NodePort = 30080
		_, err := svcs.Create(c, s, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "already allocated")
		// The same number for UDP is another allocation.
		s.Spec.Ports[0].Protocol = corev1.ProtocolUDP
		if _, err := svcs.Create(c, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("UDP on a port TCP holds: %v", err)
		}
		checkAllocations(t, e)
	})
	t.Run("update keeps node ports", func(t *testing.T) {
		next := service("np", corev1.ServiceTypeNodePort, 80, 443)
		got, err := svcs.Update(c, next, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Spec.Ports {
			if got.Spec.Ports[i].NodePort != np.Spec.Ports[i].NodePort {
				t.Errorf("port %d: got node port %d, want %d kept", i, got.Spec.Ports[i].NodePort, np.Spec.Ports[i].NodePort)
			}
		}
		checkAllocations(t, e)
	})
	t.Run("type change frees node ports", func(t *testing.T) {
		cur, err := svcs.Get(c, "np-fixed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Type = corev1.ServiceTypeClusterIP
		got, err := svcs.Update(c, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Ports[0].NodePort != 0 || got.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("got node port %d etp %q, want none", got.Spec.Ports[0].NodePort, got.Spec.ExternalTrafficPolicy)
		}
		checkAllocations(t, e)
		s := service("np-reuse", corev1.ServiceTypeNodePort, 80)
		s.Spec.Ports[0].NodePort = 30080
		if _, err := svcs.Create(c, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("reuse the freed node port: %v", err)
		}
	})
	t.Run("load balancer", func(t *testing.T) {
		s := service("lb", corev1.ServiceTypeLoadBalancer, 80)
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		got, err := svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Ports[0].NodePort == 0 || got.Spec.HealthCheckNodePort == 0 {
			t.Errorf("got node port %d health check node port %d, want both allocated", got.Spec.Ports[0].NodePort, got.Spec.HealthCheckNodePort)
		}
		s = service("lb-no-ports", corev1.ServiceTypeLoadBalancer, 80)
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		got, err = svcs.Create(c, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Ports[0].NodePort != 0 {
			t.Errorf("allocateLoadBalancerNodePorts false: got node port %d, want none", got.Spec.Ports[0].NodePort)
		}
		checkAllocations(t, e)
		if err := svcs.Delete(c, "lb", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		checkAllocations(t, e)
	})
	t.Run("deletecollection frees", func(t *testing.T) {
		if err := e.client.CoreV1().RESTClient().Delete().Namespace("default").Resource("services").Do(c).Error(); err != nil {
			t.Fatal(err)
		}
		checkAllocations(t, e)
		kvs, _, _, err := e.store.List(c, ipalloc.Prefix, raftstore.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != 0 {
			t.Errorf("got %d allocation keys after deleting every Service, want 0", len(kvs))
		}
	})
}

func TestServiceIPRangeFull(t *testing.T) {
	e := newEnvWithServiceCIDR(t, "192.168.50.0/29") // 6 usable addresses
	c := ctx(t)
	svcs := e.client.CoreV1().Services("default")
	for i := range 6 {
		got, err := svcs.Create(c, service(fmt.Sprintf("s%d", i), "", 80), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if !netip.MustParsePrefix("192.168.50.0/29").Contains(netip.MustParseAddr(got.Spec.ClusterIP)) {
			t.Errorf("got %s, want an IP of 192.168.50.0/29", got.Spec.ClusterIP)
		}
	}
	_, err := svcs.Create(c, service("s6", "", 80), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("got %v, want the range to be full", err)
	}
	checkAllocations(t, e)
}

// TestServicesPrefix keeps ipalloc's idea of where Services live true.
func TestServicesPrefix(t *testing.T) {
	if got := newRegistry().lookup("", "v1", "services").prefix(""); got != ipalloc.ServicesPrefix {
		t.Errorf("got %s, want %s", got, ipalloc.ServicesPrefix)
	}
}

// TestServiceIPConcurrentCreatesFillSmallRange makes concurrent creates
// compete for every address of a small range: each must get its own.
func TestServiceIPConcurrentCreatesFillSmallRange(t *testing.T) {
	e := newEnvWithServiceCIDR(t, "192.168.60.0/27") // 30 usable addresses
	c := ctx(t)
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.client.CoreV1().Services("default").Create(c, service(fmt.Sprintf("svc-%d", i), corev1.ServiceTypeNodePort, 80), metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create svc-%d: %v", i, err)
		}
	}
	checkAllocations(t, e) // fails on any IP or node port held twice
}
