//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestExpose(t *testing.T) {
	env := startWithWorkloads(t)
	ctx := context.Background()
	core := env.Client.CoreV1()
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "solo", Labels: map[string]string{"app": "solo", "tier": "db"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "orch/hello:dev",
				Ports: []corev1.ContainerPort{{ContainerPort: 5432}, {ContainerPort: 9187, Protocol: corev1.ProtocolUDP}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bare"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}}},
	}
	for _, p := range pods {
		if _, err := core.Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		args     []string
		svc      string
		selector map[string]string
		typ      corev1.ServiceType
		ports    []corev1.ServicePort // node ports are checked for presence only
		wantErr  string
	}{
		{name: "deployment as node port", args: []string{"deployment/web", "--port", "80", "--target-port", "8080", "--type", "NodePort"},
			svc: "web", selector: map[string]string{"app": "web"}, typ: corev1.ServiceTypeNodePort,
			ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		{name: "replica set with a name", args: []string{"rs", "web", "--port", "80", "--name", "web-rs"},
			svc: "web-rs", selector: map[string]string{"app": "web"}, typ: corev1.ServiceTypeClusterIP,
			ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
		{name: "replication controller over UDP with a named target", args: []string{"rc/web", "--port", "53", "--protocol", "udp", "--target-port", "dns", "--name", "web-rc"},
			svc: "web-rc", selector: map[string]string{"app": "web"}, typ: corev1.ServiceTypeClusterIP,
			ports: []corev1.ServicePort{{Port: 53, TargetPort: intstr.FromString("dns"), Protocol: corev1.ProtocolUDP}}},
		{name: "pod with its declared ports", args: []string{"pod/solo", "--type", "LoadBalancer"},
			svc: "solo", selector: map[string]string{"app": "solo", "tier": "db"}, typ: corev1.ServiceTypeLoadBalancer,
			ports: []corev1.ServicePort{{Name: "port-1", Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP},
				{Name: "port-2", Port: 9187, TargetPort: intstr.FromInt32(9187), Protocol: corev1.ProtocolUDP}}},
		{name: "service again under another name", args: []string{"svc/web-rs", "--name", "web-copy"},
			svc: "web-copy", selector: map[string]string{"app": "web"}, typ: corev1.ServiceTypeClusterIP,
			ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
		{name: "pod without labels", args: []string{"pod/bare", "--port", "80"}, wantErr: "has no selector"},
		{name: "no ports known", args: []string{"deployment/web", "--name", "noports"}, wantErr: "declares no ports"},
		{name: "kind that cannot be exposed", args: []string{"configmap/web", "--port", "80"}, wantErr: "can be exposed"},
		{name: "bad type", args: []string{"deployment/web", "--port", "80", "--type", "ExternalName"}, wantErr: "want ClusterIP, NodePort or LoadBalancer"},
		{name: "bad port", args: []string{"deployment/web", "--port", "70000"}, wantErr: "1-65535"},
		{name: "name taken", args: []string{"deployment/web", "--port", "80"}, wantErr: "already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", append([]string{"expose"}, tc.args...)...)
			if tc.wantErr != "" {
				if r.code == 0 || !strings.Contains(r.stderr, tc.wantErr) {
					t.Fatalf("got %s\nwant a failure saying %q", r, tc.wantErr)
				}
				return
			}
			if r.code != 0 || r.stdout != "service/"+tc.svc+" exposed\n" {
				t.Fatalf("got %s\nwant service/%s exposed", r, tc.svc)
			}
			svc, err := core.Services("default").Get(ctx, tc.svc, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if svc.Spec.Type != tc.typ || !equalMaps(svc.Spec.Selector, tc.selector) {
				t.Errorf("got type %s selector %v, want %s %v", svc.Spec.Type, svc.Spec.Selector, tc.typ, tc.selector)
			}
			if len(svc.Spec.Ports) != len(tc.ports) {
				t.Fatalf("got ports %+v, want %+v", svc.Spec.Ports, tc.ports)
			}
			for i, p := range svc.Spec.Ports {
				want := tc.ports[i]
				external := tc.typ == corev1.ServiceTypeNodePort || tc.typ == corev1.ServiceTypeLoadBalancer
				if external != (p.NodePort != 0) {
					t.Errorf("port %d: got node port %d for type %s", i, p.NodePort, tc.typ)
				}
				p.NodePort = 0
				if p != want {
					t.Errorf("port %d: got %+v, want %+v", i, p, want)
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestGetServicesAndEndpoints(t *testing.T) {
	env := startWithWorkloads(t)
	mustSucceed(t, env, "", "expose", "deployment/web", "--port", "80", "--type", "NodePort")
	mustSucceed(t, env, "", "expose", "deployment/web", "--port", "443", "--type", "LoadBalancer", "--name", "web-lb")
	ctx := context.Background()
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	if _, err := env.Client.CoreV1().Services("default").Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5"}, {IP: "10.42.0.6"}}, Ports: []corev1.EndpointPort{{Port: 8080}}}}}
	if _, err := env.Client.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out := mustSucceed(t, env, "", "get", "svc").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE" {
		t.Fatalf("got header %q, want NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", lines[0])
	}
	want := map[string]*regexp.Regexp{
		"db":     regexp.MustCompile(`^db\s+ExternalName\s+<none>\s+db\.example\.com\s+<none>\s+\S+$`),
		"web":    regexp.MustCompile(`^web\s+NodePort\s+10\.43\.\d+\.\d+\s+<none>\s+80:3\d{4}/TCP\s+\S+$`),
		"web-lb": regexp.MustCompile(`^web-lb\s+LoadBalancer\s+10\.43\.\d+\.\d+\s+<pending>\s+443:3\d{4}/TCP\s+\S+$`),
	}
	for _, l := range lines[1:] {
		name := strings.Fields(l)[0]
		re, ok := want[name]
		if !ok {
			continue
		}
		if !re.MatchString(l) {
			t.Errorf("got row %q, want it to match %s", l, re)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("no row for %s in\n%s", name, out)
	}

	out = mustSucceed(t, env, "", "get", "endpoints").stdout
	re := regexp.MustCompile(`(?m)^NAME\s+ENDPOINTS\s+AGE\n(?:.*\n)*web\s+10\.42\.0\.5:8080,10\.42\.0\.6:8080\s+\S+$`)
	if !re.MatchString(out) {
		t.Errorf("got\n%s\nwant a NAME ENDPOINTS AGE table with web 10.42.0.5:8080,10.42.0.6:8080", out)
	}
}
