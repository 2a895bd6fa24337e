package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// shellPod is a pod of one busybox container running script.
func shellPod(name, script string) *corev1.Pod {
	return helloPod(name, corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", script}})
}

// execOut runs a command in a pod's container through orchctl exec.
func (nc *nodeCluster) execOut(t *testing.T, pod, container string, cmd ...string) (string, int) {
	t.Helper()
	args := append([]string{"exec", pod, "-c", container, "--"}, cmd...)
	return ctlOut(t, nc.kc, "", 30*time.Second, args...)
}

// waitLogs waits until a container's logs hold every one of want.
func (nc *nodeCluster) waitLogs(t *testing.T, pod, container string, want ...string) string {
	t.Helper()
	var out string
	testutil.Eventually(t, 30*time.Second, func() string {
		out, _ = ctlOut(t, nc.kc, "", 30*time.Second, "logs", pod, "-c", container)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return "logs of " + pod + " lack " + w + ": " + out
			}
		}
		return ""
	})
	return out
}

func waitingReason(p *corev1.Pod) (string, string) {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil {
			return c.State.Waiting.Reason, c.State.Waiting.Message
		}
	}
	return "", ""
}

func TestConfigAndVolumes(t *testing.T) {
	nc := startNodes(t, 1)
	ctx := context.Background()
	cms, secs := nc.cs.CoreV1().ConfigMaps("default"), nc.cs.CoreV1().Secrets("default")
	mustCreateCM := func(t *testing.T, name string, data map[string]string) {
		t.Helper()
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustCreateCM(t, "settings", map[string]string{"mode": "fast", "level": "3"})
	if _, err := secs.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "hunter2", "user": "admin"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("env from ConfigMap and Secret keys, envFrom with prefix, downward API", func(t *testing.T) {
		p := shellPod("envs", "env; sleep 3600")
		p.Labels = map[string]string{"app": "envs"}
		c := &p.Spec.Containers[0]
		c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
		c.Env = []corev1.EnvVar{
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
			{Name: "MISSING_OK", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "x", Optional: ptr.To(true)}}},
			{Name: "MY_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "MY_APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "MY_NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		}
		nc.createPod(t, p)
		nc.waitPod(t, "default", "envs", 60*time.Second, phaseIs(corev1.PodRunning))
		out := nc.waitLogs(t, "envs", "app", "MODE=fast", "DB_PASSWORD=hunter2", "CFG_mode=fast", "CFG_level=3",
			"MY_NAME=envs", "MY_APP=envs", "MY_NODE="+nc.agents[0].name)
		if strings.Contains(out, "MISSING_OK") {
			t.Fatalf("got MISSING_OK in the environment, want an optional missing key left out")
		}
	})

	t.Run("volumes: configMap, secret, downwardAPI and projected", func(t *testing.T) {
		p := shellPod("vols", "sleep 3600")
		p.Labels = map[string]string{"app": "vols", "tier": "web"}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db", Items: []corev1.KeyToPath{{Key: "password", Path: "pw", Mode: ptr.To(int32(0o400))}}}}},
			{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			}}}},
			{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Items: []corev1.KeyToPath{{Key: "level", Path: "level"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Items: []corev1.KeyToPath{{Key: "user", Path: "user"}}}},
			}}}},
		}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
			{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "sec", MountPath: "/etc/sec"},
			{Name: "info", MountPath: "/etc/info"}, {Name: "all", MountPath: "/etc/all"},
			{Name: "cfg", MountPath: "/etc/mode", SubPath: "mode"},
		}
		nc.createPod(t, p)
		nc.waitPod(t, "default", "vols", 60*time.Second, phaseIs(corev1.PodRunning))
		for _, tc := range []struct{ cmd, want string }{
			{"cat /etc/cfg/mode /etc/cfg/level", "fast3"},
			{"cat /etc/sec/pw; stat -c %a /etc/sec/..data/pw", "hunter2400"},
			{"cat /etc/info/labels", "app=\"vols\"\ntier=\"web\""},
			{"cat /etc/info/name", "vols"},
			{"cat /etc/all/level /etc/all/user", "3admin"},
			{"cat /etc/mode", "fast"},
			{"touch /etc/cfg/x 2>/dev/null && echo writable || echo read-only", "read-only\n"},
		} {
			out, code := nc.execOut(t, "vols", "app", "sh", "-c", tc.cmd)
			if code != 0 || strings.TrimSuffix(out, "\n") != strings.TrimSuffix(tc.want, "\n") {
				t.Fatalf("%s: got %d %q, want %q", tc.cmd, code, out, tc.want)
			}
		}

		// An edited ConfigMap shows inside the container within 15 s;
		// the subPath mount keeps the old content, as in Kubernetes.
		cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["mode"] = "slow"
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 15*time.Second, func() string {
			out, _ := nc.execOut(t, "vols", "app", "cat", "/etc/cfg/mode")
			if out != "slow" {
				return "/etc/cfg/mode is " + out + ", want slow"
			}
			return ""
		})
		if out, _ := nc.execOut(t, "vols", "app", "cat", "/etc/mode"); out != "fast" {
			t.Fatalf("subPath mount: got %q, want the content it was mounted with (fast)", out)
		}
	})

	t.Run("a missing ConfigMap holds the pod until it exists", func(t *testing.T) {
		p := shellPod("late-env", "echo LATE=$LATE; sleep 3600")
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LATE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, Key: "k"}}}}
		nc.createPod(t, p)
		q := shellPod("late-vol", "cat /etc/cfg/k; echo; sleep 3600")
		q.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}}
		q.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}
		nc.createPod(t, q)
		nc.waitPod(t, "default", "late-env", 60*time.Second, func(p *corev1.Pod) string {
			if r, m := waitingReason(p); r != "CreateContainerConfigError" || m != `configmap "app-config" not found` {
				return "late-env: " + containerStates(p)
			}
			return ""
		})
		nc.waitPod(t, "default", "late-vol", 60*time.Second, func(p *corev1.Pod) string {
			if r, _ := waitingReason(p); r != "ContainerCreating" {
				return "late-vol: " + containerStates(p)
			}
			return ""
		})
		testutil.Eventually(t, 30*time.Second, func() string {
			evs, err := nc.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=late-vol"})
			if err != nil {
				return err.Error()
			}
			for _, e := range evs.Items {
				if e.Reason == "FailedMount" && e.Message == `MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found` {
					return ""
				}
			}
			return "no FailedMount event for late-vol yet"
		})
		mustCreateCM(t, "app-config", map[string]string{"k": "arrived"})
		nc.waitPod(t, "default", "late-env", 30*time.Second, phaseIs(corev1.PodRunning))
		nc.waitPod(t, "default", "late-vol", 30*time.Second, phaseIs(corev1.PodRunning))
		nc.waitLogs(t, "late-env", "app", "LATE=arrived")
		nc.waitLogs(t, "late-vol", "app", "arrived")
	})

	t.Run("emptyDir is shared by the containers of a pod and goes with it", func(t *testing.T) {
		p := helloPod("shared",
			corev1.Container{Name: "writer", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "echo in-memory > /mem/note; echo from-writer > /data/msg; sleep 3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "mem", MountPath: "/mem"}}},
			corev1.Container{Name: "reader", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "until [ -f /in/msg ]; do sleep 0.2; done; cat /in/msg; sleep 3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/in", ReadOnly: true}, {Name: "mem", MountPath: "/mem"}}})
		p.Spec.Volumes = []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("8Mi"))}}},
		}
		created := nc.createPod(t, p)
		nc.waitPod(t, "default", "shared", 60*time.Second, phaseIs(corev1.PodRunning))
		nc.waitLogs(t, "shared", "reader", "from-writer")
		if out, _ := nc.execOut(t, "shared", "reader", "sh", "-c", "grep ' /mem ' /proc/mounts | cut -d' ' -f3"); strings.TrimSpace(out) != "tmpfs" {
			t.Fatalf("medium Memory: got filesystem %q, want tmpfs", out)
		}
		if out, _ := nc.execOut(t, "shared", "reader", "cat", "/mem/note"); strings.TrimSpace(out) != "in-memory" {
			t.Fatalf("medium Memory: the reader sees %q in the writer's tmpfs, want in-memory", out)
		}
		if out, _ := nc.execOut(t, "shared", "reader", "sh", "-c", "df -k /mem | tail -1 | awk '{print $2}'"); strings.TrimSpace(out) != "8192" {
			t.Fatalf("medium Memory with sizeLimit 8Mi: got %q KiB, want 8192", out)
		}
		if out, _ := nc.execOut(t, "shared", "reader", "sh", "-c", "touch /in/x 2>/dev/null && echo writable || echo read-only"); strings.TrimSpace(out) != "read-only" {
			t.Fatalf("readOnly mount: got %q, want read-only", out)
		}
		dir := filepath.Join(nc.agents[0].dir, "pods", string(created.UID))
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("got %v, want the pod's volume directory on the host", err)
		}
		if err := nc.cs.CoreV1().Pods("default").Delete(ctx, "shared", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 60*time.Second, func() string {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				return "the pod's volume directory is still there"
			}
			return ""
		})
	})

	t.Run("an emptyDir over its sizeLimit evicts the pod", func(t *testing.T) {
		p := helloPod("spill", corev1.Container{Name: "writer", Image: testutil.BusyboxImage,
			Command:      []string{"sh", "-c", "dd if=/dev/zero of=/scratch/fill bs=1024 count=2048; sleep 3600"},
			VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}})
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Mi"))}}}}
		nc.createPod(t, p)
		got := nc.waitPod(t, "default", "spill", 60*time.Second, func(p *corev1.Pod) string {
			if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" {
				return fmt.Sprintf("phase %q reason %q, want Failed Evicted", p.Status.Phase, p.Status.Reason)
			}
			return ""
		})
		if want := `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". `; got.Status.Message != want {
			t.Fatalf("message %q, want %q", got.Status.Message, want)
		}
		if cs := got.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil {
			t.Fatalf("container statuses %+v, want the writer terminated", cs)
		}
	})

	t.Run("activeDeadlineSeconds fails the pod", func(t *testing.T) {
		p := helloPod("deadline", corev1.Container{Name: "sleeper", Image: testutil.BusyboxImage, Command: []string{"sleep", "3600"}})
		p.Spec.ActiveDeadlineSeconds = ptr.To(int64(2))
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
		nc.createPod(t, p)
		nc.waitPod(t, "default", "deadline", 60*time.Second, func(p *corev1.Pod) string {
			if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "DeadlineExceeded" {
				return fmt.Sprintf("phase %q reason %q, want Failed DeadlineExceeded", p.Status.Phase, p.Status.Reason)
			}
			if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil {
				return fmt.Sprintf("container statuses %+v, want the sleeper terminated", cs)
			}
			return ""
		})
	})

	t.Run("hostPath", func(t *testing.T) {
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := shellPod("hostpath", "cat /host/in; echo; echo from-pod > /host/out; sleep 3600")
		p.Spec.Volumes = []corev1.Volume{
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: ptr.To(corev1.HostPathDirectory)}}},
		}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
		nc.createPod(t, p)
		nc.waitLogs(t, "hostpath", "app", "from-host")
		testutil.Eventually(t, 30*time.Second, func() string {
			if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "from-pod\n" {
				return "the pod has not written to the host directory yet"
			}
			return ""
		})

		bad := shellPod("hostpath-bad", "sleep 3600")
		bad.Spec.Volumes = []corev1.Volume{
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(host, "in"), Type: ptr.To(corev1.HostPathDirectory)}}},
		}
		bad.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
		nc.createPod(t, bad)
		nc.waitPod(t, "default", "hostpath-bad", 60*time.Second, func(p *corev1.Pod) string {
			if r, m := waitingReason(p); r != "ContainerCreating" || !strings.Contains(m, "is not a directory") {
				return "hostpath-bad: " + containerStates(p)
			}
			return ""
		})
	})
}
