package docker

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"orch.dev/orch/internal/testutil"
	rt "orch.dev/orch/node/runtime"
)

func TestPauseBinaryIsAValidELF(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			b, err := pauseBinary(arch)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("got %v, want a readable ELF file", err)
			}
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
			if f.Machine != want || f.Type != elf.ET_EXEC || len(f.Progs) != 1 || f.Progs[0].Flags&elf.PF_X == 0 {
				t.Fatalf("got machine %v type %v %d segments, want %v, an executable with one executable segment", f.Machine, f.Type, len(f.Progs), want)
			}
			if f.Entry < f.Progs[0].Vaddr || f.Entry >= f.Progs[0].Vaddr+f.Progs[0].Filesz {
				t.Fatalf("entry %#x outside the segment", f.Entry)
			}
		})
	}
	if _, err := pauseBinary("mips"); err == nil {
		t.Fatal("got no error for an unknown architecture")
	}
}

type fixture struct {
	d    *Docker
	node string
	ctx  context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testutil.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	d, err := New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	node := "rt-test-" + uuid.NewString()[:8]
	testutil.CleanupDocker(t, rt.LabelNode, node)
	return &fixture{d: d, node: node, ctx: ctx}
}

func (f *fixture) labels(pod, container, role string) map[string]string {
	return map[string]string{
		rt.LabelManaged: "true", rt.LabelNode: f.node, rt.LabelPodUID: "uid-" + pod, rt.LabelPodNamespace: "default",
		rt.LabelPodName: pod, rt.LabelContainer: container, rt.LabelRole: role, rt.LabelAttempt: "0",
	}
}

