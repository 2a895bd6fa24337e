//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"orch.dev/orch/internal/testutil"
)

const (
	vipLoadDuration    = 10 * time.Second
	vipLoadConcurrency = 8
)

// BenchmarkServiceVIP compares many short HTTP requests (a new TCP
// connection each, so every one is NATed and tracked anew) sent by a
// client pod to a backend's pod IP and to a Service's cluster IP in front
// of the same backend. One server and two agents; the client and backend
// "a" run on the first node, backend "b" on the second. Three Services
// get cluster IPs from the API and Endpoints from the endpoints controller:
// one of backend a only (same-node), one of backend b only (cross-node),
// one of both (two-backends; its direct reference takes the two pod IPs in
// turn). Each case runs
// `hello load` in the client pod for 10 s at concurrency 8, pod IP first,
// then cluster IP. Direct traffic and each cluster IP's traffic come from
// client pods of their own (all on the first node): from one client,
// connections through a cluster IP reuse the source ports of earlier
// connections to the same backend by another address, which the backend
// still holds in TIME_WAIT, and stall for a second; "shared-client" shows
// that case.
func BenchmarkServiceVIP(b *testing.B) {
	testutil.BuildHelloImage(b) // the load mode is recent
	nc := startNodes(b, 2)
	ctx := context.Background()
	nodeA, nodeB := nc.agents[0].name, nc.agents[1].name

	pod := func(name, node string, labels map[string]string) {
		p := helloPod(name)
		p.Namespace = "default"
		p.Labels = labels
		p.Spec.NodeName = node
		if _, err := nc.cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			b.Fatalf("create pod %s: %v", name, err)
		}
	}
	clients := []string{"vip-client", "vip-client-a", "vip-client-b", "vip-client-ab", "vip-client-shared"}
	for _, c := range clients {
		pod(c, nodeA, nil)
	}
	pod("vip-be-a", nodeA, map[string]string{"bench": "vip", "be": "a"})
	pod("vip-be-b", nodeB, map[string]string{"bench": "vip", "be": "b"})
	ipA := nc.podIPTB(b, "vip-be-a")
	ipB := nc.podIPTB(b, "vip-be-b")
	for _, c := range clients {
		nc.podIPTB(b, c)
	}

	service := func(name string, selector map[string]string, want int) string {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		}}
		out, err := nc.cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			b.Fatalf("create service %s: %v", name, err)
		}
		testutil.Eventually(b, 30*time.Second, func() string {
			eps, err := nc.cs.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if n := len(eps.Subsets); n != 1 || len(eps.Subsets[0].Addresses) != want {
				return fmt.Sprintf("endpoints of %s: %+v, want %d ready addresses", name, eps.Subsets, want)
			}
			return ""
		})
		return out.Spec.ClusterIP
	}
	vipA := service("vip-a", map[string]string{"be": "a"}, 1)
	vipB := service("vip-b", map[string]string{"be": "b"}, 1)
	vipAB := service("vip-ab", map[string]string{"bench": "vip"}, 2)
	b.Logf("client and vip-be-a (%s) on %s, vip-be-b (%s) on %s; cluster IPs: vip-a %s, vip-b %s, vip-ab %s",
		ipA, nodeA, ipB, nodeB, vipA, vipB, vipAB)

	// Every cluster IP answers, from every backend it should, before the
	// clock runs.
	for _, c := range []struct {
		client, vip string
		want        []string
	}{{"vip-client-a", vipA, []string{"vip-be-a"}}, {"vip-client-b", vipB, []string{"vip-be-b"}}, {"vip-client-ab", vipAB, []string{"vip-be-a", "vip-be-b"}}} {
		testutil.Eventually(b, 60*time.Second, func() string {
			r, err := nc.load(c.client, "http://"+c.vip+"/", time.Second, 2)
			if err != nil {
				return err.Error()
			}
			for _, w := range c.want {
				if !strings.Contains(r.backends, w+":") {
					return fmt.Sprintf("%s answered from %q, want %v", c.vip, r.backends, c.want)
				}
			}
			return ""
		})
	}

	report := func(b *testing.B, pod, vip []loadResult) {
		var podRPS, vipRPS, podP50, vipP50, podP99, vipP99 float64
		for i := range pod {
			podRPS += pod[i].rps
			vipRPS += vip[i].rps
			podP50 += pod[i].p50
			vipP50 += vip[i].p50
			podP99 += pod[i].p99
			vipP99 += vip[i].p99
		}
		n := float64(len(pod))
		b.ReportMetric(podRPS/n, "pod-req/s")
		b.ReportMetric(vipRPS/n, "vip-req/s")
		b.ReportMetric(vipRPS/podRPS, "vip/pod")
		b.ReportMetric(podP50/n, "pod-p50-ms")
		b.ReportMetric(vipP50/n, "vip-p50-ms")
		b.ReportMetric(podP99/n, "pod-p99-ms")
		b.ReportMetric(vipP99/n, "vip-p99-ms")
	}
	one := func(podIP, vipClient, vip string) func(b *testing.B) {
		return func(b *testing.B) {
			var pod, svc []loadResult
			for i := 0; i < b.N; i++ {
				pod = append(pod, nc.mustLoad(b, "vip-client", "http://"+podIP+":8080/", vipLoadDuration, vipLoadConcurrency))
				svc = append(svc, nc.mustLoad(b, vipClient, "http://"+vip+"/", vipLoadDuration, vipLoadConcurrency))
				b.Logf("pod IP %s: %s", podIP, pod[i].line)
				b.Logf("cluster IP %s: %s", vip, svc[i].line)
			}
			report(b, pod, svc)
		}
	}
	b.Run("same-node", one(ipA, "vip-client-a", vipA))
	b.Run("cross-node", one(ipB, "vip-client-b", vipB))
	b.Run("two-backends", func(b *testing.B) {
		var pod, svc []loadResult
		for i := 0; i < b.N; i++ {
			// Each worker takes the two pod IPs in turn.
			pod = append(pod, nc.mustLoad(b, "vip-client", "http://"+ipA+":8080/,http://"+ipB+":8080/", vipLoadDuration, vipLoadConcurrency))
			svc = append(svc, nc.mustLoad(b, "vip-client-ab", "http://"+vipAB+"/", vipLoadDuration, vipLoadConcurrency))
			b.Logf("pod IPs %s, %s: %s", ipA, ipB, pod[i].line)
			b.Logf("cluster IP %s: %s", vipAB, svc[i].line)
		}
		report(b, pod, svc)
	})
	// One client for both paths, one after the other: the cluster IP's
	// connections reuse source ports whose direct connections the backend
	// still holds in TIME_WAIT, under other timestamps and sequence
	// numbers. The backend's and the client's TCP counters show it.
	b.Run("shared-client", func(b *testing.B) {
		var pod, svc []loadResult
		for i := 0; i < b.N; i++ {
			be0, cl0 := podTCPCounters(b, nodeA, "vip-be-a"), podTCPCounters(b, nodeA, "vip-client-shared")
			pod = append(pod, nc.mustLoad(b, "vip-client-shared", "http://"+ipA+":8080/", vipLoadDuration, vipLoadConcurrency))
			be1, cl1 := podTCPCounters(b, nodeA, "vip-be-a"), podTCPCounters(b, nodeA, "vip-client-shared")
			svc = append(svc, nc.mustLoad(b, "vip-client-shared", "http://"+vipA+"/", vipLoadDuration, vipLoadConcurrency))
			be2, cl2 := podTCPCounters(b, nodeA, "vip-be-a"), podTCPCounters(b, nodeA, "vip-client-shared")
			b.Logf("pod IP %s: %s\n\tbackend %s\n\tclient %s", ipA, pod[i].line, counterDelta(be0, be1), counterDelta(cl0, cl1))
			b.Logf("cluster IP %s: %s\n\tbackend %s\n\tclient %s", vipA, svc[i].line, counterDelta(be1, be2), counterDelta(cl1, cl2))
		}
		report(b, pod, svc)
	})
}

