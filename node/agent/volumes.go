package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	rt "orch.dev/orch/node/runtime"
)

// hostVolume is a pod volume as it exists on the host, ready to be
// mounted into the pod's containers.
type hostVolume struct {
	// path is the host directory (or file) bound into containers; empty
	// for a tmpfs.
	path string
	// projected volumes (configMap, secret, downwardAPI, projected) are
	// always mounted read-only and are kept up to date by the agent.
	projected bool
	// writable volumes (emptyDir, hostPath) get missing subPaths made.
	writable bool
	// readOnly volumes (a claim mounted readOnly) are mounted read-only
	// in every container.
	readOnly bool
}

// Directory names per volume kind under <data-dir>/pods/<uid>/volumes,
// as the kubelet names its plugins.
const (
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"
	pluginEmptyDir    = "kubernetes.io~empty-dir"
)

// volumeManager materialises pods' volumes under the agent's data dir:
// <root>/<pod uid>/volumes/<plugin>/<volume>. Each pod worker sets up its
// pod's volumes at every sync, so projected volumes follow their sources;
// the directory goes with the pod.
type volumeManager struct {
	root string

	mu       sync.Mutex
	pods     map[types.UID]map[string]hostVolume
	warned   map[types.UID]map[string]bool      // warnings already sent per pod
	failSent map[types.UID]map[string]time.Time // FailedMount messages per pod, when last sent
	// configs finds ConfigMaps and Secrets (the agent's informer caches,
	// once they run); alloc is the node's allocatable.
	configs configLookup
	alloc   corev1.ResourceList
	// claims finds PersistentVolumeClaims and PersistentVolumes (nil
	// until the agent watches them); nodeName is this node's name.
	claims   claimLookup
	nodeName string
	// persistentRoot holds the local provisioner's volumes:
	// <data-dir>/volumes/<volume name>.
	persistentRoot string
}

func newVolumeManager(dataDir string) *volumeManager {
	return &volumeManager{
		root: filepath.Join(dataDir, "pods"), persistentRoot: filepath.Join(dataDir, persistentDirName),
		pods:   map[types.UID]map[string]hostVolume{},
		warned: map[types.UID]map[string]bool{}, failSent: map[types.UID]map[string]time.Time{},
	}
}

// failuresToReport returns the failure messages not sent in the last
// minute, and remembers them as sent now.
func (m *volumeManager) failuresToReport(uid types.UID, failed []string, now time.Time) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(failed) == 0 {
		delete(m.failSent, uid)
		return nil
	}
	sent := m.failSent[uid]
	if sent == nil {
		sent = map[string]time.Time{}
		m.failSent[uid] = sent
	}
	var out []string
	for _, msg := range failed {
		if last, ok := sent[msg]; !ok || now.Sub(last) >= time.Minute {
			sent[msg] = now
			out = append(out, msg)
		}
	}
	return out
}

func (m *volumeManager) podDir(uid types.UID) string { return filepath.Join(m.root, string(uid)) }

func (m *volumeManager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.podDir(uid), "volumes", plugin, name)
}

// volumeSetup is the result of setting up a pod's volumes: what can be
// mounted, the volumes that failed (one message each, Kubernetes'
// FailedMount text), and warnings to record once.
type volumeSetup struct {
	volumes  map[string]hostVolume
	failed   []string
	warnings []string
}

