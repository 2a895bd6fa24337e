package main

import (
	"os"
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "bash", args: []string{"completion", "bash"}, wantStdout: "complete -o filenames -F _orchctl_complete orchctl"},
		{name: "zsh", args: []string{"completion", "zsh"}, wantStdout: "#compdef orchctl"},
		{name: "fish", args: []string{"completion", "fish"}, wantStdout: "complete -c orchctl"},
		{name: "unknown shell", args: []string{"completion", "tcsh"}, wantCode: 1, wantStderr: `completion: shell "tcsh": want bash, zsh or fish`},
		{name: "commands", args: []string{completionFlag}, wantStdout: "apply\nget\ndescribe\ndelete\ncreate\nlogs\nexec\nport-forward\nlabel\nannotate\ncordon\nuncordon\ndrain\ntaint\nversion\ncompletion\noperator\n"},
		{name: "kinds after get", args: []string{"get", completionFlag}, wantStdout: "all\npods\nservices\n"},
		{name: "subcommands", args: []string{"operator", "raft", completionFlag}, wantStdout: "list-peers\ntransfer-leadership\nremove-peer\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// urfave/cli's default completions look at os.Args, which in
			// a test are the test binary's.
			saved := os.Args
			os.Args = append([]string{"orchctl"}, tc.args...)
			t.Cleanup(func() { os.Args = saved })
			r := orchctl(t, nil, "", tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if !strings.Contains(r.stdout, tc.wantStdout) {
				t.Fatalf("got stdout %q, want it to contain %q", r.stdout, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}
}
