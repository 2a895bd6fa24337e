package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"orch.dev/orch/internal/hostnet"
	"orch.dev/orch/internal/token"
	"orch.dev/orch/node/agent"
	"orch.dev/orch/node/runtime/docker"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run a worker: join the cluster and run the pods bound to this node on Docker Engine",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Value: defaultName(), Usage: "this node's name"},
			&cli.StringFlag{Name: "data-dir", Value: "/var/lib/orch/agent", Usage: "where the agent keeps its certificate and the cluster CA"},
			&cli.StringSliceFlag{Name: "join", Usage: "gossip HOST:PORT of cluster members (comma-separated or repeated)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ORCH_TOKEN"}, Usage: "the cluster token"},
			&cli.StringFlag{Name: "node-ip", Usage: "the address this node is reached at (default: the host's first IPv4)"},
			&cli.StringSliceFlag{Name: "node-label", Usage: "k=v label for the Node (repeatable)"},
			&cli.StringSliceFlag{Name: "register-with-taints", Usage: "k=v:Effect taints the Node is registered with (comma-separated or repeated)"},
			&cli.StringFlag{Name: "docker-host", Usage: "Docker Engine URL (default: DOCKER_HOST or the local socket)"},
			&cli.StringFlag{Name: "gossip-addr", Value: "0.0.0.0:7946", Usage: "HOST:PORT for gossip (TCP and UDP)"},
			&cli.StringFlag{Name: "endpoint-addr", Value: "0.0.0.0:10250", Usage: "HOST:PORT of the authenticated endpoint for logs and exec"},
			&cli.IntFlag{Name: "max-pods", Value: 110, Usage: "pods this node accepts"},
			&cli.StringFlag{Name: "cluster-cidr", Usage: "the cluster's pod network, routed between nodes without NAT (default: the /16 around this node's pod subnet)"},
			&cli.StringFlag{Name: "cluster-domain", Value: "cluster.local", Usage: "the DNS zone of Services and pods"},
			proxyModeFlag,
			gossipProbeFlag, gossipSuspicionFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q (flags start with --)", c.Args().First())
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			cfg, err := agentConfig(c)
			if err != nil {
				return err
			}
			cfg.Logger = log
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rt, err := docker.New(ctx, c.String("docker-host"))
			if err != nil {
				return err
			}
			defer rt.Close()
			a, err := agent.New(cfg, rt)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
}

func agentConfig(c *cli.Context) (agent.Config, error) {
	cfg := agent.Config{
		Name: c.String("name"), DataDir: c.String("data-dir"), Join: c.StringSlice("join"), Token: c.String("token"),
		NodeIP: c.String("node-ip"), GossipAddr: c.String("gossip-addr"), EndpointAddr: c.String("endpoint-addr"),
		MaxPods: c.Int("max-pods"), Labels: map[string]string{},
		ClusterCIDR: c.String("cluster-cidr"), ClusterDomain: c.String("cluster-domain"), ProxyMode: c.String("proxy-mode"),
		GossipProbeInterval: c.Duration("gossip-probe-interval"), GossipSuspicionMult: c.Int("gossip-suspicion-mult"),
	}
	if errs := validation.IsDNS1123Subdomain(cfg.ClusterDomain); len(errs) > 0 {
		return cfg, fmt.Errorf("--cluster-domain %q: %s", cfg.ClusterDomain, strings.Join(errs, "; "))
	}
	if err := checkProxyMode(cfg.ProxyMode); err != nil {
		return cfg, err
	}
	if errs := validation.IsDNS1123Subdomain(cfg.Name); len(errs) > 0 {
		return cfg, fmt.Errorf("--name %q: %s", cfg.Name, strings.Join(errs, "; "))
	}
	if len(cfg.Join) == 0 {
		return cfg, errors.New("--join is required: the gossip address of a server (or another agent)")
	}
	if err := token.Check(cfg.Token); err != nil {
		return cfg, fmt.Errorf("--token: %w", err)
	}
	if cfg.NodeIP == "" {
		ip, err := hostnet.IP()
		if err != nil {
			return cfg, fmt.Errorf("--node-ip: %w", err)
		}
		cfg.NodeIP = ip
	} else if ip := net.ParseIP(cfg.NodeIP); ip == nil || ip.IsUnspecified() {
		return cfg, fmt.Errorf("--node-ip %q must be an address this node is reached at", cfg.NodeIP)
	}
	if c.Int("max-pods") < 1 {
		return cfg, fmt.Errorf("--max-pods must be 1 or more")
	}
	for _, l := range c.StringSlice("node-label") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return cfg, fmt.Errorf("--node-label %q: want key=value", l)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return cfg, fmt.Errorf("--node-label %q: key: %s", l, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return cfg, fmt.Errorf("--node-label %q: value: %s", l, strings.Join(errs, "; "))
		}
		cfg.Labels[k] = v
	}
	for _, t := range c.StringSlice("register-with-taints") {
		taint, err := parseTaint(t)
		if err != nil {
			return cfg, fmt.Errorf("--register-with-taints %q: %w", t, err)
		}
		cfg.Taints = append(cfg.Taints, taint)
	}
	return cfg, nil
}

// parseTaint reads key[=value]:Effect.
func parseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, errors.New("want key=value:Effect")
	}
	k, v, _ := strings.Cut(kv, "=")
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return corev1.Taint{}, fmt.Errorf("key: %s", strings.Join(errs, "; "))
	}
	if v != "" {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return corev1.Taint{}, fmt.Errorf("value: %s", strings.Join(errs, "; "))
		}
	}
	switch e := corev1.TaintEffect(effect); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return corev1.Taint{Key: k, Value: v, Effect: e}, nil
	}
	return corev1.Taint{}, fmt.Errorf("effect %q: want NoSchedule, PreferNoSchedule or NoExecute", effect)
}

var proxyModeFlag = &cli.StringFlag{Name: "proxy-mode", Value: agent.ProxyAuto,
	Usage: "service proxy: nftables, userspace (sockets; slower, hides client IPs), or auto (nftables where it works, else userspace with a warning)"}

func checkProxyMode(mode string) error {
	if !slices.Contains(agent.ProxyModes, mode) {
		return fmt.Errorf("--proxy-mode %q: want one of %s", mode, strings.Join(agent.ProxyModes, ", "))
	}
	return nil
}