// setUp makes every volume of the pod exist on the host, and updates the
// projected ones to their sources. A projected volume that was written
// before keeps its content when its source goes missing (the failure is
// still reported), so running containers are not disturbed.
func (m *volumeManager) setUp(pod *corev1.Pod, configs configLookup, allocatable corev1.ResourceList) volumeSetup {
	res := volumeSetup{volumes: map[string]hostVolume{}}
	m.mu.Lock()
	prev := m.pods[pod.UID]
	m.mu.Unlock()
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		hv, warns, err := m.setUpVolume(pod, v, configs, allocatable)
		res.warnings = append(res.warnings, warns...)
		if err != nil {
			res.failed = append(res.failed, fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", v.Name, err))
			// A volume set up before (by this agent, or before it
			// restarted) stays mountable with what it holds.
			if old, ok := prev[v.Name]; ok {
				hv = old
			} else if hv.path == "" || !hv.projected || !hasData(hv.path) {
				continue
			}
		}
		res.volumes[v.Name] = hv
	}
	m.mu.Lock()
	m.pods[pod.UID] = res.volumes
	seen := m.warned[pod.UID]
	if seen == nil {
		seen = map[string]bool{}
		m.warned[pod.UID] = seen
	}
	var fresh []string
	for _, w := range res.warnings {
		if !seen[w] {
			seen[w] = true
			fresh = append(fresh, w)
		}
	}
	res.warnings = fresh
	m.mu.Unlock()
	return res
}

// hasData reports whether a projected volume was written before.
func hasData(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, dataDirName))
	return err == nil
}

func (m *volumeManager) setUpVolume(pod *corev1.Pod, v *corev1.Volume, configs configLookup, allocatable corev1.ResourceList) (hostVolume, []string, error) {
	project := func(plugin string, payload map[string]fileProjection, err error) (hostVolume, error) {
		hv := hostVolume{path: m.volumeDir(pod.UID, plugin, v.Name), projected: true}
		if err != nil {
			return hv, err
		}
		// Secrets are kept in memory, never on the node's disk; a volume an
		// older agent wrote on disk stays there for the pod's life, since
		// its running containers hold that directory.
		if hasSecret(v) && !onDiskAlready(hv.path) {
			if err := mountTmpfs(hv.path, 0, 0o755); err != nil {
				return hv, err
			}
		}
		if _, err := writeAtomic(hv.path, payload); err != nil {
			return hv, fmt.Errorf("write volume files: %w", err)
		}
		return hv, nil
	}
	switch {
	case v.ConfigMap != nil:
		payload, err := configMapPayload(pod.Namespace, v.ConfigMap, configs)
		hv, err := project(pluginConfigMap, payload, err)
		return hv, nil, err
	case v.Secret != nil:
		payload, err := secretPayload(pod.Namespace, v.Secret, configs)
		hv, err := project(pluginSecret, payload, err)
		return hv, nil, err
	case v.DownwardAPI != nil:
		payload, err := downwardAPIPayload(pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode, corev1.DownwardAPIVolumeSourceDefaultMode), allocatable)
		hv, err := project(pluginDownwardAPI, payload, err)
		return hv, nil, err
	case v.Projected != nil:
		payload, warns, err := projectedPayload(pod, v.Name, v.Projected, configs, allocatable)
		hv, err := project(pluginProjected, payload, err)
		return hv, warns, err
	case v.EmptyDir != nil:
		switch v.EmptyDir.Medium {
		case corev1.StorageMediumDefault:
			dir := m.volumeDir(pod.UID, pluginEmptyDir, v.Name)
			if err := makeEmptyDir(dir); err != nil {
				return hostVolume{}, nil, err
			}
			return hostVolume{path: dir, writable: true}, nil, nil
		case corev1.StorageMediumMemory:
			// One tmpfs on the host per volume, bound into every container
			// that mounts it, so they share it as they share a disk one.
			dir := m.volumeDir(pod.UID, pluginEmptyDir, v.Name)
			var size int64
			if v.EmptyDir.SizeLimit != nil {
				size = v.EmptyDir.SizeLimit.Value()
			}
			if err := mountTmpfs(dir, size, 0o777); err != nil {
				return hostVolume{}, nil, err
			}
			return hostVolume{path: dir, writable: true}, nil, nil
		default:
			return hostVolume{}, nil, fmt.Errorf("emptyDir medium %q is not supported by this node agent", v.EmptyDir.Medium)
		}
	case v.HostPath != nil:
		typ := corev1.HostPathUnset
		if v.HostPath.Type != nil {
			typ = *v.HostPath.Type
		}
		if err := checkHostPath(v.HostPath.Path, typ); err != nil {
			return hostVolume{}, nil, err
		}
		return hostVolume{path: v.HostPath.Path, writable: true}, nil, nil
	case v.PersistentVolumeClaim != nil:
		hv, err := m.claimVolume(pod.Namespace, v.PersistentVolumeClaim)
		return hv, nil, err
	}
	return hostVolume{}, nil, fmt.Errorf("this volume type is not supported by this node agent")
}

