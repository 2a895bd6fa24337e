package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// MinStopGrace is the least time a container gets between SIGTERM and
// SIGKILL after a preStop hook used up its grace period, as the kubelet
// gives.
const MinStopGrace = 2 * time.Second

// Hook runs a lifecycle handler against the container until it finishes or
// ctx ends. Exec hooks fail on a non-zero exit; httpGet hooks, as the
// kubelet's, fail only when no answer comes (the status is not looked at);
// sleep waits.
func (r *Runner) Hook(ctx context.Context, h *corev1.LifecycleHandler, t Target) error {
	switch {
	case h == nil:
		return nil
	case h.Exec != nil:
		code, out, err := r.runCommand(ctx, h.Exec.Command, t, 0)
		if err != nil {
			return fmt.Errorf("exec %q: %w", strings.Join(h.Exec.Command, " "), err)
		}
		if code != 0 {
			return fmt.Errorf("exec %q exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
		}
		return nil
	case h.HTTPGet != nil:
		if _, err := r.doHTTP(ctx, h.HTTPGet, t); err != nil {
			return fmt.Errorf("http-get: %w", err)
		}
		return nil
	case h.Sleep != nil:
		if h.Sleep.Seconds <= 0 {
			return nil
		}
		tm := r.clock.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer tm.Stop()
		select {
		case <-tm.C():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sleep: %w", ctx.Err())
		}
	case h.TCPSocket != nil:
		// Deprecated in Kubernetes for hooks: connecting is all it can do.
		port, err := resolvePort(h.TCPSocket.Port, t.Ports)
		if err != nil {
			return fmt.Errorf("tcp-socket: %w", err)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostOr(h.TCPSocket.Host, t.PodIP), strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("tcp-socket: %w", err)
		}
		_ = conn.Close() // connecting was the hook
		return nil
	}
	return errors.New("lifecycle handler has no action")
}

// PreStop runs a preStop hook within the grace period and returns the grace
// left for stopping the container: what the hook did not use, but at least
// MinStopGrace when the hook ran out of time. The hook's error, if any, is
// returned too; the container is to be stopped either way.
func (r *Runner) PreStop(ctx context.Context, h *corev1.LifecycleHandler, t Target, grace time.Duration) (time.Duration, error) {
	if h == nil || grace <= 0 {
		return grace, nil
	}
	start := r.clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Hook(ctx, h, t) }()
	timer := r.clock.NewTimer(grace)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C():
		cancel()
		<-done
		err = fmt.Errorf("did not finish within the grace period of %s", grace)
	}
	left := grace - r.clock.Since(start)
	if left < MinStopGrace {
		left = MinStopGrace
	}
	return left, err
}
