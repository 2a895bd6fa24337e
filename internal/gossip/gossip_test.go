package gossip

import (
	"fmt"
	"testing"
	"time"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/internal/token"
)

func start(t *testing.T, name, tok string, meta Meta) *Pool {
	t.Helper()
	p, err := Start(Config{Name: name, BindAddr: "127.0.0.1:0", Key: token.Derive(tok, "gossip"), Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

func TestMembersAndMeta(t *testing.T) {
	tok := "a-cluster-token-of-some-length"
	a := start(t, "a", tok, Meta{Role: "server", Raft: "127.0.0.1:1", Expect: 3})
	b := start(t, "b", tok, Meta{Role: "server", Raft: "127.0.0.1:2", Expect: 3})
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() string {
		ms := a.Members()
		if len(ms) != 2 || ms[1].Meta.Raft != "127.0.0.1:2" || ms[1].Meta.Expect != 3 {
			return fmt.Sprintf("a sees %+v", ms)
		}
		return ""
	})
	if err := b.SetMeta(Meta{Role: "server", Raft: "127.0.0.1:2", Bootstrapped: true}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() string {
		if ms := a.Members(); !ms[1].Meta.Bootstrapped {
			return "a has not seen b's new meta"
		}
		return ""
	})
}

func TestWrongTokenCannotJoin(t *testing.T) {
	a := start(t, "a", "the-right-cluster-token", Meta{Role: "server"})
	x := start(t, "x", "a-wrong-cluster-token!!", Meta{Role: "server"})
	if _, err := x.Join([]string{a.Addr()}); err == nil {
		t.Fatal("got a successful join, want it refused")
	}
	if n := len(a.Members()); n != 1 {
		t.Fatalf("got %d members, want 1", n)
	}
}