// makeEmptyDir makes an emptyDir's directory, world-writable as
// Kubernetes makes it, so containers running as any user can share it.
func makeEmptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	return os.Chmod(dir, 0o777)
}

func modeOr(m *int32, def int32) fs.FileMode {
	if m != nil {
		return fs.FileMode(*m)
	}
	return fs.FileMode(def)
}

// checkHostPath checks a hostPath volume's path against its type, making
// the directory or file the *OrCreate types ask for. An unset type makes a
// missing path a directory, as container runtimes do.
func checkHostPath(path string, typ corev1.HostPathType) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hostPath %q must be an absolute path", path)
	}
	st, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath type check failed: %v", err)
	}
	notA := func(what string) error { return fmt.Errorf("hostPath type check failed: %s is not %s", path, what) }
	switch typ {
	case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath: create directory %s: %v", path, err)
			}
			return nil
		}
		if typ == corev1.HostPathDirectoryOrCreate && !st.IsDir() {
			return notA("a directory")
		}
	case corev1.HostPathDirectory:
		if !exists || !st.IsDir() {
			return notA("a directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("hostPath: create file %s: %v", path, err)
			}
			if f != nil {
				return f.Close()
			}
			return nil
		}
		if !st.Mode().IsRegular() {
			return notA("a file")
		}
	case corev1.HostPathFile:
		if !exists || !st.Mode().IsRegular() {
			return notA("a file")
		}
	case corev1.HostPathSocket:
		if !exists || st.Mode()&fs.ModeSocket == 0 {
			return notA("a socket file")
		}
	case corev1.HostPathCharDev:
		if !exists || st.Mode()&fs.ModeCharDevice == 0 || st.Mode()&fs.ModeDevice == 0 {
			return notA("a character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
			return notA("a block device")
		}
	default:
		return fmt.Errorf("hostPath type %q is not supported", typ)
	}
	return nil
}

// mountsFor turns a container's volumeMounts into engine mounts over the
// pod's set-up volumes. env resolves subPathExpr. Projected volumes are
// always read-only; a subPath is resolved on the host and must stay inside
// its volume (a file of a projected volume mounted by subPath is the
// version of the moment: it does not follow updates, as in Kubernetes).
func mountsFor(c *corev1.Container, vols map[string]hostVolume, env map[string]string) ([]rt.Mount, error) {
	var out []rt.Mount
	for _, vm := range c.VolumeMounts {
		hv, ok := vols[vm.Name]
		if !ok {
			return nil, containerConfigError(fmt.Sprintf("volumeMount %q: volume %q is not set up", vm.MountPath, vm.Name))
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, env)
		}
		src := hv.path
		if sub != "" {
			var err error
			if src, err = subPathSource(hv, sub); err != nil {
				return nil, containerConfigError(fmt.Sprintf("failed to prepare subPath for volumeMount %q of container %q: %v", vm.Name, c.Name, err))
			}
		}
		out = append(out, rt.Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly || hv.projected || hv.readOnly})
	}
	return out, nil
}

