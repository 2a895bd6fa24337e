package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"orch.dev/orch/internal/version"
)

// configEnv names the environment variable that points at a client config
// when --kubeconfig is not given.
const configEnv = "ORCHCONFIG"

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "client config `FILE` (default: $ORCHCONFIG, else ~/.orch/config)"},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "API server `URL`, overriding the client config"},
		&cli.StringFlag{Name: "token", Usage: "bearer `TOKEN`, overriding the client config"},
		&cli.StringFlag{Name: "certificate-authority", Usage: "`FILE` with the CA certificate that signed the API server's certificate"},
		&cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "do not verify the API server's certificate (insecure)"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "`NAMESPACE` to work in (default: the client config's, else default)"},
	}
}

// connection is everything a command needs to talk to the API server, and
// what error messages need to say where it came from.
type connection struct {
	cfg *rest.Config
	// namespace is the namespace commands work in; nsFlag says whether the
	// user chose it with -n, which makes a different namespace in a
	// manifest an error.
	namespace string
	nsFlag    bool
	// tokenFrom says where the bearer token came from, for 401 messages.
	tokenFrom string

	clientset *kubernetes.Clientset
	dynamic   *dynamic.DynamicClient
	discovery discovery.CachedDiscoveryInterfaceWithContext
	mapper    meta.RESTMapperWithContext
}

// connect reads the client config once per invocation and builds the
// clients. Server warnings go to stderr, each printed once.
func (s *session) connect(c *cli.Context) (*connection, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	cfg, cn, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "orchctl/" + version.Version
	cfg.QPS, cfg.Burst = 50, 300
	cfg.WarningHandler = rest.NewWarningWriter(s.stderr, rest.WarningWriterOptions{Deduplicate: true})
	cn.cfg = cfg
	if cn.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	if cn.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	cn.discovery = memory.NewMemCacheClientWithContext(dc)
	s.conn = cn
	return cn, nil
}

// loadConfig finds the client config: --kubeconfig, else $ORCHCONFIG, else
// ~/.orch/config; --server, --token, --certificate-authority and
// --insecure-skip-tls-verify override what it says. With --server and no
// config file, the flags are the whole config.
func loadConfig(c *cli.Context) (*rest.Config, *connection, error) {
	path, origin := c.String("kubeconfig"), "--kubeconfig"
	if path == "" {
		if env := os.Getenv(configEnv); env != "" {
			path, origin = env, "$"+configEnv
		}
	}
	if path == "" {
		if home, err := os.UserHomeDir(); err == nil {
			p := filepath.Join(home, ".orch", "config")
			if _, err := os.Stat(p); err == nil {
				path, origin = p, "~/.orch/config"
			}
		}
	}
	server, token := c.String("server"), c.String("token")
	cn := &connection{namespace: "default"}
	var cfg *rest.Config
	switch {
	case path != "":
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", origin, path, err)
		}
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
		raw, err := cc.ClientConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("client config %s (from %s): %w", path, origin, err)
		}
		cfg = raw
		ns, _, err := cc.Namespace()
		if err != nil {
			return nil, nil, fmt.Errorf("client config %s (from %s): %w", path, origin, err)
		}
		if ns != "" {
			cn.namespace = ns
		}
		if cfg.BearerToken != "" || cfg.BearerTokenFile != "" {
			cn.tokenFrom = fmt.Sprintf("from the client config %s", path)
		}
	case server != "":
		cfg = &rest.Config{}
	default:
		return nil, nil, errors.New("no client config: pass --kubeconfig FILE, set $" + configEnv +
			", or copy <data-dir>/admin.kubeconfig from a server to ~/.orch/config; or pass --server URL and --token TOKEN")
	}
	if server != "" {
		cfg.Host = server
	}
	if token != "" {
		cfg.BearerToken, cfg.BearerTokenFile = token, ""
		cn.tokenFrom = "given with --token"
	}
	if ca := c.String("certificate-authority"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("--certificate-authority: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--certificate-authority %s: no PEM certificate in the file", ca)
		}
		cfg.CAFile, cfg.CAData = "", pem
	}
	if c.Bool("insecure-skip-tls-verify") {
		if c.String("certificate-authority") != "" {
			return nil, nil, errors.New("--insecure-skip-tls-verify and --certificate-authority contradict each other; pass one")
		}
		cfg.Insecure, cfg.CAFile, cfg.CAData = true, "", nil
	}
	if ns := c.String("namespace"); ns != "" {
		cn.namespace, cn.nsFlag = ns, true
	}
	return cfg, cn, nil
}

// restMapper maps kinds and resource names to API resources from the
// server's discovery documents, expanding short names (po, deploy, ...).
func (cn *connection) restMapper(ctx context.Context, warn func(string)) (meta.RESTMapperWithContext, error) {
	if cn.mapper != nil {
		return cn.mapper, nil
	}
	groups, err := restmapper.GetAPIGroupResourcesWithContext(ctx, cn.discovery)
	if err != nil {
		return nil, err
	}
	cn.mapper = restmapper.NewShortcutExpanderWithContext(restmapper.NewDiscoveryRESTMapperWithContext(groups), cn.discovery, warn)
	return cn.mapper, nil
}
