package ipalloc

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestServiceIPRange(t *testing.T) {
	tests := []struct {
		cidr       string
		size       uint64
		first      string
		last       string
		contains   []string
		notContain []string
	}{
		{cidr: "10.43.0.0/16", size: 65534, first: "10.43.0.1", last: "10.43.255.254",
			contains: []string{"10.43.0.1", "10.43.0.10", "10.43.255.254"}, notContain: []string{"10.43.0.0", "10.43.255.255", "10.44.0.1", "fd00::1"}},
		{cidr: "192.168.7.0/30", size: 2, first: "192.168.7.1", last: "192.168.7.2",
			contains: []string{"192.168.7.2"}, notContain: []string{"192.168.7.3", "192.168.7.0"}},
		{cidr: "fd00:43::/112", size: 65535, first: "fd00:43::1", last: "fd00:43::ffff",
			contains: []string{"fd00:43::ffff"}, notContain: []string{"fd00:43::", "fd00:44::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.cidr, func(t *testing.T) {
			r, err := NewServiceIPRange(netip.MustParsePrefix(tc.cidr))
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != tc.size {
				t.Errorf("size: got %d, want %d", r.Size(), tc.size)
			}
			if got := r.At(0).String(); got != tc.first {
				t.Errorf("first: got %s, want %s", got, tc.first)
			}
			if got := r.At(r.Size() - 1).String(); got != tc.last {
				t.Errorf("last: got %s, want %s", got, tc.last)
			}
			for _, s := range tc.contains {
				a := netip.MustParseAddr(s)
				if !r.Contains(a) {
					t.Errorf("Contains(%s): got false, want true", s)
				}
				if n, ok := r.Offset(a); !ok || r.At(n) != a {
					t.Errorf("At(Offset(%s)): got %s, want %s", s, r.At(n), s)
				}
			}
			for _, s := range tc.notContain {
				if r.Contains(netip.MustParseAddr(s)) {
					t.Errorf("Contains(%s): got true, want false", s)
				}
			}
		})
	}
	if _, err := NewServiceIPRange(netip.MustParsePrefix("10.0.0.0/31")); err == nil {
		t.Error("a /31 range: got no error, want one")
	}
}

func TestKeys(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.5", ClusterIPs: []string{"10.43.0.5"},
		Ports:               []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}, {Port: 53, NodePort: 30080, Protocol: corev1.ProtocolUDP}},
		HealthCheckNodePort: 31000}}
	got := Keys(svc)
	want := []string{"/orch/ipalloc/services/10.43.0.5", "/orch/ipalloc/nodeports/30080/TCP", "/orch/ipalloc/nodeports/30080/UDP", "/orch/ipalloc/nodeports/31000/TCP"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d: got %s, want %s", i, got[i], want[i])
		}
		ip, port, proto, ok := ParseKey(got[i])
		if !ok {
			t.Errorf("ParseKey(%s): not ok", got[i])
		}
		if i == 0 && ip.String() != "10.43.0.5" {
			t.Errorf("ParseKey(%s): got ip %s", got[i], ip)
		}
		if i > 0 && (port == 0 || proto == "") {
			t.Errorf("ParseKey(%s): got %d/%s", got[i], port, proto)
		}
	}
	headless := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}}}
	if k := Keys(headless); len(k) != 0 {
		t.Errorf("headless: got %v, want none", k)
	}
	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ClusterIP: "10.43.0.5"}}
	if k := Keys(ext); len(k) != 0 {
		t.Errorf("ExternalName: got %v, want none", k)
	}
}