func subPathSource(hv hostVolume, sub string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must be relative", sub)
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return "", fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	root, err := filepath.EvalSymlinks(hv.path)
	if err != nil {
		return "", err
	}
	full := filepath.Join(hv.path, sub)
	if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
		if !hv.writable {
			return "", fmt.Errorf("subPath %q does not exist in the volume", sub)
		}
		if err := os.MkdirAll(full, 0o755); err != nil {
			return "", err
		}
	}
	// A container may have put symlinks into a writable volume: the
	// resolved path must still be inside the volume.
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", err
	}
	if resolved != root && !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q leaves the volume", sub)
	}
	return resolved, nil
}

// tearDown removes a pod's volumes from the host once its containers are
// gone.
func (m *volumeManager) tearDown(uid types.UID) error {
	m.mu.Lock()
	delete(m.pods, uid)
	delete(m.warned, uid)
	delete(m.failSent, uid)
	m.mu.Unlock()
	return removePodDir(m.podDir(uid))
}

// removePodDir removes a pod's directory, first unmounting the tmpfs of
// its memory-backed emptyDirs.
func removePodDir(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func (m *volumeManager) volumesOf(uid types.UID) (map[string]hostVolume, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.pods[uid]
	return v, ok
}

// movedAsidePrefix marks pod directories being removed.
const movedAsidePrefix = ".removing-"

// moveAside renames a gone pod's directory out of the way, so a new worker
// of the same UID starts afresh while the old one is removed.
func (m *volumeManager) moveAside(uid types.UID) error {
	m.mu.Lock()
	delete(m.pods, uid)
	delete(m.warned, uid)
	delete(m.failSent, uid)
	m.mu.Unlock()
	return os.Rename(m.podDir(uid), filepath.Join(m.root, movedAsidePrefix+string(uid)))
}

func (m *volumeManager) removeMovedAside() error {
	entries, err := os.ReadDir(m.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), movedAsidePrefix) {
			errs = append(errs, removePodDir(filepath.Join(m.root, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// podDirs lists the pod UIDs that have a directory.
func (m *volumeManager) podDirs() ([]types.UID, error) {
	entries, err := os.ReadDir(m.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []types.UID
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// The agent's side: volumes in the pod worker's sync and container specs.

// setUpVolumes sets up the pod's volumes before its sandbox and containers
// start. It reports false (and the pod's waiting status) when a volume
// the containers need could not be made; the worker then looks again
// after the returned wait or when a ConfigMap or Secret changes.
func (w *podWorker) setUpVolumes(ctx context.Context, pod *corev1.Pod, view podView) (bool, time.Duration) {
	a := w.a
	var alloc corev1.ResourceList
	if usesResourceFieldRefs(pod) {
		alloc = a.allocatable(ctx)
	}
	res := a.volumes.setUp(pod, a.lookups(), alloc)
	for _, msg := range res.warnings {
		a.event(pod, corev1.EventTypeWarning, "VolumeSourceSkipped", "%s", msg)
	}
	for _, msg := range a.volumes.failuresToReport(pod.UID, res.failed, a.now()) {
		a.event(pod, corev1.EventTypeWarning, "FailedMount", "%s", msg)
	}
	for _, v := range pod.Spec.Volumes {
		if _, ok := res.volumes[v.Name]; !ok {
			w.report(pod, w.waitingView(pod, view, "ContainerCreating", res.failed[0]))
			return false, 5 * time.Second
		}
	}
	return true, 0
}

// containerConfig is a container's engine spec: containerSpec with the
// pod's ConfigMaps and Secrets, the node's allocatable and the volume
// mounts.
func (a *Agent) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, role string, attempt int, sandboxID, podIP string) (rt.ContainerSpec, error) {
	var alloc corev1.ResourceList
	if usesResourceFieldRefs(pod) {
		alloc = a.allocatable(ctx)
	}
	ec := envContext{
		podIP: podIP, hostIP: a.cfg.NodeIP, configs: a.lookups(), allocatable: alloc,
		skipped: func(kind, ns, name string, keys []string) {
			a.event(pod, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames",
				"Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.", strings.Join(keys, ", "), kind, ns, name)
		},
	}
	spec, err := containerSpec(pod, c, role, attempt, sandboxID, a.cfg.Name, ec)
	if err != nil {
		return spec, err
	}
	if len(c.VolumeMounts) > 0 {
		vols, _ := a.volumes.volumesOf(pod.UID)
		env := make(map[string]string, len(spec.Env))
		for _, kv := range spec.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if spec.Mounts, err = mountsFor(c, vols, env); err != nil {
			return rt.ContainerSpec{}, err
		}
	}
	if m, ok := a.resolvConfMount(pod.UID); ok && !mountsAt(spec.Mounts, m.Target) {
		spec.Mounts = append(spec.Mounts, m)
	}
	return spec, nil
}

// usesResourceFieldRefs reports whether any env var or downward API file
// of the pod refers to a container's resources.
func usesResourceFieldRefs(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
					return true
				}
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		var items []corev1.DownwardAPIVolumeFile
		if v.DownwardAPI != nil {
			items = v.DownwardAPI.Items
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.DownwardAPI != nil {
					items = append(items, s.DownwardAPI.Items...)
				}
			}
		}
		for _, it := range items {
			if it.ResourceFieldRef != nil {
				return true
			}
		}
	}
	return false
}

// allocatable is the node's allocatable CPU and memory, which stand in for
// unset limits in resourceFieldRefs; the engine is asked once.
func (a *Agent) allocatable(ctx context.Context) corev1.ResourceList {
	m := a.volumes
	m.mu.Lock()
	alloc := m.alloc
	m.mu.Unlock()
	if alloc != nil {
		return alloc
	}
	info, err := a.rt.Info(ctx)
	if err != nil {
		a.log.Warn("engine info for resourceFieldRefs", "err", err)
		return nil
	}
	alloc = corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(info.CPUs), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(info.MemoryBytes, resource.BinarySI),
	}
	m.mu.Lock()
	m.alloc = alloc
	m.mu.Unlock()
	return alloc
}

// gcVolumes removes the volume directories of pods this agent has no
// worker for (deleted while it was down), now and every minute. It runs
// once the pod informer has synced, so every pod bound here has a worker.
func (a *Agent) gcVolumes(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		uids, err := a.volumes.podDirs()
		if err != nil {
			a.log.Warn("list pod volume directories", "err", err)
		}
		for _, uid := range uids {
			// Holding a.mu keeps a worker for this pod from starting (and
			// setting up its volumes) while the directory is moved aside;
			// the slow removal happens after.
			a.mu.Lock()
			_, live := a.workers[uid]
			var err error
			if !live {
				err = a.volumes.moveAside(uid)
			}
			a.mu.Unlock()
			if err != nil {
				a.log.Warn("remove volumes of a gone pod", "uid", uid, "err", err)
			}
		}
		if err := a.volumes.removeMovedAside(); err != nil {
			a.log.Warn("remove volumes of gone pods", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// mountsAt reports whether one of mounts is at target: a pod's own
// volume at /etc/resolv.conf wins over the generated file.
func mountsAt(mounts []rt.Mount, target string) bool {
	for _, m := range mounts {
		if filepath.Clean(m.Target) == target {
			return true
		}
	}
	return false
}

// hasSecret reports whether a volume holds Secret data: a secret volume,
// or a projected one with a secret source.
func hasSecret(v *corev1.Volume) bool {
	if v.Secret != nil {
		return true
	}
	if v.Projected != nil {
		for _, src := range v.Projected.Sources {
			if src.Secret != nil {
				return true
			}
		}
	}
	return false
}

// onDiskAlready reports whether dir holds files on the node's disk: it
// exists, is not a mount point of its own, and is not empty.
func onDiskAlready(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return false
	}
	mounted, err := isMountPoint(dir)
	return err == nil && !mounted
}
