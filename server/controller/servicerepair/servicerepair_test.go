package servicerepair

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/ipalloc"
)

func nodePortService(name string, ip string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: ip, Selector: map[string]string{"app": name},
		Ports: []corev1.ServicePort{{Port: 80}},
	}}
}

func allocationKeys(t *testing.T, env *apitest.Env) map[string]bool {
	t.Helper()
	kvs, _, _, err := env.Store.List(context.Background(), ipalloc.Prefix, raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, kv := range kvs {
		out[kv.Key] = true
	}
	return out
}

// pass is one repair pass of a test: the clock moves by advance, the key
// rewrite (if any) is written again, then Repair runs.
type pass struct {
	advance time.Duration
	rewrite string
	want    Result
}

var orphanPort = ipalloc.NodePortKey(31999, corev1.ProtocolUDP)

func TestRepair(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// break damages the store after the Services a and b were created.
		damage func(t *testing.T, env *apitest.Env, a, b *corev1.Service)
		// passes run one after the other, the clock moving by advance
		// before each.
		passes []pass
		// wantKeys are the allocation keys present at the end; nil means
		// exactly those of a and b.
		wantKeys func(a, b *corev1.Service) []string
	}{
		{
			name:   "consistent store: nothing to do",
			damage: func(*testing.T, *apitest.Env, *corev1.Service, *corev1.Service) {},
			passes: []pass{{want: Result{}}},
		},
		{
			name: "missing keys are re-created",
			damage: func(t *testing.T, env *apitest.Env, a, _ *corev1.Service) {
				del(t, env, ipalloc.ServiceIPKey(netip.MustParseAddr(a.Spec.ClusterIP)))
				del(t, env, ipalloc.NodePortKey(a.Spec.Ports[0].NodePort, corev1.ProtocolTCP))
			},
			passes: []pass{{want: Result{Recreated: 2}}, {want: Result{}}},
		},
		{
			name: "orphan released after the grace period",
			damage: func(t *testing.T, env *apitest.Env, _, _ *corev1.Service) {
				put(t, env, ipalloc.ServiceIPKey(netip.MustParseAddr("10.43.7.7")), ipalloc.Owner{Namespace: "default", Name: "gone"})
			},
			passes: []pass{{want: Result{Pending: 1}}, {advance: 30 * time.Second, want: Result{Pending: 1}}, {advance: 31 * time.Second, want: Result{Released: 1}}, {want: Result{}}},
		},
		{
			name: "orphan rewritten restarts its grace period",
			damage: func(t *testing.T, env *apitest.Env, _, _ *corev1.Service) {
				put(t, env, orphanPort, ipalloc.Owner{Namespace: "default", Name: "gone"})
			},
			passes: []pass{{want: Result{Pending: 1}}, {advance: 2 * time.Minute, want: Result{Released: 1}}},
		},
		{
			name: "two Services holding one IP are reported, not changed",
			damage: func(t *testing.T, env *apitest.Env, a, b *corev1.Service) {
				// Rewrite b in the store with a's cluster IP, as a bad restore could.
				c := b.DeepCopy()
				c.Spec.ClusterIP, c.Spec.ClusterIPs = a.Spec.ClusterIP, []string{a.Spec.ClusterIP}
				c.ResourceVersion = ""
				c.APIVersion, c.Kind = "v1", "Service"
				v, err := json.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := env.Store.Txn(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: ipalloc.ServicesPrefix + "default/" + b.Name, Value: v}}}); err != nil {
					t.Fatal(err)
				}
			},
			passes: []pass{{want: Result{Conflicts: 1, Pending: 1}}},
			wantKeys: func(a, b *corev1.Service) []string {
				return append(ipalloc.Keys(a), ipalloc.Keys(b)...) // b's old IP waits out its grace period
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.Start(t)
			svcs := env.Client.CoreV1().Services("default")
			a, err := svcs.Create(ctx, nodePortService("a", ""), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := svcs.Create(ctx, nodePortService("b", ""), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, env, a, b)
			clk := clocktesting.NewFakeClock(time.Now())
			c := New(Deps{Store: env.Store, Clock: clk, Grace: time.Minute})
			for i, p := range tc.passes {
				clk.Step(p.advance)
				if p.rewrite != "" {
					put(t, env, p.rewrite, ipalloc.Owner{Namespace: "default", Name: "again"})
				}
				got, err := c.Repair(ctx)
				if err != nil {
					t.Fatalf("pass %d: %v", i, err)
				}
				if got != p.want {
					t.Errorf("pass %d: got %+v, want %+v", i, got, p.want)
				}
			}
			want := append(ipalloc.Keys(a), ipalloc.Keys(b)...)
			if tc.wantKeys != nil {
				want = tc.wantKeys(a, b)
			}
			got := allocationKeys(t, env)
			for _, k := range want {
				if !got[k] {
					t.Errorf("got no %s, want it allocated", k)
				}
				delete(got, k)
			}
			for k := range got {
				t.Errorf("got %s allocated, want it released", k)
			}
		})
	}
}

// TestRepairedKeyGuardsTheIP checks that a re-created key keeps the API
// from handing the IP to another Service.
func TestRepairedKeyGuardsTheIP(t *testing.T) {
	ctx := context.Background()
	env := apitest.Start(t)
	svcs := env.Client.CoreV1().Services("default")
	a, err := svcs.Create(ctx, nodePortService("a", "10.43.0.20"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	del(t, env, ipalloc.ServiceIPKey(netip.MustParseAddr(a.Spec.ClusterIP)))
	if _, err := New(Deps{Store: env.Store}).Repair(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = svcs.Create(ctx, nodePortService("b", "10.43.0.20"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want 422: the IP is allocated again", err)
	}
}

func del(t *testing.T, env *apitest.Env, key string) {
	t.Helper()
	if _, err := env.Store.Txn(context.Background(), &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpDelete, Key: key}}}); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, env *apitest.Env, key string, o ipalloc.Owner) {
	t.Helper()
	v, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Txn(context.Background(), &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: key, Value: v}}}); err != nil {
		t.Fatal(err)
	}
}
