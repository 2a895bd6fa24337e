package nodeipam

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

func TestNext(t *testing.T) {
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	cases := []struct {
		name string
		used []string
		bits int
		want string
		ok   bool
	}{
		{"first", nil, 24, "10.42.0.0/24", true},
		{"skips used", []string{"10.42.0.0/24", "10.42.1.0/24"}, 24, "10.42.2.0/24", true},
		{"fills a hole", []string{"10.42.0.0/24", "10.42.2.0/24"}, 24, "10.42.1.0/24", true},
		{"last one", nil, 16, "10.42.0.0/16", true},
		{"full", []string{"10.42.0.0/17", "10.42.128.0/17"}, 17, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			used := map[netip.Prefix]bool{}
			for _, u := range tc.used {
				used[netip.MustParsePrefix(u)] = true
			}
			got, ok := Next(cluster, tc.bits, used)
			if ok != tc.ok || (ok && got.String() != tc.want) {
				t.Fatalf("got %s %v, want %s %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNodesGetDistinctSubnets(t *testing.T) {
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A node that already has one keeps it, and it is not handed out again.
	if _, err := env.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: corev1.NodeSpec{PodCIDR: "10.42.0.0/24"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := New(Deps{Client: env.Client, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), MaskSize: 24, Logger: logging.Discard})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Run(ctx) }() // ends with ctx
	for i := 0; i < 5; i++ {
		if _, err := env.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		l, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		seen := map[string]string{}
		for _, n := range l.Items {
			if n.Spec.PodCIDR == "" {
				return n.Name + " has no pod subnet yet"
			}
			if other, dup := seen[n.Spec.PodCIDR]; dup {
				t.Fatalf("%s and %s both got %s", n.Name, other, n.Spec.PodCIDR)
			}
			seen[n.Spec.PodCIDR] = n.Name
		}
		return ""
	})
	if _, err := New(Deps{ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), MaskSize: 8}); err == nil {
		t.Fatal("got no error for /8 node subnets in a /16")
	}
}
