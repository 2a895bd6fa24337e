package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/validation"

	"orch.dev/orch/node/agent"
	"orch.dev/orch/node/runtime/docker"
	"orch.dev/orch/server"
)

func devCommand() *cli.Command {
	home, _ := os.UserHomeDir()
	return &cli.Command{
		Name:  "dev",
		Usage: "run a single-server cluster and a node agent in one process, for development",
		Description: `State lives in --data-dir and survives restarts. The admin client config is
written to DATA-DIR/admin.kubeconfig and to ~/.orch/config, so orchctl finds
the cluster without flags.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: filepath.Join(home, ".orch", "dev"), Usage: "where the cluster keeps its state"},
			&cli.StringFlag{Name: "name", Value: defaultName(), Usage: "the node's name"},
			&cli.StringFlag{Name: "api-addr", Value: "127.0.0.1:6443", Usage: "HOST:PORT of the HTTPS API"},
			&cli.StringFlag{Name: "raft-addr", Value: "127.0.0.1:6444", Usage: "HOST:PORT for Raft"},
			&cli.StringFlag{Name: "gossip-addr", Value: "127.0.0.1:7946", Usage: "HOST:PORT of the server's gossip"},
			&cli.StringFlag{Name: "agent-gossip-addr", Value: "127.0.0.1:7947", Usage: "HOST:PORT of the agent's gossip"},
			&cli.StringFlag{Name: "endpoint-addr", Value: "127.0.0.1:10250", Usage: "HOST:PORT of the agent's endpoint for logs and exec"},
			&cli.StringFlag{Name: "cluster-cidr", Value: "10.42.0.0/16", Usage: "the pod network; the node's pods get a /24 of it"},
			&cli.StringFlag{Name: "service-cidr", Value: "10.43.0.0/16", Usage: "the range Service cluster IPs come from"},
			&cli.StringFlag{Name: "cluster-domain", Value: "cluster.local", Usage: "the DNS zone of Services and pods"},
			&cli.StringFlag{Name: "dns-addr", Value: "127.0.0.1:8600", Usage: "HOST:PORT where the host can ask the cluster DNS (UDP and TCP); empty for none (pods use the agent's)"},
			proxyModeFlag,
			&cli.StringFlag{Name: "docker-host", Usage: "Docker Engine URL (default: DOCKER_HOST or the local socket)"},
			&cli.StringFlag{Name: "kubeconfig", Value: filepath.Join(home, ".orch", "config"), Usage: "where else to write the admin client config (empty: nowhere)"},
		},
		Action: runDev,
	}
}

func runDev(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", c.Args().First())
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if err := checkProxyMode(c.String("proxy-mode")); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Subdomain(c.String("cluster-domain")); len(errs) > 0 {
		return fmt.Errorf("--cluster-domain %q: %s", c.String("cluster-domain"), strings.Join(errs, "; "))
	}
	if addr := c.String("dns-addr"); addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--dns-addr %q: %v", addr, err)
		}
	}
	dir := c.String("data-dir")
	host, _, err := net.SplitHostPort(c.String("api-addr"))
	if err != nil {
		return fmt.Errorf("--api-addr: %w", err)
	}
	node := c.String("name")
	clusterCIDR, err := netip.ParsePrefix(c.String("cluster-cidr"))
	if err != nil {
		return fmt.Errorf("--cluster-cidr %q: %v", c.String("cluster-cidr"), err)
	}
	serviceCIDR, err := netip.ParsePrefix(c.String("service-cidr"))
	if err != nil {
		return fmt.Errorf("--service-cidr %q: %v", c.String("service-cidr"), err)
	}
	srv, err := server.New(server.Config{
		ClusterCIDR: clusterCIDR, NodeCIDRMaskSize: 24, ServiceCIDR: serviceCIDR,
		DNSAddr: c.String("dns-addr"), ClusterDomain: c.String("cluster-domain"),
		Name: node + "-server", DataDir: filepath.Join(dir, "server"), APIAddr: c.String("api-addr"),
		RaftAddr: c.String("raft-addr"), GossipAddr: c.String("gossip-addr"), BootstrapExpect: 1,
		Logger: log.With("role", "server"),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serverErr := make(chan error, 1)
	go func() { serverErr <- srv.Run(ctx) }()
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	err = srv.WaitReady(readyCtx)
	readyCancel()
	if err != nil {
		cancel()
		return errors.Join(err, <-serverErr)
	}
	kubeconfig := filepath.Join(dir, "server", "admin.kubeconfig")
	for _, dst := range []string{filepath.Join(dir, "admin.kubeconfig"), c.String("kubeconfig")} {
		if dst == "" {
			continue
		}
		if err := copyFile(kubeconfig, dst); err != nil {
			cancel()
			return errors.Join(fmt.Errorf("write %s: %w", dst, err), <-serverErr)
		}
	}
	log.Info("cluster ready; orchctl finds it through the admin config", "kubeconfig", filepath.Join(dir, "admin.kubeconfig"))

	rt, err := docker.New(ctx, c.String("docker-host"))
	if err != nil {
		cancel()
		return errors.Join(err, <-serverErr)
	}
	defer rt.Close()
	a, err := agent.New(agent.Config{
		Name: node, DataDir: filepath.Join(dir, "agent"), Join: []string{srv.GossipAddr()}, Token: srv.Token(),
		NodeIP: host, GossipAddr: c.String("agent-gossip-addr"), EndpointAddr: c.String("endpoint-addr"),
		ClusterCIDR: clusterCIDR.String(), ClusterDomain: c.String("cluster-domain"), ProxyMode: c.String("proxy-mode"),
		Logger: log.With("role", "agent"),
	}, rt)
	if err != nil {
		cancel()
		return errors.Join(err, <-serverErr)
	}
	agentErr := a.Run(ctx)
	cancel()
	return errors.Join(agentErr, <-serverErr)
}

// copyFile writes src's contents to dst (mode 0600), making its directory.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
