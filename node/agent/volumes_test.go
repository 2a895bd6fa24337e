package agent

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	rt "orch.dev/orch/node/runtime"
)

func TestDownwardAPIFormatting(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1",
			Labels:      map[string]string{"zone": "a", "app": "web"},
			Annotations: map[string]string{"note": "say \"hi\"\nbye"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
		Status: corev1.PodStatus{PodIP: "10.42.0.3"},
	}
	cases := []struct {
		path string
		item corev1.DownwardAPIVolumeFile
		want string
	}{
		{"labels", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}, "app=\"web\"\nzone=\"a\""},
		{"annotations", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}}, `note="say \"hi\"\nbye"`},
		{"one label", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['zone']"}}, "a"},
		{"name", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}, "web-1"},
		{"namespace", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}, "shop"},
		{"uid", corev1.DownwardAPIVolumeFile{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}, "u-1"},
		{"mem", corev1.DownwardAPIVolumeFile{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}, "64"},
		{"cpu", corev1.DownwardAPIVolumeFile{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu"}}, "2"},
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			tc.item.Path = tc.path
			payload, err := downwardAPIPayload(pod, []corev1.DownwardAPIVolumeFile{tc.item}, 0o644, alloc)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(payload[tc.path].Data); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("unknown container", func(t *testing.T) {
		_, err := downwardAPIPayload(pod, []corev1.DownwardAPIVolumeFile{{Path: "x", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}}}, 0o644, alloc)
		if err == nil {
			t.Fatal("got no error for a resourceFieldRef to an unknown container")
		}
	})
}

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	missing := func(name string) string { return filepath.Join(dir, name) }
	cases := []struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string
		check   func(t *testing.T, path string)
	}{
		{name: "unset makes a missing directory", path: missing("made"), typ: corev1.HostPathUnset, check: isDir},
		{name: "unset accepts a file", path: file, typ: corev1.HostPathUnset},
		{name: "DirectoryOrCreate makes it", path: missing("a/b"), typ: corev1.HostPathDirectoryOrCreate, check: isDir},
		{name: "DirectoryOrCreate refuses a file", path: file, typ: corev1.HostPathDirectoryOrCreate, wantErr: "hostPath type check failed: " + file + " is not a directory"},
		{name: "Directory", path: dir, typ: corev1.HostPathDirectory},
		{name: "Directory missing", path: missing("none"), typ: corev1.HostPathDirectory, wantErr: "hostPath type check failed: " + missing("none") + " is not a directory"},
		{name: "FileOrCreate makes it", path: missing("new-file"), typ: corev1.HostPathFileOrCreate, check: isFile},
		{name: "FileOrCreate refuses a directory", path: dir, typ: corev1.HostPathFileOrCreate, wantErr: "is not a file"},
		{name: "FileOrCreate needs the parent", path: missing("no/parent"), typ: corev1.HostPathFileOrCreate, wantErr: "no such file or directory"},
		{name: "File", path: file, typ: corev1.HostPathFile},
		{name: "File refuses a directory", path: dir, typ: corev1.HostPathFile, wantErr: "is not a file"},
		{name: "Socket", path: sock, typ: corev1.HostPathSocket},
		{name: "Socket refuses a file", path: file, typ: corev1.HostPathSocket, wantErr: "is not a socket file"},
		{name: "CharDevice", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "CharDevice refuses a file", path: file, typ: corev1.HostPathCharDev, wantErr: "is not a character device"},
		{name: "BlockDevice refuses a char device", path: "/dev/null", typ: corev1.HostPathBlockDev, wantErr: "is not a block device"},
		{name: "unknown type", path: dir, typ: "Pipe", wantErr: `hostPath type "Pipe" is not supported`},
		{name: "relative path", path: "rel", typ: corev1.HostPathUnset, wantErr: "must be an absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkHostPath(tc.path, tc.typ)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, tc.path)
			}
		})
	}
}

func isDir(t *testing.T, path string) {
	t.Helper()
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Fatalf("got %v, want a directory at %s", err, path)
	}
}

func isFile(t *testing.T, path string) {
	t.Helper()
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 {
		t.Fatalf("got %v, want a file with mode 0644 at %s", err, path)
	}
}

// volumePod is a pod with the volumes and one container mounting them.
func volumePod(vols []corev1.Volume, mounts []corev1.VolumeMount) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Volumes: vols, Containers: []corev1.Container{{Name: "app", VolumeMounts: mounts}}},
	}
}

