package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// fileProjection is one file of a projected volume.
type fileProjection struct {
	Data []byte
	Mode fs.FileMode
}

// The names the atomic writer uses inside a volume directory, as the
// kubelet's AtomicWriter does, so tools written for Kubernetes (which watch
// ..data) work unchanged.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic makes dir hold exactly the files of payload (relative path →
// content and mode), the way the kubelet's AtomicWriter does:
//
//	dir/..2026_11_24_17_27_01.123456789/  the files of this version
//	dir/..data -> ..2026_11_24_...         the current version
//	dir/key -> ..data/key                  one link per top-level name
//
// An update writes a whole new version directory, then points ..data at
// it with one rename(2) of a new symlink over the old, then removes the old
// version: a reader that resolves ..data once sees one version, never a
// mix, and a file opened through its link is always complete. It reports
// whether anything changed; an unchanged payload writes nothing.
func writeAtomic(dir string, payload map[string]fileProjection) (bool, error) {
	for p := range payload {
		if err := validPayloadPath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldVersion, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if oldVersion != "" {
		same, err := payloadMatches(filepath.Join(dir, oldVersion), payload)
		if err != nil {
			return false, err
		}
		if same {
			return false, nil
		}
	}

	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(version, 0o755); err != nil {
		return false, err
	}
	if err := writePayload(version, payload); err != nil {
		_ = os.RemoveAll(version) // the write error is the one to report
		return false, err
	}
	tmp := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}

	// Links for the names of the new payload; then remove the names that
	// are gone and the versions that are not current.
	top := map[string]bool{}
	for p := range payload {
		name, _, _ := strings.Cut(p, "/")
		top[name] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		if err := os.Symlink(target, link); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return true, err
			}
			if err := os.Remove(link); err != nil {
				return true, err
			}
			if err := os.Symlink(target, link); err != nil {
				return true, err
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == dataDirName || name == filepath.Base(version):
		case strings.HasPrefix(name, ".."):
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return true, err
			}
		case !top[name]:
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// validPayloadPath refuses paths that would leave the volume or clash
// with the writer's own names.
func validPayloadPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty file path in volume")
	case filepath.IsAbs(p):
		return fmt.Errorf("file path %q must be relative", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("file path %q must not start with '..'", p)
	case len(p) > 4096:
		return fmt.Errorf("file path is longer than 4096 characters")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." || part == "" {
			return fmt.Errorf("file path %q must not contain '..', '.' or empty parts", p)
		}
	}
	return nil
}

func writePayload(dir string, payload map[string]fileProjection) error {
	paths := make([]string, 0, len(payload))
	for p := range payload {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := payload[p]
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.Data, 0o600); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask; the volume's is not.
		if err := os.Chmod(full, f.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// payloadMatches reports whether version holds exactly payload.
func payloadMatches(version string, payload map[string]fileProjection) (bool, error) {
	n := 0
	err := filepath.WalkDir(version, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		n++
		rel, _ := filepath.Rel(version, path)
		want, ok := payload[filepath.ToSlash(rel)]
		if !ok {
			return errMismatch
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != want.Mode.Perm() {
			return errMismatch
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want.Data) {
			return errMismatch
		}
		return nil
	})
	if errors.Is(err, errMismatch) || errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n == len(payload), nil
}

var errMismatch = errors.New("payload differs")
