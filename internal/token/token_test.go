package token

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k := Derive("a-long-cluster-token", "test")
	sealed, err := Seal(k, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(k, sealed)
	if err != nil || string(got) != "secret" {
		t.Fatalf("got %q %v, want secret", got, err)
	}
	if _, err := Open(Derive("another-cluster-token", "test"), sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
	if bytes.Equal(Derive("t0000000000000000", "a"), Derive("t0000000000000000", "b")) {
		t.Fatal("keys for different purposes are equal")
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name        string
		saved       string
		flag        string
		mayGenerate bool
		wantErr     bool
		wantTok     string
	}{
		{name: "flag", flag: "0123456789abcdef0", wantTok: "0123456789abcdef0"},
		{name: "saved", saved: "0123456789abcdef1", wantTok: "0123456789abcdef1"},
		{name: "flag equal to saved", saved: "0123456789abcdef1", flag: "0123456789abcdef1", wantTok: "0123456789abcdef1"},
		{name: "flag differs from saved", saved: "0123456789abcdef1", flag: "0123456789abcdef2", wantErr: true},
		{name: "too short", flag: "short", wantErr: true},
		{name: "none and may not generate", wantErr: true},
		{name: "generated", mayGenerate: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.saved != "" {
				if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tc.saved+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tok, gen, err := Resolve(tc.flag, dir, tc.mayGenerate)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tc.wantTok != "" && tok != tc.wantTok {
				t.Fatalf("got %q, want %q", tok, tc.wantTok)
			}
			if tc.mayGenerate && (!gen || Check(tok) != nil) {
				t.Fatalf("got %q generated=%v, want a generated valid token", tok, gen)
			}
			saved, _ := os.ReadFile(filepath.Join(dir, "token"))
			if string(saved) != tok+"\n" {
				t.Fatalf("saved %q, want %q", saved, tok)
			}
		})
	}
}