// readVolume lists a set-up volume's visible files: path → mode and content.
func readVolume(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := filepath.Join(dir, dataDirName) + "/"
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%o:%s", st.Mode().Perm(), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVolumeSetUp(t *testing.T) {
	cmVol := func(name string, src corev1.ConfigMapVolumeSource) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &src}}
	}
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	cases := []struct {
		name       string
		vol        corev1.Volume
		wantFiles  map[string]string
		wantFailed string
		wantWarn   string
	}{
		{name: "configMap, all keys, default mode",
			vol:       cmVol("cfg", corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app")}),
			wantFiles: map[string]string{"1bad": "644:x", "has-dash": "644:y", "level": "644:3", "mode": "644:fast"}},
		{name: "configMap items with paths and modes",
			vol: cmVol("cfg", corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app"), DefaultMode: ptr.To(int32(0o600)),
				Items: []corev1.KeyToPath{{Key: "mode", Path: "conf/mode.txt"}, {Key: "level", Path: "level", Mode: ptr.To(int32(0o400))}}}),
			wantFiles: map[string]string{"conf/mode.txt": "600:fast", "level": "400:3"}},
		{name: "missing configMap",
			vol:        cmVol("cfg", corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app-config")}),
			wantFailed: `MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found`},
		{name: "optional missing configMap is empty",
			vol:       cmVol("cfg", corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app-config"), Optional: ptr.To(true)}),
			wantFiles: map[string]string{}},
		{name: "missing item key",
			vol:        cmVol("cfg", corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app"), Items: []corev1.KeyToPath{{Key: "nope", Path: "x"}}}),
			wantFailed: `MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: nope`},
		{name: "secret with default mode",
			vol:       corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
			wantFiles: map[string]string{"password": "644:s3cret-value", "user": "644:admin"}},
		{name: "missing secret key names the key",
			vol:        corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db", Items: []corev1.KeyToPath{{Key: "token", Path: "t"}}}}},
			wantFailed: `MountVolume.SetUp failed for volume "sec" : references non-existent secret key: token`},
		{name: "projected merges sources and skips service account tokens",
			vol: corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To(int32(0o440)), Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("app"), Items: []corev1.KeyToPath{{Key: "mode", Path: "mode"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("db"), Items: []corev1.KeyToPath{{Key: "user", Path: "db/user"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}},
			wantFiles: map[string]string{"mode": "440:fast", "db/user": "440:admin", "labels": `440:app="web"`},
			wantWarn:  `projected volume "all": serviceAccountToken sources are not supported by orch; token is left out`},
		{name: "persistentVolumeClaim waits with a clear message",
			vol:        corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc-1"}}},
			wantFailed: `MountVolume.SetUp failed for volume "data" : persistentvolumeclaim "pvc-1": the node agent is not watching claims yet`},
		{name: "unsupported kind",
			vol:        corev1.Volume{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/"}}},
			wantFailed: `MountVolume.SetUp failed for volume "n" : this volume type is not supported by this node agent`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newVolumeManager(t.TempDir())
			pod := volumePod([]corev1.Volume{tc.vol}, nil)
			res := m.setUp(pod, testConfigs(), nil)
			t.Cleanup(func() {
				if err := m.tearDown(pod.UID); err != nil {
					t.Error(err)
				}
			})
			if tc.wantFailed != "" {
				if len(res.failed) != 1 || res.failed[0] != tc.wantFailed {
					t.Fatalf("got failures %q, want %q", res.failed, tc.wantFailed)
				}
				if _, ok := res.volumes[tc.vol.Name]; ok {
					t.Fatal("got the volume set up, want it missing")
				}
				return
			}
			if len(res.failed) > 0 {
				t.Fatalf("got failures %q", res.failed)
			}
			if got := strings.Join(res.warnings, "; "); got != tc.wantWarn {
				t.Fatalf("got warnings %q, want %q", got, tc.wantWarn)
			}
			hv := res.volumes[tc.vol.Name]
			if !hv.projected {
				t.Fatalf("got %+v, want a projected (read-only) volume", hv)
			}
			if got := readVolume(t, hv.path); fmt.Sprint(got) != fmt.Sprint(tc.wantFiles) {
				t.Fatalf("got files %v, want %v", got, tc.wantFiles)
			}
			// Secret data stays in memory.
			var st unix.Statfs_t
			if err := unix.Statfs(hv.path, &st); err != nil {
				t.Fatal(err)
			}
			if onTmpfs := st.Type == unix.TMPFS_MAGIC; onTmpfs != hasSecret(&tc.vol) {
				t.Fatalf("volume on tmpfs: %v, want %v (holds a secret: %v)", onTmpfs, hasSecret(&tc.vol), hasSecret(&tc.vol))
			}
			// Warnings are sent once per pod.
			if again := m.setUp(pod, testConfigs(), nil); len(again.warnings) != 0 {
				t.Fatalf("got warnings again: %q", again.warnings)
			}
		})
	}
}

func TestVolumeUpdatesAndTearDown(t *testing.T) {
	m := newVolumeManager(t.TempDir())
	configs := testConfigs()
	pod := volumePod([]corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}, nil)
	res := m.setUp(pod, configs, nil)
	if len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	cfg, scratch := res.volumes["cfg"].path, res.volumes["scratch"].path
	if st, err := os.Stat(scratch); err != nil || st.Mode().Perm() != 0o777 {
		t.Fatalf("got %v, want an emptyDir with mode 0777", err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "data"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The ConfigMap changes: the files follow; emptyDir content stays.
	configs.cms["shop/app"] = &corev1.ConfigMap{Data: map[string]string{"mode": "slow"}}
	if res := m.setUp(pod, configs, nil); len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	if got := readVolume(t, cfg); fmt.Sprint(got) != fmt.Sprint(map[string]string{"mode": "644:slow"}) {
		t.Fatalf("got %v after the update, want only mode=slow", got)
	}
	if b, _ := os.ReadFile(filepath.Join(scratch, "data")); string(b) != "kept" {
		t.Fatalf("got emptyDir content %q, want it kept", b)
	}

	// The ConfigMap goes: the failure is reported, the files stay and the
	// volume can still be mounted.
	delete(configs.cms, "shop/app")
	res = m.setUp(pod, configs, nil)
	if len(res.failed) != 1 {
		t.Fatalf("got failures %q, want one", res.failed)
	}
	if _, ok := res.volumes["cfg"]; !ok {
		t.Fatal("got the volume dropped, want it kept with its last content")
	}
	if got := readVolume(t, cfg); got["mode"] != "644:slow" {
		t.Fatalf("got %v, want the last content kept", got)
	}

	if err := m.tearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.podDir(pod.UID)); !os.IsNotExist(err) {
		t.Fatalf("got %v, want the pod's directory gone", err)
	}
	if uids, _ := m.podDirs(); len(uids) != 0 {
		t.Fatalf("got pod directories %v, want none", uids)
	}
}

func TestMountsFor(t *testing.T) {
	base := t.TempDir()
	m := newVolumeManager(base)
	host := t.TempDir()
	pod := volumePod([]corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}},
	}, nil)
	res := m.setUp(pod, testConfigs(), nil)
	t.Cleanup(func() {
		if err := m.tearDown(pod.UID); err != nil {
			t.Error(err)
		}
	})
	if len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	cfgDir, scratchDir, memDir := res.volumes["cfg"].path, res.volumes["scratch"].path, res.volumes["mem"].path
	if err := os.Symlink("/etc", filepath.Join(scratchDir, "escape")); err != nil {
		t.Fatal(err)
	}
	resolvedCfg, _ := filepath.EvalSymlinks(filepath.Join(cfgDir, "mode"))
	env := map[string]string{"POD_NAME": "web-1"}
	cases := []struct {
		name    string
		mount   corev1.VolumeMount
		want    rt.Mount
		wantErr string
	}{
		{name: "configMap is read-only", mount: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/cfg"},
			want: rt.Mount{Source: cfgDir, Target: "/etc/cfg", ReadOnly: true}},
		{name: "configMap key by subPath", mount: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/mode", SubPath: "mode"},
			want: rt.Mount{Source: resolvedCfg, Target: "/etc/mode", ReadOnly: true}},
		{name: "missing subPath of a configMap", mount: corev1.VolumeMount{Name: "cfg", MountPath: "/x", SubPath: "nope"},
			wantErr: `subPath "nope" does not exist in the volume`},
		{name: "emptyDir read-write", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/data"},
			want: rt.Mount{Source: scratchDir, Target: "/data"}},
		{name: "emptyDir read-only when asked", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/data", ReadOnly: true},
			want: rt.Mount{Source: scratchDir, Target: "/data", ReadOnly: true}},
		{name: "emptyDir subPath is made", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/logs", SubPath: "logs/app"},
			want: rt.Mount{Source: filepath.Join(scratchDir, "logs/app"), Target: "/logs"}},
		{name: "subPathExpr", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/mine", SubPathExpr: "pods/$(POD_NAME)"},
			want: rt.Mount{Source: filepath.Join(scratchDir, "pods/web-1"), Target: "/mine"}},
		{name: "subPath with ..", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "../../etc"}, wantErr: "must not contain '..'"},
		{name: "absolute subPath", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "/etc"}, wantErr: "must be relative"},
		{name: "subPath through a symlink out of the volume", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "escape"}, wantErr: "leaves the volume"},
		{name: "memory emptyDir binds the pod's tmpfs", mount: corev1.VolumeMount{Name: "mem", MountPath: "/cache"},
			want: rt.Mount{Source: memDir, Target: "/cache"}},
		{name: "memory emptyDir subPath", mount: corev1.VolumeMount{Name: "mem", MountPath: "/cache", SubPath: "a"},
			want: rt.Mount{Source: filepath.Join(memDir, "a"), Target: "/cache"}},
		{name: "hostPath", mount: corev1.VolumeMount{Name: "host", MountPath: "/host", ReadOnly: true},
			want: rt.Mount{Source: host, Target: "/host", ReadOnly: true}},
		{name: "unknown volume", mount: corev1.VolumeMount{Name: "nope", MountPath: "/x"}, wantErr: `volume "nope" is not set up`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{tc.mount}}
			got, err := mountsFor(c, res.volumes, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	t.Run("a memory emptyDir is one tmpfs of its sizeLimit, mounted once", func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs(memDir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Type != unix.TMPFS_MAGIC {
			t.Fatalf("%s has filesystem type %#x, want tmpfs", memDir, st.Type)
		}
		if size := int64(st.Blocks) * st.Bsize; size != 16<<20 {
			t.Fatalf("tmpfs size %d, want %d", size, 16<<20)
		}
		if err := os.WriteFile(filepath.Join(memDir, "kept"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Every sync sets the volumes up again: the same tmpfs stays.
		again := m.setUp(pod, testConfigs(), nil)
		if len(again.failed) > 0 {
			t.Fatal(again.failed)
		}
		points, err := mountPointsUnder(m.podDir(pod.UID))
		if err != nil {
			t.Fatal(err)
		}
		if len(points) != 1 || points[0] != memDir {
			t.Fatalf("mount points %v, want only %s", points, memDir)
		}
		if _, err := os.Stat(filepath.Join(memDir, "kept")); err != nil {
			t.Fatalf("a file written to the tmpfs is gone after a second setup: %v", err)
		}
	})

	t.Run("tearDown unmounts the tmpfs and removes the pod's directory", func(t *testing.T) {
		p := pod.DeepCopy()
		p.UID = "u-2"
		res := m.setUp(p, testConfigs(), nil)
		if len(res.failed) > 0 {
			t.Fatal(res.failed)
		}
		if err := m.tearDown(p.UID); err != nil {
			t.Fatal(err)
		}
		if points, _ := mountPointsUnder(m.podDir(p.UID)); len(points) != 0 {
			t.Fatalf("still mounted: %v", points)
		}
		if _, err := os.Stat(m.podDir(p.UID)); !os.IsNotExist(err) {
			t.Fatalf("got %v, want the pod's directory gone", err)
		}
	})
}

func TestGCVolumes(t *testing.T) {
	a, err := New(Config{Name: "n1", DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vols := []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	for _, uid := range []types.UID{"live", "gone"} {
		p := volumePod(vols, nil)
		p.UID = uid
		if res := a.volumes.setUp(p, testConfigs(), nil); len(res.failed) > 0 {
			t.Fatal(res.failed)
		}
	}
	a.workers["live"] = &podWorker{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one round only
	a.gcVolumes(ctx)
	uids, err := a.volumes.podDirs()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(uids) != "[live]" {
		t.Fatalf("got pod directories %v, want only the live pod's", uids)
	}
	entries, _ := os.ReadDir(a.volumes.root)
	if len(entries) != 1 {
		t.Fatalf("got %d entries under %s, want 1 (nothing left being removed)", len(entries), a.volumes.root)
	}
}

func TestSecretVolumeWrittenOnDiskStaysThere(t *testing.T) {
	m := newVolumeManager(t.TempDir())
	vol := corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}
	pod := volumePod([]corev1.Volume{vol}, nil)
	// As an older agent left it: files on disk, no tmpfs.
	dir := m.volumeDir(pod.UID, pluginSecret, "sec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.tearDown(pod.UID); err != nil {
			t.Error(err)
		}
	})
	res := m.setUp(pod, testConfigs(), nil)
	if len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		t.Fatalf("mounted %v, %v: want the on-disk volume kept for the running containers", mounted, err)
	}
	if got := readVolume(t, dir); len(got) == 0 {
		t.Fatal("the secret's files were not written")
	}
}
