package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
	rt "orch.dev/orch/node/runtime"
)

func TestPodFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(*corev1.Pod)
		act    func(t *testing.T, h *healthAgent, pod *corev1.Pod)
		reason string
		msg    string
		stop   string // the stop call the runtime must see
	}{
		{name: "activeDeadlineSeconds fails the pod with the pod's grace period",
			setup:  func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(1)) },
			reason: "DeadlineExceeded", msg: "Pod was active on the node longer than the specified deadline",
			stop: "stop app grace=20s"},
		{name: "an emptyDir over its sizeLimit evicts the pod at once",
			setup: func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{
					EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("16Ki"))}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
			},
			act: func(t *testing.T, h *healthAgent, pod *corev1.Pod) {
				dir := h.volumes.volumeDir(pod.UID, pluginEmptyDir, "scratch")
				testutil.Eventually(t, 10*time.Second, func() string {
					if _, err := os.Stat(dir); err != nil {
						return err.Error()
					}
					return ""
				})
				// Within the limit first: the pod keeps running.
				if err := os.WriteFile(filepath.Join(dir, "small"), []byte("ok"), 0o644); err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * h.usageCheck) // a few checks must pass without failing the pod
				if p := h.pod(t, pod); p.Status.Phase == corev1.PodFailed {
					t.Fatalf("failed within the limit: %s", p.Status.Message)
				}
				if err := os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 64<<10), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			reason: "Evicted", msg: `Usage of EmptyDir volume "scratch" exceeds the limit "16Ki". `,
			stop: "stop app grace=0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := probedPod(corev1.Container{})
			tc.setup(pod)
			h := startHealthAgent(t, pod)
			h.usageCheck = 100 * time.Millisecond
			h.start()
			testutil.Eventually(t, 10*time.Second, func() string {
				if p := h.pod(t, pod); p.Status.Phase != corev1.PodRunning {
					return fmt.Sprintf("phase %q, want Running", p.Status.Phase)
				}
				return ""
			})
			if tc.act != nil {
				tc.act(t, h, pod)
			}
			var events []string
			testutil.Eventually(t, 15*time.Second, func() string {
				p := h.pod(t, pod)
				if p.Status.Phase != corev1.PodFailed || p.Status.Reason != tc.reason || p.Status.Message != tc.msg {
					return fmt.Sprintf("phase %q reason %q message %q, want Failed %q %q", p.Status.Phase, p.Status.Reason, p.Status.Message, tc.reason, tc.msg)
				}
				if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
					return fmt.Sprintf("container statuses %+v, want the container terminated", p.Status.ContainerStatuses)
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status != corev1.ConditionFalse {
						return "the failed pod is still Ready"
					}
				}
				return containsAll(h.eventsSoFar(&events), "Warning "+tc.reason+" "+tc.msg)
			})
			if msg := containsAll(h.rt.callLog(), tc.stop); msg != "" {
				t.Fatal(msg)
			}
			// A failed pod stays down: nothing starts again.
			starts := func() int {
				n := 0
				for _, c := range h.rt.callLog() {
					if c == "start app" {
						n++
					}
				}
				return n
			}
			before := starts()
			h.podChanged(h.pod(t, pod))
			time.Sleep(500 * time.Millisecond) // a few resyncs (every 200ms) must not start the container
			if after := starts(); after != before {
				t.Fatalf("the container started %d more times after the pod failed", after-before)
			}
			h.rt.mu.Lock()
			defer h.rt.mu.Unlock()
			for _, c := range h.rt.cs {
				if c.Labels[rt.LabelRole] == rt.RoleSandbox && c.State == rt.StateRunning {
					t.Fatal("the sandbox of a failed pod is still running")
				}
			}
		})
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if n, err := diskUsage(filepath.Join(dir, "missing")); err != nil || n != 0 {
		t.Fatalf("a missing directory measured %d, %v; want 0 (nothing written yet)", n, err)
	}
	empty, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), bytes.Repeat([]byte("x"), 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if one-empty < 100<<10 {
		t.Fatalf("a 100 KiB file adds %d bytes, want at least 100 KiB", one-empty)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	linked, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if linked != one {
		t.Fatalf("a second link changed the usage from %d to %d", one, linked)
	}
}
