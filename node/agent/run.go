package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Run joins the cluster, registers the node and runs its pods until ctx
// ends.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.ctx = ctx
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(a.cfg.DataDir, "agent.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("--data-dir %s is in use by another agent", a.cfg.DataDir)
	}

	if err := a.joinGossip(ctx); err != nil {
		return err
	}
	defer func() {
		if err := a.pool.Leave(2 * time.Second); err != nil {
			a.log.Debug("leave gossip", "err", err)
		}
	}()
	servers, err := a.waitServers(ctx)
	if err != nil {
		return err
	}
	ca, err := a.fetchCA(ctx, servers)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.cfg.DataDir, "ca.crt"), ca, 0o644); err != nil {
		return err
	}
	a.restConfig = a.clientConfig(ca)
	if a.client, err = kubernetes.NewForConfig(a.restConfig); err != nil {
		return err
	}
	a.startRecorder(ctx)
	a.status = newStatusManager(a.client, a.log)

	info, err := a.rt.Info(ctx)
	if err != nil {
		return err
	}
	if info.CPUs == 0 {
		return fmt.Errorf("the container engine reported no CPUs")
	}
	for {
		err := a.register(ctx, info)
		if err == nil {
			break
		}
		a.log.Warn("register the node; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := a.waitPodCIDR(ctx); err != nil {
		return err
	}
	a.startDNS(ctx)
	cert, err := a.servingCert(ctx, a.client)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- a.serveEndpoint(ctx, cert) }()
	go a.status.run(ctx)
	go a.statusLoop(ctx, info)
	go func() { errc <- a.runPods(ctx) }()
	go a.runNetwork(ctx)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}