// podTCPCounters reads the TCP counters of a pod's network namespace
// (nstat in it, through nsenter; root only). Empty when it cannot.
func podTCPCounters(t testing.TB, node, pod string) map[string]int64 {
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=orch.node="+node, "--filter", "label=orch.pod.name="+pod).Output()
	ids := strings.Fields(string(out))
	if err != nil || len(ids) == 0 {
		t.Logf("no container of pod %s: %v", pod, err)
		return nil
	}
	pid, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", ids[0]).Output()
	if err != nil {
		return nil
	}
	out, err = exec.Command("nsenter", "-t", strings.TrimSpace(string(pid)), "-n", "nstat", "-asz").Output()
	if err != nil {
		t.Logf("nstat in pod %s: %v", pod, err)
		return nil
	}
	m := map[string]int64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.HasPrefix(f[0], "Tcp") {
			m[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return m
}

// counterDelta lists the counters of interest that changed.
func counterDelta(before, after map[string]int64) string {
	var out []string
	for _, k := range []string{"TcpActiveOpens", "TcpPassiveOpens", "TcpRetransSegs", "TcpOutRsts", "TcpExtTCPSynRetrans",
		"TcpExtTW", "TcpExtTWRecycled", "TcpExtPAWSEstab", "TcpExtTCPChallengeACK", "TcpExtTCPACKSkippedTimeWait", "TcpExtTCPTimeWaitOverflow", "TcpExtTCPAbortOnData"} {
		if d := after[k] - before[k]; d != 0 {
			out = append(out, fmt.Sprintf("%s+%d", k, d))
		}
	}
	return strings.Join(out, " ")
}

// loadResult is the parsed line of `hello load`.
type loadResult struct {
	rps, p50, p99 float64
	errors        int
	backends      string
	line          string
}

// podIPTB waits for a pod to run and returns its IP.
func (nc *nodeCluster) podIPTB(t testing.TB, name string) string {
	t.Helper()
	var ip string
	testutil.Eventually(t, 60*time.Second, func() string {
		p, err := nc.cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Sprintf("pod %s is %s without an IP yet (%s)", p.Name, p.Status.Phase, containerStates(p))
		}
		ip = p.Status.PodIP
		return ""
	})
	return ip
}

// load runs `hello load URL D CONC` in the client pod through orchctl exec
// and parses its result line.
func (nc *nodeCluster) load(client, url string, d time.Duration, conc int) (loadResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, orchctl, "exec", client, "--", "/hello", "load", url, d.String(), strconv.Itoa(conc))
	cmd.Env = append(os.Environ(), "ORCHCONFIG="+nc.kc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "load ") {
			continue
		}
		r := loadResult{line: strings.TrimSpace(l)}
		for _, f := range strings.Fields(l)[1:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "rps":
				r.rps, _ = strconv.ParseFloat(v, 64)
			case "p50_ms":
				r.p50, _ = strconv.ParseFloat(v, 64)
			case "p99_ms":
				r.p99, _ = strconv.ParseFloat(v, 64)
			case "errors":
				r.errors, _ = strconv.Atoi(v)
			case "backends":
				r.backends = v
			}
		}
		if err != nil {
			return r, fmt.Errorf("hello load %s: %v: %s", url, err, out.String())
		}
		return r, nil
	}
	return loadResult{}, fmt.Errorf("hello load %s: no result line (%v): %s", url, err, out.String())
}

// mustLoad is load that marks the benchmark failed (with Error, which may
// be called from any goroutine) when the load fails.
func (nc *nodeCluster) mustLoad(t testing.TB, client, url string, d time.Duration, conc int) loadResult {
	r, err := nc.load(client, url, d, conc)
	if err != nil {
		t.Error(err)
	}
	return r
}
