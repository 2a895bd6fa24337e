package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/token"
	"orch.dev/orch/node/endpoint"
	rt "orch.dev/orch/node/runtime"
)

// serveEndpoint serves logs, exec and port forwarding to the API servers
// over TLS, with the certificate the cluster CA signed, accepting only the
// servers' token.
func (a *Agent) serveEndpoint(ctx context.Context, cert tls.Certificate) error {
	ln, err := net.Listen("tcp", a.cfg.EndpointAddr)
	if err != nil {
		return fmt.Errorf("--endpoint-addr: %w", err)
	}
	srv := &http.Server{
		Handler: endpoint.New(endpoint.Config{
			Runtime: a.rt, Token: token.AgentEndpointToken(a.cfg.Token), Resolve: a.resolve, Logger: a.log,
			PodAddress: a.podAddress,
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logging.Std(a.log, "endpoint"),
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	a.log.Info("serving logs, exec and port forwarding", "addr", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// resolve maps a pod's container to its engine container: the latest
// attempt, or with previous the one before it.
func (a *Agent) resolve(ctx context.Context, namespace, pod, container string, previous bool) (string, bool, error) {
	a.mu.Lock()
	lister := a.podLister
	a.mu.Unlock()
	if lister == nil {
		return "", false, fmt.Errorf("%w: the agent is starting", rt.ErrNotFound)
	}
	p, err := lister.Pods(namespace).Get(pod)
	if apierrors.IsNotFound(err) {
		return "", false, fmt.Errorf("%w: pod %s/%s is not on this node", rt.ErrNotFound, namespace, pod)
	}
	if err != nil {
		return "", false, err
	}
	tty := false
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if c.Name == container {
			tty = c.TTY
		}
	}
	cs, err := a.rt.ListContainers(ctx, map[string]string{rt.LabelNode: a.cfg.Name, rt.LabelPodUID: string(p.UID), rt.LabelContainer: container})
	if err != nil {
		return "", false, err
	}
	var mine []rt.Container
	for _, c := range cs {
		if c.Labels[rt.LabelRole] != rt.RoleSandbox {
			mine = append(mine, c)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return attemptOf(mine[i]) > attemptOf(mine[j]) })
	idx := 0
	if previous {
		idx = 1
	}
	if len(mine) <= idx {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return "", false, fmt.Errorf("%w: no %s %q in pod %s/%s yet", rt.ErrNotFound, what, container, namespace, pod)
	}
	return mine[idx].ID, tty, nil
}

// podAddress is where this host reaches a pod's ports: its sandbox's IP on
// the pod bridge, or loopback for a host-network pod.
func (a *Agent) podAddress(ctx context.Context, namespace, pod string) (string, error) {
	a.mu.Lock()
	lister := a.podLister
	a.mu.Unlock()
	if lister == nil {
		return "", fmt.Errorf("%w: the agent is starting", rt.ErrNotFound)
	}
	p, err := lister.Pods(namespace).Get(pod)
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%w: pod %s/%s is not on this node", rt.ErrNotFound, namespace, pod)
	}
	if err != nil {
		return "", err
	}
	cs, err := a.rt.ListContainers(ctx, map[string]string{rt.LabelNode: a.cfg.Name, rt.LabelPodUID: string(p.UID), rt.LabelRole: rt.RoleSandbox})
	if err != nil {
		return "", err
	}
	for _, c := range pick(cs, "", rt.RoleSandbox) {
		if c.State != rt.StateRunning {
			continue
		}
		if p.Spec.HostNetwork {
			return "127.0.0.1", nil
		}
		if c.IP == "" {
			// Listings may leave the address out; inspecting says it.
			if c, err = a.rt.InspectContainer(ctx, c.ID); err != nil && !errors.Is(err, rt.ErrNotFound) {
				return "", err
			}
		}
		if c.IP != "" {
			return c.IP, nil
		}
	}
	return "", fmt.Errorf("%w: pod %s/%s has no running network on this node (phase %s)", endpoint.ErrPodNotRunning, namespace, pod, p.Status.Phase)
}
