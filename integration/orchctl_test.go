package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch.dev/orch/internal/testutil"
)

// ctl runs the orchctl binary with the given kubeconfig.
func ctl(t *testing.T, kubeconfig string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(orchctl, args...)
	cmd.Env = append(os.Environ(), "ORCHCONFIG="+kubeconfig, "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func mustCtl(t *testing.T, kubeconfig, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := ctl(t, kubeconfig, stdin, args...)
	if code != 0 {
		t.Fatalf("orchctl %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// TestQuickStart follows the README: a single server started with
// --bootstrap-expect 1 and no token, a manifest applied, read back as YAML.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	p := &proc{t: t, name: "s1", dir: filepath.Join(dir, "s1"), api: freePort(t), raft: freePort(t), gossip: freePort(t), logPath: filepath.Join(dir, "s1.log")}
	p.args = []string{"server", "--name", "s1", "--data-dir", p.dir, "--bootstrap-expect", "1",
		"--api-addr", addr(p.api), "--raft-addr", addr(p.raft), "--gossip-addr", addr(p.gossip)}
	p.start()
	c := &cluster{t: t, procs: []*proc{p}}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	c.waitReady()
	if tok, err := os.ReadFile(filepath.Join(p.dir, "token")); err != nil || len(bytes.TrimSpace(tok)) < 16 {
		t.Fatalf("got token file %q, %v; want a generated token", tok, err)
	}
	kc := filepath.Join(p.dir, "admin.kubeconfig")
	manifest, err := os.ReadFile("../examples/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := mustCtl(t, kc, "", "apply", "-f", "../examples/hello.yaml")
	want := "namespace/demo created\ndeployment.apps/hello created\nservice/hello created\n"
	if out != want {
		t.Fatalf("apply: got %q, want %q", out, want)
	}
	if out := mustCtl(t, kc, string(manifest), "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/hello unchanged") {
		t.Fatalf("second apply: got %q, want unchanged", out)
	}
	yml := mustCtl(t, kc, "", "get", "deployment", "hello", "-n", "demo", "-o", "yaml")
	for _, want := range []string{"kind: Deployment", "name: hello", "namespace: demo", "image: orch/hello:dev", "containerPort: 8080", "resourceVersion:"} {
		if !strings.Contains(yml, want) {
			t.Fatalf("get -o yaml lacks %q:\n%s", want, yml)
		}
	}
	// A server restarted without flags but its data dir rejoins.
	p.kill()
	p.args = []string{"server", "--name", "s1", "--data-dir", p.dir,
		"--api-addr", addr(p.api), "--raft-addr", addr(p.raft), "--gossip-addr", addr(p.gossip)}
	p.start()
	c.waitReady()
	if out := mustCtl(t, kc, "", "get", "svc", "hello", "-n", "demo", "-o", "name"); strings.TrimSpace(out) != "service/hello" {
		t.Fatalf("after restart: got %q", out)
	}
	// Deleting the example deletes its namespace, which the leader's
	// namespace controller empties and then removes.
	mustCtl(t, kc, "", "delete", "-f", "../examples/hello.yaml")
	testutil.Eventually(t, 20*time.Second, func() string {
		out, errOut, _ := ctl(t, kc, "", "get", "ns", "-o", "name")
		if strings.Contains(out, "namespace/demo") {
			return "namespace demo is still there " + errOut
		}
		return ""
	})

	// A bad token is refused with a clear message.
	_, errOut, code := ctl(t, kc, "", "get", "pods", "--token", "wrong-token-0123456789")
	if code == 0 || !strings.Contains(errOut, "token") {
		t.Fatalf("bad token: got exit %d %q, want a refusal naming the token", code, errOut)
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func TestOperatorCommands(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	kc := filepath.Join(c.procs[(leader+1)%3].dir, "admin.kubeconfig")

	var peers []peer
	if err := json.Unmarshal([]byte(mustCtl(t, kc, "", "operator", "raft", "list-peers", "-o", "json")), &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 3 {
		t.Fatalf("got %d peers, want 3", len(peers))
	}

	// Hand leadership to a chosen follower.
	target := c.procs[(leader+2)%3].name
	mustCtl(t, kc, "", "operator", "raft", "transfer-leadership", "--to", target)
	testutil.Eventually(t, 10*time.Second, func() string {
		if l := c.procs[c.leader()].name; l != target {
			return "leader is " + l + ", want " + target
		}
		return ""
	})

	// A snapshot saved now and restored later brings back that state.
	mustCtl(t, kc, "", "create", "namespace", "saved")
	snap := filepath.Join(t.TempDir(), "backup.snap")
	mustCtl(t, kc, "", "operator", "snapshot", "save", snap)
	mustCtl(t, kc, "", "create", "namespace", "after-save")
	mustCtl(t, kc, "", "operator", "snapshot", "restore", snap)
	testutil.Eventually(t, 10*time.Second, func() string {
		out, _, _ := ctl(t, kc, "", "get", "ns", "-o", "name")
		if !strings.Contains(out, "namespace/saved") || strings.Contains(out, "namespace/after-save") {
			return "namespaces after restore: " + out
		}
		return ""
	})
	c.waitConverged()

	// A dead server is removed; the other two carry on.
	dead := c.procs[(leader+1)%3]
	if dead.name == target {
		dead = c.procs[leader]
	}
	dead.kill()
	kc = filepath.Join(c.procs[c.leader()].dir, "admin.kubeconfig")
	mustCtl(t, kc, "", "operator", "raft", "remove-peer", dead.name)
	if err := json.Unmarshal([]byte(mustCtl(t, kc, "", "operator", "raft", "list-peers", "-o", "json")), &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 {
		t.Fatalf("got %d peers after remove-peer, want 2", len(peers))
	}
	mustCtl(t, kc, "", "create", "namespace", "two-left")
	if _, errOut, code := ctl(t, kc, "", "operator", "raft", "remove-peer", "nobody"); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Fatalf("remove unknown peer: got exit %d %q", code, errOut)
	}
}
