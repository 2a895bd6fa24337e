package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestNormalizeArgs(t *testing.T) {
	app := (&session{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, now: time.Now}).newApp()
	cases := []struct {
		name string
		in   string
		want string
	}{
		{name: "already in order", in: "-n ns get pods", want: "-n ns get pods"},
		{name: "global flag after the kind", in: "get pods -n kube-system", want: "-n kube-system get pods"},
		{name: "command flags after positionals", in: "get pods web -o yaml -w", want: "get -o yaml -w pods web"},
		{name: "flag values are not commands or kinds", in: "get -l app=get pods", want: "get -l app=get pods"},
		{name: "name equal to a command", in: "get pods delete", want: "get pods delete"},
		{name: "glued short value flag", in: "get pods -oyaml -nkube-system", want: "-n=kube-system get -o=yaml pods"},
		{name: "= forms", in: "delete cm a --wait=false --grace-period=3", want: "delete --wait=false --grace-period=3 cm a"},
		{name: "stdin as a flag value", in: "apply -f - --validate warn", want: "apply -f - --validate warn"},
		{name: "nested commands", in: "operator raft list-peers -o json --kubeconfig k", want: "--kubeconfig k operator raft list-peers -o json"},
		{name: "after --, everything is positional", in: "delete pods -- -odd-name", want: "delete -- pods -odd-name"},
		{name: "unknown flags stay with the command", in: "get pods --colour", want: "get --colour pods"},
		{name: "help", in: "get --help", want: "get --help"},
		{name: "completion request stays last", in: "get -n x " + completionFlag, want: "-n x get " + completionFlag},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(normalizeArgs(app, strings.Fields(tc.in)), " ")
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
