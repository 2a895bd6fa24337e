package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestProbeLine(t *testing.T) {
	defaults := func(h corev1.ProbeHandler) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	}
	const attrs = " delay=0s timeout=1s period=10s #success=1 #failure=3"
	cases := []struct {
		name  string
		probe *corev1.Probe
		want  string
	}{
		{"http-get", defaults(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTP, Path: "/healthz", Port: intstr.FromInt32(8080)}}),
			"http-get http://:8080/healthz" + attrs},
		{"http-get with host and named port", defaults(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Host: "10.0.0.1", Path: "/", Port: intstr.FromString("web")}}),
			"https://10.0.0.1:web/" + attrs},
		{"tcp-socket", defaults(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5432)}}),
			"tcp-socket :5432" + attrs},
		{"exec", defaults(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ok"}}}),
			"exec [cat /tmp/ok]" + attrs},
		{"grpc", defaults(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000, Service: ptr.To("db")}}),
			"grpc <pod>:9000 db" + attrs},
		{"no handler", &corev1.Probe{InitialDelaySeconds: 5}, "unknown delay=5s timeout=0s period=0s #success=0 #failure=0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := probeLine(tc.probe)
			if tc.name == "http-get with host and named port" {
				got = got[len("http-get "):]
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
