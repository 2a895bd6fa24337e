package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// describeProbes prints a container's probes as kubectl does.
func (d *describer) describeProbes(level int, c *corev1.Container) {
	for _, p := range []struct {
		key   string
		probe *corev1.Probe
	}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
		if p.probe != nil {
			d.kv(level, p.key, probeLine(p.probe))
		}
	}
}

// probeLine describes a probe in one line, as kubectl does:
// "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3".
func probeLine(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		return fmt.Sprintf("exec [%s] %s", strings.Join(h.Exec.Command, " "), attrs)
	case h.HTTPGet != nil:
		u := &url.URL{Scheme: strings.ToLower(string(h.HTTPGet.Scheme)), Host: h.HTTPGet.Host, Path: h.HTTPGet.Path}
		if port := h.HTTPGet.Port.String(); port != "" && port != "0" {
			u.Host = net.JoinHostPort(h.HTTPGet.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u, attrs)
	case h.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", h.TCPSocket.Host, h.TCPSocket.Port.String(), attrs)
	case h.GRPC != nil:
		svc := ""
		if h.GRPC.Service != nil {
			svc = *h.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", h.GRPC.Port, svc, attrs)
	}
	return "unknown " + attrs
}
