package integration

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// startPortForward runs `orchctl port-forward` until the test ends and
// returns the local address of its first "Forwarding from ADDR -> PORT"
// line.
func startPortForward(t *testing.T, kc string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, orchctl, append([]string{"port-forward"}, args...)...)
	cmd.Env = append(os.Environ(), "ORCHCONFIG="+kc)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed
		if t.Failed() {
			t.Logf("orchctl port-forward %v stderr:\n%s", args, stderr.String())
		}
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		} else {
			first <- ""
		}
		_, _ = io.Copy(io.Discard, out) // "Handling connection for ..."
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		t.Fatalf("orchctl port-forward %v printed nothing in 30s", args)
	}
	addr, ok := strings.CutPrefix(line, "Forwarding from ")
	if !ok {
		_ = cmd.Wait() // to read its stderr
		t.Fatalf("orchctl port-forward %v: got first line %q, want Forwarding from ...; stderr %s", args, line, stderr.String())
	}
	addr, _, _ = strings.Cut(addr, " -> ")
	return addr
}

// lockedBuffer is a strings.Builder for a writing process and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// getBody answers an HTTP GET's body, or the error.
func getBody(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestPortForwardOnDocker(t *testing.T) {
	nc := startNodes(t, 1)
	ctx := context.Background()
	pod := helloPod("pf-web")
	pod.Labels = map[string]string{"app": "pf"}
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	nc.createPod(t, pod)
	nc.waitPod(t, "default", "pf-web", 60*time.Second, phaseIs(corev1.PodRunning))
	if _, err := nc.cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "pf-svc"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "pf"},
			Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "a pod, a free local port", args: []string{"pod/pf-web", ":8080"}},
		{name: "a service port to a named target port", args: []string{"svc/pf-svc", ":80"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startPortForward(t, nc.kc, tc.args...)
			for i := range 3 { // a connection each
				body, err := getBody("http://" + addr + "/")
				if err != nil || !strings.Contains(body, "pf-web") {
					t.Fatalf("GET %d through %s: got %q, %v; want the pod's hostname pf-web", i, addr, body, err)
				}
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{args: []string{"pod/pf-web", "abc:8080"}, want: `local port "abc" is not a port number`},
			{args: []string{"svc/pf-svc", ":81"}, want: "service pf-svc has no port 81"},
			{args: []string{"pod/nope", ":8080"}, want: `pods "nope" not found`},
		} {
			out, code := ctlOut(t, nc.kc, "", 30*time.Second, append([]string{"port-forward"}, tc.args...)...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("port-forward %v: got %d %q, want a failure saying %q", tc.args, code, out, tc.want)
			}
		}
	})

	t.Run("a closed port is reported", func(t *testing.T) {
		addr := startPortForward(t, nc.kc, "pf-web", ":9999")
		_, err := getBody("http://" + addr + "/")
		if err == nil {
			t.Fatalf("GET through %s to a closed port succeeded", addr)
		}
	})
}
