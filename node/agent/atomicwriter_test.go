package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// volumeFiles lists dir as a reader inside the container sees it: names
// (without the writer's own ..entries) → content, following links.
func volumeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(dir, dataDirName)+"/", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(dir, dataDirName), path)
		b, err := os.ReadFile(filepath.Join(dir, rel)) // through the top-level link
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func visibleNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

func TestWriteAtomic(t *testing.T) {
	type step struct {
		payload     map[string]fileProjection
		wantChanged bool
		wantNames   []string
		wantFiles   map[string]string
		wantModes   map[string]fs.FileMode
	}
	f := func(s string, mode fs.FileMode) fileProjection { return fileProjection{Data: []byte(s), Mode: mode} }
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "initial write", steps: []step{{
			payload:     map[string]fileProjection{"a": f("1", 0o644), "sub/b": f("2", 0o400)},
			wantChanged: true, wantNames: []string{"a", "sub"},
			wantFiles: map[string]string{"a": "1", "sub/b": "2"},
			wantModes: map[string]fs.FileMode{"a": 0o644, "sub/b": 0o400},
		}}},
		{name: "same payload writes nothing", steps: []step{
			{payload: map[string]fileProjection{"a": f("1", 0o644)}, wantChanged: true, wantNames: []string{"a"}, wantFiles: map[string]string{"a": "1"}},
			{payload: map[string]fileProjection{"a": f("1", 0o644)}, wantChanged: false, wantNames: []string{"a"}, wantFiles: map[string]string{"a": "1"}},
		}},
		{name: "update and removed keys disappear", steps: []step{
			{payload: map[string]fileProjection{"a": f("1", 0o644), "b": f("2", 0o644)}, wantChanged: true, wantNames: []string{"a", "b"}},
			{payload: map[string]fileProjection{"a": f("3", 0o644), "c": f("4", 0o644)}, wantChanged: true, wantNames: []string{"a", "c"},
				wantFiles: map[string]string{"a": "3", "c": "4"}},
		}},
		{name: "mode change alone rewrites", steps: []step{
			{payload: map[string]fileProjection{"a": f("1", 0o644)}, wantChanged: true},
			{payload: map[string]fileProjection{"a": f("1", 0o600)}, wantChanged: true, wantModes: map[string]fs.FileMode{"a": 0o600}},
		}},
		{name: "empty payload", steps: []step{
			{payload: map[string]fileProjection{"a": f("1", 0o644)}, wantChanged: true},
			{payload: map[string]fileProjection{}, wantChanged: true, wantNames: nil, wantFiles: map[string]string{}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "vol")
			for i, s := range tc.steps {
				changed, err := writeAtomic(dir, s.payload)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if changed != s.wantChanged {
					t.Fatalf("step %d: got changed %v, want %v", i, changed, s.wantChanged)
				}
				if s.wantNames != nil || s.wantFiles != nil {
					if got := visibleNames(t, dir); fmt.Sprint(got) != fmt.Sprint(s.wantNames) && s.wantNames != nil {
						t.Fatalf("step %d: got names %v, want %v", i, got, s.wantNames)
					}
				}
				if s.wantFiles != nil {
					if got := volumeFiles(t, dir); fmt.Sprint(got) != fmt.Sprint(s.wantFiles) {
						t.Fatalf("step %d: got files %v, want %v", i, got, s.wantFiles)
					}
				}
				for p, m := range s.wantModes {
					st, err := os.Stat(filepath.Join(dir, p))
					if err != nil {
						t.Fatal(err)
					}
					if st.Mode().Perm() != m {
						t.Fatalf("step %d: %s: got mode %o, want %o", i, p, st.Mode().Perm(), m)
					}
				}
				// Exactly one version directory remains.
				entries, _ := os.ReadDir(dir)
				versions := 0
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), "..") && e.Name() != dataDirName {
						versions++
					}
				}
				if versions != 1 {
					t.Fatalf("step %d: got %d version directories, want 1", i, versions)
				}
				if link, _ := os.Readlink(filepath.Join(dir, "a")); link != "" && link != filepath.Join(dataDirName, "a") {
					t.Fatalf("got link %q, want ..data/a", link)
				}
			}
		})
	}
}

func TestWriteAtomicRefusesEscapingPaths(t *testing.T) {
	for _, p := range []string{"", "/etc/passwd", "../x", "..data", "a/../../x", "a//b", "./a"} {
		t.Run(p, func(t *testing.T) {
			_, err := writeAtomic(t.TempDir(), map[string]fileProjection{p: {Data: []byte("x"), Mode: 0o644}})
			if err == nil {
				t.Fatalf("got no error for path %q", p)
			}
		})
	}
}

// TestWriteAtomicReadersNeverSeeAMix reads the volume while it is being
// updated: files read through one resolution of ..data always belong to
// one version, and a file read through its link is never partial.
func TestWriteAtomicReadersNeverSeeAMix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	payload := func(v int) map[string]fileProjection {
		big := strings.Repeat(fmt.Sprintf("v%d;", v), 4096)
		return map[string]fileProjection{"a": {Data: []byte(big), Mode: 0o644}, "b": {Data: []byte(big), Mode: 0o644}}
	}
	if _, err := writeAtomic(dir, payload(0)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	consistent, whole := 0, 0
	report := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	wg.Add(2)
	go func() { // pairs read through one resolution of ..data
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			version, err := os.Readlink(filepath.Join(dir, dataDirName))
			if err != nil {
				report("readlink ..data: " + err.Error())
				return
			}
			a, errA := os.ReadFile(filepath.Join(dir, version, "a"))
			b, errB := os.ReadFile(filepath.Join(dir, version, "b"))
			if errors.Is(errA, fs.ErrNotExist) || errors.Is(errB, fs.ErrNotExist) {
				continue // that version was replaced and removed meanwhile
			}
			if errA != nil || errB != nil {
				report(fmt.Sprintf("read: %v %v", errA, errB))
				return
			}
			if string(a) != string(b) {
				report(fmt.Sprintf("a and b differ in version %s", version))
				return
			}
			mu.Lock()
			consistent++
			mu.Unlock()
		}
	}()
	go func() { // single files through their links
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := os.ReadFile(filepath.Join(dir, "a"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				report("read a: " + err.Error())
				return
			}
			token, _, _ := strings.Cut(string(a), ";")
			if string(a) != strings.Repeat(token+";", 4096) {
				report(fmt.Sprintf("partial or mixed file of %d bytes", len(a)))
				return
			}
			mu.Lock()
			whole++
			mu.Unlock()
		}
	}()
	for v := 1; v <= 200; v++ {
		if _, err := writeAtomic(dir, payload(v)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if consistent == 0 || whole == 0 {
		t.Fatalf("got %d consistent pair reads and %d whole file reads during the updates, want some of each", consistent, whole)
	}
	if got := volumeFiles(t, dir)["a"]; got != string(payload(200)["a"].Data) {
		t.Fatalf("got a %q..., want the last version", got[:8])
	}
}
