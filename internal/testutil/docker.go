package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// RequireDocker makes sure Docker Engine answers. Under CI (CI set) a
// missing engine fails the test: the integration tests must run there.
// Elsewhere the test is skipped with the reason.
func RequireDocker(t testing.TB) {
	t.Helper()
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("Docker Engine is not reachable (%v: %s)", err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; the Docker integration tests must run under CI")
	}
	t.Skip(msg)
}

// RepoRoot finds the module root from the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

var (
	helloOnce sync.Once
	helloErr  error
)

// HelloImage is the example image the tests run.
const HelloImage = "orch/hello:dev"

// BuildHelloImage builds orch/hello:dev from examples/images/hello, once per
// test process, the way `make images` does: a static binary in an image
// from scratch. Test processes building it at once take turns.
func BuildHelloImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	helloOnce.Do(func() { helloErr = buildHello(RepoRoot(t)) })
	if helloErr != nil {
		t.Fatal(helloErr)
	}
	return HelloImage
}

func buildHello(root string) error {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "orch-hello-image.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "orch-hello-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "hello"), "./examples/images/hello")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build hello: %v: %s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(root, "examples/images/hello/Dockerfile"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("docker", "build", "-q", "-t", HelloImage, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("docker build %s: %v: %s", HelloImage, err, out)
	}
	return nil
}

// CleanupDocker removes, when the test ends, every container and network
// that carries the label key=value.
func CleanupDocker(t testing.TB, key, value string) {
	t.Helper()
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+key+"="+value).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			if b, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
				t.Logf("cleanup containers: %v: %s", err, b)
			}
		}
		out, _ = exec.Command("docker", "network", "ls", "-q", "--filter", "label="+key+"="+value).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			if b, err := exec.Command("docker", append([]string{"network", "rm"}, ids...)...).CombinedOutput(); err != nil {
				t.Logf("cleanup networks: %v: %s", err, b)
			}
		}
	})
}

var (
	imagesOnce sync.Once
	imagesErr  error
)

// EnsureImages makes sure orch/hello:dev and orch/busybox:dev exist,
// building them with scripts/images.sh (as `make images` does) if not.
func EnsureImages(t testing.TB) {
	t.Helper()
	RequireDocker(t)
	imagesOnce.Do(func() {
		have := func(ref string) bool { return exec.Command("docker", "image", "inspect", ref).Run() == nil }
		if have(HelloImage) && have(BusyboxImage) {
			return
		}
		cmd := exec.Command("scripts/images.sh")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			imagesErr = fmt.Errorf("scripts/images.sh: %v: %s", err, out)
		}
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
}

// BusyboxImage is the shell image the tests run.
const BusyboxImage = "orch/busybox:dev"
