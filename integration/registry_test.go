package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/internal/testutil"
)

const registryBinary = "/usr/bin/docker-registry"

// startRegistry runs Debian's docker-registry on a loopback port, with
// basic authentication (user orch, password secret), and returns its
// address.
func startRegistry(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		msg := "Debian's docker-registry is not installed (make test installs it; or apt-get install docker-registry)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("orch:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: orch-test
    path: %s
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBinary, "serve", filepath.Join(dir, "config.yml"))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // done with it
		_ = cmd.Wait()         // the kill is the expected exit
		logf.Close()
	})
	testutil.Eventually(t, 10*time.Second, func() string {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return "registry not up: " + err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Sprintf("registry answered %d, want 401 without credentials", resp.StatusCode)
		}
		return ""
	})
	return addr
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestPullFromLocalRegistry(t *testing.T) {
	nc := startNodes(t, 1)
	reg := startRegistry(t)
	image := reg + "/orch/hello:registry"
	cfg := t.TempDir()
	docker(t, "--config", cfg, "login", "-u", "orch", "-p", "secret", reg)
	docker(t, "tag", testutil.HelloImage, image)
	docker(t, "--config", cfg, "push", image)
	docker(t, "rmi", image)                                                    // the pod must pull it
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() }) // pulled by the test

	auth, err := json.Marshal(map[string]any{"auths": map[string]any{reg: map[string]string{"username": "orch", "password": "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: auth}}
	if _, err := nc.cs.CoreV1().Secrets("default").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("without credentials the registry's refusal shows", func(t *testing.T) {
		nc.createPod(t, helloPod("nocreds", corev1.Container{Name: "app", Image: image, ImagePullPolicy: corev1.PullAlways}))
		nc.waitPod(t, "default", "nocreds", 60*time.Second, func(p *corev1.Pod) string {
			for _, c := range p.Status.ContainerStatuses {
				if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && strings.Contains(strings.ToLower(w.Message), "auth") {
					return ""
				}
			}
			return "no pull error mentioning authentication yet: " + containerStates(p)
		})
	})

	t.Run("with imagePullSecrets the pull works", func(t *testing.T) {
		p := helloPod("withcreds", corev1.Container{Name: "app", Image: image, ImagePullPolicy: corev1.PullAlways})
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		nc.createPod(t, p)
		nc.waitPod(t, "default", "withcreds", 60*time.Second, phaseIs(corev1.PodRunning))
	})
}
