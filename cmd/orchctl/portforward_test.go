package main

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"orch.dev/orch/internal/certs"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/endpoint"
	"orch.dev/orch/server/api/apitest"
)

func TestParsePortSpecs(t *testing.T) {
	cases := []struct {
		args    []string
		want    []portSpec
		wantErr string
	}{
		{args: []string{"8080"}, want: []portSpec{{local: 8080, remote: "8080"}}},
		{args: []string{":8080", "5000:80", "6000:http"}, want: []portSpec{{remote: "8080"}, {local: 5000, remote: "80"}, {local: 6000, remote: "http"}}},
		{args: []string{"0:80"}, want: []portSpec{{remote: "80"}}},
		{wantErr: "needs at least one port"},
		{args: []string{"abc:80"}, wantErr: `local port "abc" is not a port number`},
		{args: []string{"70000:80"}, wantErr: `local port "70000" is not a port number`},
		{args: []string{"0"}, wantErr: `local port "0" is not a port number`},
		{args: []string{"80:"}, wantErr: "the remote port is missing"},
		{args: []string{":0"}, wantErr: "remote port 0 is out of range"},
		{args: []string{":65536"}, wantErr: "remote port 65536 is out of range"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parsePortSpecs(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// shoutServer listens on loopback: it greets each connection, answers its
// lines upper-cased, and says bye when the client has closed its side.
func shoutServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprint(c, "hello\n")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprint(c, strings.ToUpper(sc.Text())+"\n")
				}
				fmt.Fprint(c, "bye\n")
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// startForwardAPI stands in for an API server whose agents reach every
// pod at this host's loopback: pods/portforward goes to an agent endpoint,
// everything else to env's API server. It returns a kubeconfig for orchctl.
func startForwardAPI(t *testing.T, env *apitest.Env) string {
	t.Helper()
	agent := endpoint.New(endpoint.Config{Token: podProxyToken,
		PodAddress: func(context.Context, string, string) (string, error) { return "127.0.0.1", nil }})
	api, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rest.TransportFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(api)
		pr.Out.Header.Del("Authorization") // the transport sets env's
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/namespaces/{namespace}/pods/{pod}/portforward", func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.URL.Path = "/portForward/" + r.PathValue("namespace") + "/" + r.PathValue("pod")
		out.URL.RawPath = ""
		agent.ServeHTTP(w, out)
	})
	mux.Handle("/", rp)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "forward.kubeconfig")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := certs.WriteKubeconfig(kc, "forward", srv.URL, ca, podProxyToken); err != nil {
		t.Fatal(err)
	}
	return kc
}

