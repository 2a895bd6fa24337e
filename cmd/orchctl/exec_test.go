package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"

	"orch.dev/orch/node/endpoint/endpointtest"
	"orch.dev/orch/node/runtime"
)

func TestExec(t *testing.T) {
	f := endpointtest.New(t)
	kc := startPodProxy(t, f)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	cases := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // with partial, a part of stdout
		partial    bool
		wantStderr string
	}{
		{name: "a command", args: []string{"exec", "web", "--", "/hello", "exit", "0"}, wantStdout: "exiting with 0\n"},
		{name: "stdin", args: []string{"exec", "-i", "web", "--", "/hello", "cat"}, stdin: "ping\npong\n", wantStdout: "ping\npong\n"},
		{name: "without -i stdin stays here", args: []string{"exec", "web", "--", "/hello", "cat"}, stdin: "ping\n", wantStdout: ""},
		{name: "the command's flags are its own", args: []string{"exec", "pod/web", "-i", "-c", "app", "--", "/hello", "cat", "-n", "--help"},
			stdin: "ping\n", wantStdout: "ping\n"},
		{name: "exit code", args: []string{"exec", "web", "--", "/hello", "exit", "3"}, wantCode: 3, wantStdout: "exiting with 3\n",
			wantStderr: "command terminated with exit code 3"},
		{name: "stderr", args: []string{"exec", "web", "--", "/hello", "exit"}, wantCode: 2,
			wantStderr: "hello: usage: hello exit CODE [DELAY]\ncommand terminated with exit code 2\n"},
		{name: "a terminal", args: []string{"exec", "-t", "web", "--", "/hello", "env"}, wantStdout: "TERM=xterm\r\n", partial: true},
		// With a terminal, Docker ends the output when stdin ends, which here
		// is at once: only the exit code is certain.
		{name: "-it", args: []string{"exec", "-it", "web", "--", "/hello", "exit", "0"}, partial: true},
		{name: "unknown container", args: []string{"exec", "web", "-c", "nope", "--", "/hello", "env"}, wantCode: 1,
			wantStderr: `error: container "nope" of pod default/web not found on this node`},
		{name: "unknown pod", args: []string{"exec", "nope", "--", "/hello", "env"}, wantCode: 1,
			wantStderr: `error: container "app" of pod default/nope not found on this node`},
		{name: "no --", args: []string{"exec", "web", "/hello", "env"}, wantCode: 1,
			wantStderr: "put -- between the pod and the command, as in orchctl exec web -- /hello"},
		{name: "no command", args: []string{"exec", "web"}, wantCode: 1, wantStderr: "exec needs a command after --"},
		{name: "nothing after --", args: []string{"exec", "web", "--"}, wantCode: 1, wantStderr: "exec needs a command after --"},
		{name: "no pod", args: []string{"exec", "--", "/hello", "env"}, wantCode: 1, wantStderr: "exec takes one POD before --, got 0"},
		{name: "two pods", args: []string{"exec", "a", "b", "--", "/hello", "env"}, wantCode: 1, wantStderr: "exec takes one POD before --, got 2"},
		{name: "not a pod", args: []string{"exec", "svc/web", "--", "/hello", "env"}, wantCode: 1, wantStderr: `"svc/web": only pods`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, nil, tc.stdin, append([]string{"--kubeconfig", kc}, tc.args...)...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if tc.partial && !strings.Contains(r.stdout, tc.wantStdout) || !tc.partial && r.stdout != tc.wantStdout {
				t.Fatalf("got stdout %q, want %q", r.stdout, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}
}

func TestTerminalSizes(t *testing.T) {
	type reply struct {
		w, h int
		err  error
	}
	cases := []struct {
		name    string
		replies []reply // the terminal's answers, one per size asked
		resizes int     // SIGWINCHs after the first size
		want    []remotecommand.TerminalSize
	}{
		{name: "the size now", replies: []reply{{80, 24, nil}}, want: []remotecommand.TerminalSize{{Width: 80, Height: 24}}},
		{name: "then each new size", replies: []reply{{80, 24, nil}, {100, 40, nil}, {120, 50, nil}}, resizes: 2,
			want: []remotecommand.TerminalSize{{Width: 80, Height: 24}, {Width: 100, Height: 40}, {Width: 120, Height: 50}}},
		{name: "an unchanged size is not sent again", replies: []reply{{80, 24, nil}, {80, 24, nil}, {90, 24, nil}}, resizes: 2,
			want: []remotecommand.TerminalSize{{Width: 80, Height: 24}, {Width: 90, Height: 24}}},
		{name: "sizes the terminal cannot tell are skipped", replies: []reply{{0, 0, errors.New("not a terminal")}, {0, 0, nil}, {70, 20, nil}}, resizes: 2,
			want: []remotecommand.TerminalSize{{Width: 70, Height: 20}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			i := 0
			q := newTerminalSizes(ctx, func() (int, int, error) {
				r := tc.replies[min(i, len(tc.replies)-1)]
				i++
				return r.w, r.h, r.err
			})
			defer q.stop()
			got := make(chan remotecommand.TerminalSize, 10)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for sz := q.Next(); sz != nil; sz = q.Next() {
					got <- *sz
				}
			}()
			for range tc.resizes {
				q.resized <- os.Interrupt // any signal: the queue only counts them
			}
			// Sizes the queue skips leave nothing to wait for: wait for the
			// last one asked for, then end the session.
			deadline := time.After(10 * time.Second)
			var sizes []remotecommand.TerminalSize
			for len(sizes) < len(tc.want) {
				select {
				case sz := <-got:
					sizes = append(sizes, sz)
				case <-deadline:
					t.Fatalf("got sizes %v, want %v", sizes, tc.want)
				}
			}
			cancel()
			<-done
			if len(got) > 0 || len(sizes) != len(tc.want) {
				t.Fatalf("got sizes %v and %d more, want %v", sizes, len(got), tc.want)
			}
			for j := range sizes {
				if sizes[j] != tc.want[j] {
					t.Fatalf("got sizes %v, want %v", sizes, tc.want)
				}
			}
		})
	}
}
