package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"orch.dev/orch/internal/testutil"
)

// orchd and orchctl are the binaries built for these tests.
var orchd, orchctl string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orch-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	orchd, orchctl = filepath.Join(dir, "orchd"), filepath.Join(dir, "orchctl")
	build := exec.Command("go", "build", "-o", dir+"/", "orch.dev/orch/cmd/orchd", "orch.dev/orch/cmd/orchctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a loopback port, free for TCP and UDP a moment ago, that
// no other test of this process got. It picks below the kernel's ephemeral
// range (32768 and up by default): a port that listening on :0 handed out
// is ephemeral, and an outgoing connection may take it as its source port
// before the server binds it.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 1000; i++ {
		p := 20000 + rand.IntN(12000)
		if ports[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		ports[p] = true
		return p
	}
	t.Fatal("no free port found")
	return 0
}

// proc is one orchd server process.
type proc struct {
	t       testing.TB
	name    string
	dir     string
	api     int
	raft    int
	gossip  int
	debug   int
	dns     int // the server's DNS port (UDP and TCP)
	args    []string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

type cluster struct {
	t           testing.TB
	token       string
	clusterCIDR string
	procs       []*proc
}

// startCluster starts n servers that bootstrap one cluster together.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	// A cluster CIDR of its own, so the pod networks of clusters in
	// different tests (or a dev cluster on the machine) never overlap.
	c := &cluster{t: t, token: "integration-test-cluster-token", clusterCIDR: fmt.Sprintf("10.%d.0.0/16", 100+rand.IntN(90))}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		p := &proc{t: t, name: fmt.Sprintf("s%d", i), dir: filepath.Join(base, fmt.Sprintf("s%d", i)),
			api: freePort(t), raft: freePort(t), gossip: freePort(t)}
		p.logPath = filepath.Join(base, p.name+".log")
		c.procs = append(c.procs, p)
	}
	for _, p := range c.procs {
		var join []string
		for _, o := range c.procs {
			if o != p {
				join = append(join, fmt.Sprintf("127.0.0.1:%d", o.gossip))
			}
		}
		p.debug, p.dns = freePort(t), freePort(t)
		p.args = []string{"server", "--name", p.name, "--data-dir", p.dir, "--debug-addr", fmt.Sprintf("127.0.0.1:%d", p.debug),
			"--dns-addr", fmt.Sprintf("127.0.0.1:%d", p.dns),
			"--api-addr", fmt.Sprintf("127.0.0.1:%d", p.api), "--raft-addr", fmt.Sprintf("127.0.0.1:%d", p.raft),
			"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", p.gossip), "--token", c.token,
			"--bootstrap-expect", fmt.Sprint(n), "--cluster-cidr", c.clusterCIDR}
		if len(join) > 0 {
			p.args = append(p.args, "--join", strings.Join(join, ","))
		}
		p.start()
	}
	t.Cleanup(func() {
		for _, p := range c.procs {
			p.kill()
		}
		if t.Failed() {
			for _, p := range c.procs {
				p.dumpLog()
			}
		}
	})
	c.waitReady()
	return c
}

func (p *proc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(orchd, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait() // the exit status is expected after a kill
		logf.Close()
		close(p.exited)
	}()
}

// kill stops the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL) // already gone is fine
	<-p.exited
	p.cmd = nil
}

func (p *proc) running() bool { return p.cmd != nil }

func (p *proc) dumpLog() {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	p.t.Logf("---- %s log (tail) ----\n%s", p.name, strings.Join(lines, "\n"))
}

func (p *proc) url() string { return fmt.Sprintf("https://127.0.0.1:%d", p.api) }

// restConfig reads the admin kubeconfig the server wrote.
func (p *proc) restConfig() *rest.Config {
	p.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(p.dir, "admin.kubeconfig"))
	if err != nil {
		p.t.Fatal(err)
	}
	cfg.QPS = -1
	cfg.Timeout = 30 * time.Second
	return cfg
}

func (p *proc) client() *kubernetes.Clientset {
	p.t.Helper()
	cs, err := kubernetes.NewForConfig(p.restConfig())
	if err != nil {
		p.t.Fatal(err)
	}
	return cs
}

var insecure = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func (p *proc) ready() string {
	if !p.running() {
		return p.name + " is not running"
	}
	resp, err := insecure.Get(p.url() + "/readyz")
	if err != nil {
		return p.name + ": " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Sprintf("%s: /readyz %d %s", p.name, resp.StatusCode, b)
	}
	return ""
}

func (c *cluster) waitReady() {
	c.t.Helper()
	testutil.Eventually(c.t, 60*time.Second, func() string {
		for _, p := range c.procs {
			if p.running() {
				if msg := p.ready(); msg != "" {
					return msg
				}
			}
		}
		return ""
	})
}

type peer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
	Voter   bool   `json:"voter"`
}

// peers asks p for the Raft configuration.
func (p *proc) peers() ([]peer, error) {
	cfg := p.restConfig()
	req, _ := http.NewRequest("GET", p.url()+"/orch/v1/raft/peers", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
	resp, err := insecure.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	var out []peer
	err = json.NewDecoder(bytes.NewReader(b)).Decode(&out)
	return out, err
}

// leader returns the index of the process that leads, per a running one.
func (c *cluster) leader() int {
	c.t.Helper()
	idx := -1
	testutil.Eventually(c.t, 30*time.Second, func() string {
		for _, p := range c.procs {
			if !p.running() {
				continue
			}
			ps, err := p.peers()
			if err != nil {
				return p.name + ": " + err.Error()
			}
			for _, pe := range ps {
				if pe.State == "leader" {
					for i, q := range c.procs {
						if q.name == pe.Name && q.running() {
							idx = i
							return ""
						}
					}
				}
			}
			return p.name + " reports no running leader"
		}
		return "no server running"
	})
	return idx
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
