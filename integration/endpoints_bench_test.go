//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// BenchmarkEndpointChange measures how long an endpoint change takes to
// reach the Endpoints object and the kernel data path of every node. One
// server and two agents run a Deployment of two hello pods behind a
// Service. Each iteration scales it to one replica and back to two:
//
//   - removal: from the scale-down request until the Endpoints object no
//     longer lists the removed pod (endpoints-ms) and until neither node's
//     nftables table sends to it (datapath-ms);
//   - addition: from the moment the new pod is seen Ready in the API until
//     the Endpoints object and both nodes' tables have it.
//
// The pod's own start (Docker) is not part of the measure: the target is
// the control plane and proxy path, "within 1 s of an endpoint change".
// The reported values are the worst over both kinds of change, p50 and
// max over the iterations.
func BenchmarkEndpointChange(b *testing.B) {
	nc := startNodes(b, 2)
	ctx := context.Background()
	d := deployment("epbench", 2)
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	if _, err := nc.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := nc.cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "epbench"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "epbench"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	readyIPs := func() []string {
		pods, err := nc.podsOf("epbench")
		if err != nil {
			return nil
		}
		var ips []string
		for _, p := range pods {
			if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(&p) {
				ips = append(ips, p.Status.PodIP)
			}
		}
		slices.Sort(ips)
		return ips
	}
	endpointIPs := func() []string {
		eps, err := nc.cs.CoreV1().Endpoints("default").Get(ctx, "epbench", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		var ips []string
		for _, s := range eps.Subsets {
			for _, a := range s.Addresses {
				ips = append(ips, a.IP)
			}
		}
		slices.Sort(ips)
		return ips
	}
	tables := make([]string, len(nc.agents))
	for i, a := range nc.agents {
		tables[i] = "orch-svc-" + a.name
	}
	// inDataPath reports whether every node's table sends to ip (want
	// true) or none does (want false).
	inDataPath := func(ip string, want bool) bool {
		for _, table := range tables {
			out, err := exec.Command("nft", "list", "table", "ip", table).Output()
			has := regexp.MustCompile(regexp.QuoteMeta(ip) + `([^0-9]|$)`).Match(out)
			if err != nil || has != want {
				return false
			}
		}
		return true
	}
	// await polls cond every 2 ms and returns how long it took.
	await := func(from time.Time, what string, cond func() bool) time.Duration {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: not within 30 s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return time.Since(from)
	}
	scale := func(n int32) {
		s, err := nc.cs.AppsV1().Deployments("default").GetScale(ctx, "epbench", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		s.Spec.Replicas = n
		if _, err := nc.cs.AppsV1().Deployments("default").UpdateScale(ctx, "epbench", s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	settle := func() []string {
		var ips []string
		testutil.Eventually(b, 90*time.Second, func() string {
			ips = readyIPs()
			if len(ips) != 2 || !slices.Equal(endpointIPs(), ips) || !inDataPath(ips[0], true) || !inDataPath(ips[1], true) {
				return fmt.Sprintf("ready pods %v, endpoints %v: want two, in the data path", ips, endpointIPs())
			}
			return ""
		})
		return ips
	}
	before := settle()

	var epTimes, dpTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Removal.
		start := time.Now()
		scale(1)
		var gone string
		epTimes = append(epTimes, await(start, "endpoints after scale-down", func() bool {
			eps := endpointIPs()
			if len(eps) != 1 {
				return false
			}
			for _, ip := range before {
				if ip != eps[0] {
					gone = ip
				}
			}
			return true
		}))
		dpTimes = append(dpTimes, await(start, "data path after scale-down", func() bool { return inDataPath(gone, false) }))

		// Addition: timed from the new pod's readiness as the API shows it.
		scale(2)
		var added string
		deadline := time.Now().Add(90 * time.Second)
		for added == "" {
			if time.Now().After(deadline) {
				b.Fatal("no second ready pod within 90 s")
			}
			for _, ip := range readyIPs() {
				if !slices.Contains(before, ip) || ip == gone {
					added = ip
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		ready := time.Now()
		epTimes = append(epTimes, await(ready, "endpoints after scale-up", func() bool { return slices.Contains(endpointIPs(), added) }))
		dpTimes = append(dpTimes, await(ready, "data path after scale-up", func() bool { return inDataPath(added, true) }))
		b.StopTimer()
		before = settle()
		b.StartTimer()
	}
	b.StopTimer()
	report := func(ds []time.Duration, unit string) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, unit+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, unit+"-max-ms")
	}
	report(epTimes, "endpoints")
	report(dpTimes, "datapath")
}
