package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/proxy"
)

// TestUserspaceProxy runs an agent with --proxy-mode userspace, the
// fallback for nodes where nftables cannot be used, and checks that a
// Service's cluster IP reaches both of its pods from a pod, and its
// NodePort from the host.
func TestUserspaceProxy(t *testing.T) {
	t.Cleanup(func() {
		// The proxy's interface holds the cluster IPs; the agent is killed
		// without a chance to remove it.
		if out, err := exec.Command("ip", "link", "del", proxy.DefaultUserspaceInterface).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Errorf("remove %s: %v %s", proxy.DefaultUserspaceInterface, err, out)
		}
	})
	nc := startNodesWith(t, 1, "--proxy-mode", "userspace")
	ctx := context.Background()
	d := deployment("uhello", 2)
	if _, err := nc.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := nc.cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "uhello"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "uhello"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := helloPod("uclient", corev1.Container{Name: "sh", Image: testutil.BusyboxImage, Command: []string{"sleep", "3600"}})
	client.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	nc.createPod(t, client)
	nc.runningPodIP(t, "uclient")
	pods := nc.waitRunning(t, "uhello", 2, 90*time.Second)

	t.Run("the cluster IP reaches both pods from a pod", func(t *testing.T) {
		testutil.Eventually(t, 60*time.Second, func() string {
			out, _ := nc.netExec(t, "uclient", 60*time.Second, "sh", "-c",
				"for i in $(seq 30); do timeout 3 wget -qO- http://uhello.default.svc.cluster.local/ | head -1; done")
			seen := answers(out)
			for _, p := range pods {
				if seen[p.Name] == 0 {
					return fmt.Sprintf("no answer from %s among %v", p.Name, seen)
				}
			}
			return ""
		})
	})

	t.Run("the NodePort answers on the host", func(t *testing.T) {
		url := fmt.Sprintf("http://127.0.0.1:%d/", svc.Spec.Ports[0].NodePort)
		testutil.Eventually(t, 30*time.Second, func() string {
			resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), "uhello-") {
				return fmt.Sprintf("GET %s: %q, want a hello pod's answer", url, body)
			}
			return ""
		})
	})

	t.Run("the agent says it runs the userspace proxy", func(t *testing.T) {
		b, err := os.ReadFile(nc.agents[0].logPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "the service proxy runs in userspace") {
			t.Fatalf("no userspace warning in the agent's log")
		}
	})
}
