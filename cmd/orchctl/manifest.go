package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifest is one object read from a -f source, or the error that stopped
// it from being read, with enough of its origin to name it in messages.
type manifest struct {
	source string // file path as given, or "stdin"
	doc    int    // 1-based document number in the source
	item   int    // 1-based item number when the document is a List, else 0
	obj    *unstructured.Unstructured
	err    error
}

// where names the manifest for messages: `deploy.yaml: document 2
// (Deployment web)`.
func (m *manifest) where() string {
	if m.doc == 0 {
		return m.source
	}
	s := fmt.Sprintf("%s: document %d", m.source, m.doc)
	if m.item > 0 {
		s += fmt.Sprintf(", item %d", m.item)
	}
	switch {
	case m.obj == nil:
	case m.obj.GetName() == "":
		s += fmt.Sprintf(" (%s without a name)", m.obj.GetKind())
	default:
		s += fmt.Sprintf(" (%s %s)", m.obj.GetKind(), m.obj.GetName())
	}
	return s
}

// readManifests reads every -f argument: files, directories (their .yaml,
// .yml and .json files, sorted, not recursive) and "-" for stdin. A source
// that cannot be read at all is returned as a manifest with an error so
// the others are still processed.
func readManifests(filenames []string, stdin io.Reader) []*manifest {
	var out []*manifest
	for _, f := range filenames {
		if f == "-" {
			out = append(out, parseManifests("stdin", stdin)...)
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			out = append(out, &manifest{source: f, err: err})
			continue
		}
		if !st.IsDir() {
			out = append(out, readManifestFile(f)...)
			continue
		}
		entries, err := os.ReadDir(f)
		if err != nil {
			out = append(out, &manifest{source: f, err: err})
			continue
		}
		var files []string
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(f, e.Name()))
				}
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			out = append(out, &manifest{source: f, err: errors.New("the directory has no .yaml, .yml or .json files")})
		}
		for _, p := range files {
			out = append(out, readManifestFile(p)...)
		}
	}
	return out
}

func readManifestFile(path string) []*manifest {
	f, err := os.Open(path)
	if err != nil {
		return []*manifest{{source: path, err: err}}
	}
	defer f.Close()
	return parseManifests(path, f)
}

// parseManifests splits a stream into objects: YAML documents separated by
// `---`, or a sequence of JSON objects. Empty documents are skipped and not
// counted. `kind: List` documents are expanded into their items.
func parseManifests(source string, r io.Reader) []*manifest {
	br := bufio.NewReader(r)
	var docs [][]byte
	if isJSONStream(br) {
		dec := json.NewDecoder(br)
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return append(decodeDocs(source, docs), &manifest{source: source, doc: len(docs) + 1, err: fmt.Errorf("invalid JSON: %w", err)})
			}
			if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
				var items []json.RawMessage
				if err := json.Unmarshal(t, &items); err != nil {
					return append(decodeDocs(source, docs), &manifest{source: source, doc: len(docs) + 1, err: fmt.Errorf("invalid JSON: %w", err)})
				}
				for _, it := range items {
					docs = append(docs, it)
				}
				continue
			}
			docs = append(docs, raw)
		}
		return decodeDocs(source, docs)
	}
	yr := utilyaml.NewYAMLReader(br)
	var out []*manifest
	n := 0
	for {
		chunk, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return append(out, &manifest{source: source, doc: n + 1, err: err})
		}
		js, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			if len(bytes.TrimSpace(chunk)) == 0 {
				continue
			}
			n++
			out = append(out, &manifest{source: source, doc: n, err: fmt.Errorf("invalid YAML: %w", err)})
			continue
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		n++
		out = append(out, decodeDoc(source, n, js)...)
	}
	if len(out) == 0 {
		out = append(out, &manifest{source: source, err: errors.New("no objects in it")})
	}
	return out
}

func decodeDocs(source string, docs [][]byte) []*manifest {
	var out []*manifest
	for i, d := range docs {
		out = append(out, decodeDoc(source, i+1, d)...)
	}
	if len(out) == 0 {
		out = append(out, &manifest{source: source, err: errors.New("no objects in it")})
	}
	return out
}

// decodeDoc decodes one JSON document into objects, expanding lists.
func decodeDoc(source string, n int, js []byte) []*manifest {
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(js, nil, nil)
	if err != nil {
		return []*manifest{{source: source, doc: n, err: describeDecodeError(js, err)}}
	}
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return []*manifest{{source: source, doc: n, obj: o}}
	case *unstructured.UnstructuredList:
		var out []*manifest
		for i := range o.Items {
			item := o.Items[i]
			m := &manifest{source: source, doc: n, item: i + 1, obj: &item}
			if item.GetKind() == "" || item.GetAPIVersion() == "" {
				m.err = errors.New("apiVersion and kind must be set on every item of a List")
			}
			out = append(out, m)
		}
		return out
	}
	return []*manifest{{source: source, doc: n, err: fmt.Errorf("unexpected object %T", obj)}}
}

// describeDecodeError says which of apiVersion and kind is missing, the
// usual reason a manifest does not decode.
func describeDecodeError(js []byte, err error) error {
	var probe struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if json.Unmarshal(js, &probe) == nil {
		switch {
		case probe.Kind == "":
			return errors.New("kind is not set")
		case probe.APIVersion == "":
			return fmt.Errorf("apiVersion is not set (kind %s)", probe.Kind)
		}
	}
	if runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
		return err
	}
	return fmt.Errorf("cannot decode: %w", err)
}

// isJSONStream peeks at the first non-space byte: `{` or `[` means JSON.
func isJSONStream(br *bufio.Reader) bool {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || len(b) < i {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		default:
			return false
		}
	}
}
