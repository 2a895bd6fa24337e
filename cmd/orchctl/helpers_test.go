package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"orch.dev/orch/server/api/apitest"
)

// result is what one orchctl invocation produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// orchctl runs the CLI in-process against env (when not nil, with
// --kubeconfig for it), with stdin as its standard input.
func orchctl(t *testing.T, env *apitest.Env, stdin string, args ...string) result {
	t.Helper()
	return orchctlCtx(t, context.Background(), env, stdin, args...)
}

func orchctlCtx(t *testing.T, ctx context.Context, env *apitest.Env, stdin string, args ...string) result {
	t.Helper()
	if env != nil {
		args = append([]string{"--kubeconfig", env.Kubeconfig}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// mustSucceed runs orchctl and fails the test unless it exits 0.
func mustSucceed(t *testing.T, env *apitest.Env, stdin string, args ...string) result {
	t.Helper()
	r := orchctl(t, env, stdin, args...)
	if r.code != 0 {
		t.Fatalf("orchctl %v: got exit %d, want 0\n%s", args, r.code, r)
	}
	return r
}

// syncBuffer is a bytes.Buffer safe for a writing goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines splits output into lines without the final newline.
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// ageRE matches any AGE cell; tests cannot know the exact age.
const ageRE = `(\d+s|\d+m\d*s?|<unknown>)`

// agePlaceholder finds the AGE token of a wanted row and the padding
// after it, which depends on the age's width.
var agePlaceholder = regexp.MustCompile(`AGE( +)?`)

// matchTable checks table output line by line. Header lines (starting
// with NAME, NAMESPACE or LAST SEEN) and empty lines must match exactly. In the others, the token AGE stands for any
// age; everything else, the spacing between cells included, must match
// exactly, except the padding right after the age.
func matchTable(t *testing.T, got string, want ...string) {
	t.Helper()
	gl := lines(got)
	if len(gl) != len(want) {
		t.Fatalf("got %d lines, want %d\ngot:\n%s\nwant:\n%s", len(gl), len(want), got, strings.Join(want, "\n"))
	}
	for i, w := range want {
		pattern := "^" + regexp.QuoteMeta(w) + "$"
		if !strings.HasPrefix(w, "NAME") && !strings.HasPrefix(w, "LAST SEEN") {
			pattern = "^" + agePlaceholder.ReplaceAllStringFunc(regexp.QuoteMeta(w), func(m string) string {
				if m == "AGE" {
					return ageRE
				}
				return ageRE + " +"
			}) + "$"
		}
		if !regexp.MustCompile(pattern).MatchString(gl[i]) {
			t.Fatalf("line %d: got %q, want %q\nwhole output:\n%s", i+1, gl[i], w, got)
		}
	}
}
