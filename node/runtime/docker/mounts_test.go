package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch.dev/orch/internal/testutil"
	rt "orch.dev/orch/node/runtime"
)

func TestMounts(t *testing.T) {
	f := newFixture(t)
	testutil.EnsureImages(t)
	sb, err := f.d.RunSandbox(f.ctx, rt.SandboxSpec{Labels: f.labels("mnt", "", rt.RoleSandbox), Hostname: "mnt", Network: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "key"), []byte("value"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("key", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		"cat /ro/link; echo",
		"touch /ro/new 2>/dev/null && echo ro-writable || echo ro-refused",
		"echo written > /rw/out && echo rw-ok",
		"cat /file; echo",
		"grep ' /mem ' /proc/mounts | cut -d' ' -f3",
		"df -k /mem | tail -1 | awk '{print $2}'",
	}, "; ")
	id := f.run(t, sb.ID, "mnt", "app", rt.ContainerSpec{
		Image:   testutil.BusyboxImage,
		Command: []string{"sh", "-c", script},
		Mounts: []rt.Mount{
			{Source: host, Target: "/ro", ReadOnly: true},
			{Source: shared, Target: "/rw"},
			{Source: filepath.Join(host, "key"), Target: "/file", ReadOnly: true},
			{Type: rt.MountTmpfs, Target: "/mem", SizeBytes: 4 << 20},
		},
	})
	c := f.waitExit(t, id)
	out := strings.Fields(f.logs(t, id))
	want := []string{"value", "ro-refused", "rw-ok", "value", "tmpfs", "4096"}
	if c.ExitCode != 0 || strings.Join(out, " ") != strings.Join(want, " ") {
		t.Fatalf("got exit %d output %q, want 0 and %q", c.ExitCode, out, want)
	}
	b, err := os.ReadFile(filepath.Join(shared, "out"))
	if err != nil || string(b) != "written\n" {
		t.Fatalf("got %q, %v on the host, want what the container wrote", b, err)
	}

	t.Run("unknown mount type is refused", func(t *testing.T) {
		spec := rt.ContainerSpec{Image: testutil.BusyboxImage, Labels: f.labels("mnt", "bad", rt.RoleApp), SandboxID: sb.ID,
			Mounts: []rt.Mount{{Type: "nfs", Target: "/x"}}}
		if id, err := f.d.CreateContainer(f.ctx, spec); err == nil {
			_ = f.d.RemoveContainer(f.ctx, id) // the test fails anyway
			t.Fatal("got no error, want one for an unknown mount type")
		}
	})
}