// forwardObjects makes pod web (Running and Ready, port "http" is port),
// pod pending, services web (80 to "http"), empty (no pods) and nosel (no
// selector), and deployment and statefulset web.
func forwardObjects(t *testing.T, env *apitest.Env, port int) {
	t.Helper()
	ctx := context.Background()
	core := env.Client.CoreV1()
	for _, p := range []struct {
		name  string
		phase corev1.PodPhase
	}{{"web", corev1.PodRunning}, {"pending", corev1.PodPending}} {
		pod, err := core.Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": p.name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = p.phase
		if p.phase == corev1.PodRunning {
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		}
		if _, err := core.Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		name     string
		selector map[string]string
	}{{"web", map[string]string{"app": "web"}}, {"empty", map[string]string{"app": "none"}}, {"nosel", nil}} {
		if _, err := core.Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: s.name},
			Spec: corev1.ServiceSpec{Selector: s.selector,
				Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http")}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}}}
	if _, err := env.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.AppsV1().StatefulSets("default").Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPortForward(t *testing.T) {
	env := apitest.Start(t)
	port := shoutServer(t)
	forwardObjects(t, env, port)
	kc := startForwardAPI(t, env)

	forwards := []struct {
		name string
		args []string
	}{
		{name: "a pod", args: []string{"web", fmt.Sprintf(":%d", port)}},
		{name: "a pod's named port", args: []string{"pod/web", ":http"}},
		{name: "a service", args: []string{"svc/web", ":80"}},
		{name: "a service's named port", args: []string{"service/web", ":web"}},
		{name: "a deployment", args: []string{"deployment/web", ":http"}},
		{name: "a statefulset", args: []string{"sts/web", ":http"}},
	}
	for _, tc := range forwards {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, append([]string{"--kubeconfig", kc, "port-forward"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			}()
			var addr string
			testutil.Eventually(t, 30*time.Second, func() string {
				line, _, _ := strings.Cut(stdout.String(), "\n")
				rest, ok := strings.CutPrefix(line, "Forwarding from ")
				if !ok {
					return fmt.Sprintf("no Forwarding line yet: stdout %q, stderr %q", stdout.String(), stderr.String())
				}
				if want := fmt.Sprintf(" -> %d", port); !strings.HasSuffix(rest, want) {
					return fmt.Sprintf("got %q, want it to end with %q", line, want)
				}
				addr = strings.TrimSuffix(rest, fmt.Sprintf(" -> %d", port))
				return ""
			})
			for range 2 { // a WebSocket each
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprint(c, "ping\n")
				_ = c.(*net.TCPConn).CloseWrite()
				got, err := io.ReadAll(c)
				c.Close()
				if string(got) != "hello\nPING\nbye\n" || err != nil {
					t.Fatalf("through %s: got %q, %v; want the server's hello, PING and bye", addr, got, err)
				}
			}
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("orchctl exited %d after Ctrl-C; stderr %q", code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("orchctl port-forward did not stop")
			}
			if !strings.Contains(stdout.String(), "Handling connection for ") {
				t.Fatalf("stdout %q does not say it handled connections", stdout.String())
			}
		})
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{name: "pod not running", args: []string{"pending", "80"}, want: "pod pending is not running (phase Pending)"},
		{name: "no such pod", args: []string{"nope", "80"}, want: `pods "nope" not found`},
		{name: "no pods behind the service", args: []string{"svc/empty", "80"}, want: "no running pods behind service empty"},
		{name: "no such deployment", args: []string{"deploy/nope", "80"}, want: `deployments.apps "nope" not found`},
		{name: "service without a selector", args: []string{"svc/nosel", "80"}, want: "service nosel has no selector"},
		{name: "no such service port", args: []string{"svc/web", "81"}, want: "service web has no port 81 (its ports: 80)"},
		{name: "no such named port", args: []string{"web", ":nope"}, want: `pod web has no container port named "nope"`},
		{name: "not a port", args: []string{"web", "abc:80"}, want: `local port "abc" is not a port number`},
		{name: "no port", args: []string{"web"}, want: "needs a pod and at least one port"},
		{name: "an unsupported kind", args: []string{"job/x", "80"}, want: "port-forward works on pods, services and workloads"},
		{name: "a bad address", args: []string{"web", "80", "--address", "nowhere"}, want: `--address "nowhere"`},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, nil, "", append([]string{"--kubeconfig", kc, "port-forward"}, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("got %s; want exit 1 and stderr with %q", r, tc.want)
			}
		})
	}

	stops := []struct {
		name string
		end  func(t *testing.T, pod *corev1.Pod)
		want string
	}{
		{name: "deleted", want: "pod victim was deleted: port forwarding stopped", end: func(t *testing.T, pod *corev1.Pod) {
			if err := env.Client.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "failed", want: "pod victim is no longer running (phase Failed)", end: func(t *testing.T, pod *corev1.Pod) {
			pod.Status.Phase = corev1.PodFailed
			if _, err := env.Client.CoreV1().Pods("default").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range stops {
		t.Run("the pod "+tc.name, func(t *testing.T) {
			ctx := context.Background()
			pod, err := env.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "victim"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = env.Client.CoreV1().Pods("default").Delete(ctx, "victim", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}) // gone already in one case
				testutil.Eventually(t, 30*time.Second, func() string {
					if _, err := env.Client.CoreV1().Pods("default").Get(ctx, "victim", metav1.GetOptions{}); err == nil {
						return "pod victim is still there"
					}
					return ""
				})
			})
			pod.Status.Phase = corev1.PodRunning
			if pod, err = env.Client.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"--kubeconfig", kc, "port-forward", "victim", ":80"}, strings.NewReader(""), &stdout, &stderr)
			}()
			testutil.Eventually(t, 30*time.Second, func() string {
				if !strings.HasPrefix(stdout.String(), "Forwarding from ") {
					return fmt.Sprintf("no Forwarding line yet: stdout %q, stderr %q", stdout.String(), stderr.String())
				}
				return ""
			})
			tc.end(t, pod)
			select {
			case code := <-done:
				if code != 1 || !strings.Contains(stderr.String(), tc.want) {
					t.Fatalf("got exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("orchctl port-forward did not stop")
			}
		})
	}

	t.Run("a closed port is reported", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"--kubeconfig", kc, "port-forward", "web", ":1"}, strings.NewReader(""), &stdout, &stderr)
		}()
		var addr string
		testutil.Eventually(t, 30*time.Second, func() string {
			line, _, _ := strings.Cut(stdout.String(), "\n")
			rest, ok := strings.CutPrefix(line, "Forwarding from ")
			if !ok {
				return fmt.Sprintf("no Forwarding line yet: stdout %q, stderr %q", stdout.String(), stderr.String())
			}
			addr = strings.TrimSuffix(rest, " -> 1")
			return ""
		})
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if len(got) != 0 {
			t.Fatalf("got %q from a closed port", got)
		}
		testutil.Eventually(t, 30*time.Second, func() string {
			if want := "error forwarding port 1 to pod default/web"; !strings.Contains(stderr.String(), want) {
				return fmt.Sprintf("stderr %q does not say %q", stderr.String(), want)
			}
			return ""
		})
		cancel()
		<-done
	})
}
