// Package nft runs nftables transactions through the nft binary: a script
// of commands given to `nft -f -` is applied by the kernel as one atomic
// transaction, all of it or none of it.
package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNotFound says the nft binary is missing.
var ErrNotFound = errors.New("nft: the nft binary was not found (Debian package nftables)")

// Runner applies nft scripts.
type Runner struct {
	// Path is the nft binary; empty looks up "nft" in $PATH and /usr/sbin.
	Path string
	// Prefix runs nft under another command, e.g. {"ip", "netns", "exec",
	// "NAME"} to program a network namespace.
	Prefix []string
}

func (r *Runner) path() (string, error) {
	if r.Path != "" {
		return r.Path, nil
	}
	if p, err := exec.LookPath("nft"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nft", "/sbin/nft"} {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

func (r *Runner) command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	p, err := r.path()
	if err != nil {
		return nil, err
	}
	argv := append(append(append([]string{}, r.Prefix...), p), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...), nil
}

// Apply runs script as one transaction.
func (r *Runner) Apply(ctx context.Context, script string) error {
	cmd, err := r.command(ctx, "-f", "-")
	if err != nil {
		return err
	}
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, firstLines(out.String(), 6))
	}
	return nil
}

// List returns `nft list ARGS...`, e.g. List(ctx, "table", "ip", "orch").
func (r *Runner) List(ctx context.Context, args ...string) (string, error) {
	cmd, err := r.command(ctx, append([]string{"list"}, args...)...)
	if err != nil {
		return "", err
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("nft list %s: %w: %s", strings.Join(args, " "), err, firstLines(stderr.String(), 3))
	}
	return out.String(), nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// Identifier makes s usable as an nft table, chain or set name: letters,
// digits and _ - . / are kept, anything else becomes _, and a name that
// does not start with a letter gets an "x" in front.
func Identifier(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == '/':
		default:
			b[i] = '_'
		}
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z') {
		b = append([]byte("x"), b...)
	}
	return string(b)
}
