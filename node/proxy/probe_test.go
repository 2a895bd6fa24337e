package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"orch.dev/orch/node/internal/nft"
)

// scriptApplier keeps the scripts it is given and fails with err.
type scriptApplier struct {
	mu      sync.Mutex
	scripts []string
	err     error
}

func (a *scriptApplier) Apply(_ context.Context, script string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scripts = append(a.scripts, script)
	return a.err
}

func TestNftablesUsable(t *testing.T) {
	refusal := errors.New("nft -f: exit status 1: Error: Could not process rule: No such file or directory")
	for _, tc := range []struct {
		name    string
		applier *scriptApplier
		wantIs  error    // nil: no error wanted
		wantMsg []string // parts of the error message
	}{
		{name: "accepted", applier: &scriptApplier{}},
		{name: "the nft binary is missing", applier: &scriptApplier{err: fmt.Errorf("wrapped: %w", nft.ErrNotFound)},
			wantIs: nft.ErrNotFound, wantMsg: []string{"nftables is not usable", "nft binary was not found"}},
		{name: "the kernel refuses", applier: &scriptApplier{err: refusal},
			wantIs: refusal, wantMsg: []string{"nftables is not usable", "kernel refused", "No such file or directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NftablesUsable(context.Background(), tc.applier)
			switch {
			case tc.wantIs == nil && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Fatalf("got %v, want an error wrapping %v", err, tc.wantIs)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("got %q, want it to say %q", err, m)
				}
			}
			if len(tc.applier.scripts) != 1 {
				t.Fatalf("got %d transactions, want 1", len(tc.applier.scripts))
			}
			script := strings.TrimSpace(tc.applier.scripts[0])
			if !strings.HasPrefix(script, "add table ip orch-probe-") || !strings.HasSuffix(script, "\ndelete table ip "+strings.Fields(script)[3]) {
				t.Errorf("the probe does not create and delete its table in one transaction:\n%s", script)
			}
		})
	}
}

func TestNftablesUsableInNetns(t *testing.T) {
	n := newTestNetns(t)
	if err := NftablesUsable(context.Background(), n.nft); err != nil {
		t.Fatalf("got %v, want nil in a fresh namespace", err)
	}
	out, err := n.nft.List(context.Background(), "tables")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "orch-probe") {
		t.Errorf("the probe left its table behind:\n%s", out)
	}
	// A rule the kernel cannot take fails the same way as a missing
	// kernel part would.
	bad := &badRule{n.nft}
	if err := NftablesUsable(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "kernel refused") {
		t.Errorf("got %v, want the kernel's refusal", err)
	}
}

// badRule applies the script with one rule the kernel refuses (a jump to
// a chain that does not exist), as an older kernel refuses an expression
// it does not know.
type badRule struct{ next Applier }

func (b *badRule) Apply(ctx context.Context, script string) error {
	table := strings.Fields(script)[3]
	return b.next.Apply(ctx, strings.Replace(script, "\ndelete table ip "+table+"\n",
		"\nadd rule ip "+table+" services jump no-such-chain\ndelete table ip "+table+"\n", 1))
}