// run creates and starts a container in the sandbox.
func (f *fixture) run(t *testing.T, sandbox, pod, name string, spec rt.ContainerSpec) string {
	t.Helper()
	spec.Labels = f.labels(pod, name, rt.RoleApp)
	spec.SandboxID = sandbox
	if spec.Image == "" {
		spec.Image = testutil.HelloImage
	}
	id, err := f.d.CreateContainer(f.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.StartContainer(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) waitExit(t *testing.T, id string) rt.Container {
	t.Helper()
	var c rt.Container
	testutil.Eventually(t, 30*time.Second, func() string {
		var err error
		c, err = f.d.InspectContainer(f.ctx, id)
		if err != nil {
			return err.Error()
		}
		if c.State != rt.StateExited {
			return "container " + c.Name + " is " + string(c.State)
		}
		return ""
	})
	return c
}

func (f *fixture) logs(t *testing.T, id string) string {
	t.Helper()
	rc, err := f.d.Logs(f.ctx, id, rt.LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func TestPodContainersShareLocalhost(t *testing.T) {
	f := newFixture(t)
	testutil.BuildHelloImage(t)
	sb, err := f.d.RunSandbox(f.ctx, rt.SandboxSpec{Labels: f.labels("web", "", rt.RoleSandbox), Hostname: "web", Network: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if sb.State != rt.StateRunning || sb.IP == "" {
		t.Fatalf("got sandbox %+v, want running with an IP", sb)
	}
	f.run(t, sb.ID, "web", "server", rt.ContainerSpec{Env: []string{"GREETING=Hi", "POD_NAME=web"}})
	client := f.run(t, sb.ID, "web", "client", rt.ContainerSpec{Args: []string{"fetch", "http://localhost:8080/"}})
	c := f.waitExit(t, client)
	out := f.logs(t, client)
	if c.ExitCode != 0 || !strings.Contains(out, "Hi from web") || !strings.Contains(out, "POD_NAME=web") {
		t.Fatalf("got exit %d output %q, want 0 and the server's greeting with the pod's host name", c.ExitCode, out)
	}

	t.Run("exec", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := f.d.Exec(f.ctx, client, rt.ExecOptions{Cmd: []string{"/hello", "env"}, Stdout: &stdout, Stderr: &stderr})
		if err == nil {
			t.Fatalf("exec in an exited container: got exit %d, want an error", code)
		}
		server, _ := f.d.ListContainers(f.ctx, map[string]string{rt.LabelNode: f.node, rt.LabelContainer: "server"})
		if len(server) != 1 {
			t.Fatalf("got %d server containers, want 1", len(server))
		}
		stdout.Reset()
		code, err = f.d.Exec(f.ctx, server[0].ID, rt.ExecOptions{Cmd: []string{"/hello", "cat"}, Stdin: strings.NewReader("ping\n"), Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 0 || stdout.String() != "ping\n" {
			t.Fatalf("got %d %v %q, want 0 and ping echoed", code, err, stdout.String())
		}
		code, err = f.d.Exec(f.ctx, server[0].ID, rt.ExecOptions{Cmd: []string{"/hello", "exit", "7"}, Stdout: &stdout})
		if err != nil || code != 7 {
			t.Fatalf("got %d %v, want exit code 7", code, err)
		}
	})

	t.Run("list by label", func(t *testing.T) {
		all, err := f.d.ListContainers(f.ctx, map[string]string{rt.LabelNode: f.node, rt.LabelPodName: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Fatalf("got %d containers, want sandbox, server and client", len(all))
		}
	})
}

func TestLimitsAndGracefulStop(t *testing.T) {
	f := newFixture(t)
	testutil.BuildHelloImage(t)
	sb, err := f.d.RunSandbox(f.ctx, rt.SandboxSpec{Labels: f.labels("lim", "", rt.RoleSandbox), Hostname: "lim", Network: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	id := f.run(t, sb.ID, "lim", "app", rt.ContainerSpec{
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, Env: []string{"TERM_DELAY=30s"},
		ReadOnlyRootFS: true, CapDrop: []string{"ALL"}, User: "1000",
	})
	out, err := exec.Command("docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", id).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("%d %d true 1000", 64<<20, 500_000_000); got != want {
		t.Fatalf("docker inspect: got %q, want %q", got, want)
	}
	// The app ignores SIGTERM for 30 s; a 1 s grace period kills it.
	start := time.Now()
	if err := f.d.StopContainer(f.ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	c, _ := f.d.InspectContainer(f.ctx, id)
	if took := time.Since(start); took > 10*time.Second || c.State != rt.StateExited || c.ExitCode != 137 {
		t.Fatalf("got state %s exit %d after %v, want killed (137) after the grace period", c.State, c.ExitCode, took)
	}
	if err := f.d.RemoveContainer(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.InspectContainer(f.ctx, id); !errors.Is(err, rt.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if err := f.d.RemoveContainer(f.ctx, id); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestImages(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		ref    string
		policy rt.PullPolicy
		want   error
	}{
		{name: "present image, IfNotPresent", ref: PauseImage, policy: rt.PullIfNotPresent},
		{name: "absent image, Never", ref: "orch/absent:never", policy: rt.PullNever, want: rt.ErrImageNeverPull},
		{name: "unreachable registry", ref: "127.0.0.1:9/orch/nope:1", policy: rt.PullIfNotPresent, want: rt.ErrImagePull},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.d.EnsureImage(f.ctx, tc.ref, tc.policy, nil)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == rt.ErrImagePull && !strings.Contains(err.Error(), "127.0.0.1:9") {
				t.Fatalf("got %q, want the registry's message naming it", err)
			}
		})
	}
	auth := []rt.RegistryAuth{{Server: "https://registry.example.com", Username: "u"}, {Server: "localhost:5000", Username: "l"}}
	for ref, want := range map[string]string{"registry.example.com/app:1": "u", "localhost:5000/x": "l", "nginx": ""} {
		a, ok := authFor(ref, auth)
		if a.Username != want || ok != (want != "") {
			t.Errorf("authFor(%s): got %q %v, want %q", ref, a.Username, ok, want)
		}
	}
}

func TestNetwork(t *testing.T) {
	f := newFixture(t)
	name := "orch-test-" + f.node
	subnet := "10.199.77.0/24"
	gw, err := SubnetGateway(subnet)
	if err != nil || gw != "10.199.77.1" {
		t.Fatalf("got gateway %s %v, want 10.199.77.1", gw, err)
	}
	t.Cleanup(func() {
		// Cleanups run last first: the sandbox must go before its network.
		if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+rt.LabelNode+"="+f.node).Output(); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run() // CleanupDocker retries
		}
		if out, err := exec.Command("docker", "network", "rm", name).CombinedOutput(); err != nil {
			t.Errorf("remove network: %v %s", err, out)
		}
	})
	if err := f.d.EnsureNetwork(f.ctx, name, subnet, gw); err != nil {
		t.Fatal(err)
	}
	if err := f.d.EnsureNetwork(f.ctx, name, subnet, gw); err != nil {
		t.Fatalf("second EnsureNetwork: %v", err)
	}
	if err := f.d.EnsureNetwork(f.ctx, name, "10.199.78.0/24", "10.199.78.1"); err == nil {
		t.Fatal("got no error for a network with another subnet")
	}
	sb, err := f.d.RunSandbox(f.ctx, rt.SandboxSpec{Labels: f.labels("net", "", rt.RoleSandbox), Hostname: "net", Network: name})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(sb.IP)
	if err != nil || !netip.MustParsePrefix(subnet).Contains(ip) {
		t.Fatalf("got sandbox IP %q, want one in %s", sb.IP, subnet)
	}
}
