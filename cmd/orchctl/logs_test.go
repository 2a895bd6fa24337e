package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/endpoint/endpointtest"
	"orch.dev/orch/node/runtime"
)

const helloServeLine = "hello listening on :8080\n"

func TestLogs(t *testing.T) {
	f := endpointtest.New(t)
	kc := startPodProxy(t, f)
	first := f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"env"}, Env: []string{"ZZ1=one", "ZZ2=two", "ZZ3=three"}})
	f.WaitExit(t, first)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	f.Run(t, "default", "slow", "app", runtime.ContainerSpec{Args: []string{"exit", "0", "2s"}})
	testutil.Eventually(t, 30*time.Second, func() string {
		if r := orchctl(t, nil, "", "--kubeconfig", kc, "logs", "web"); r.stdout != helloServeLine {
			return "the server has not written its first line:\n" + r.String()
		}
		return ""
	})
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // or, starting with ^, a regular expression
		wantStderr string
	}{
		{name: "current instance", args: []string{"logs", "web"}, wantStdout: helloServeLine},
		{name: "pod/NAME and the container", args: []string{"logs", "pod/web", "-c", "app"}, wantStdout: helloServeLine},
		{name: "previous instance, tail", args: []string{"logs", "web", "--previous", "--tail", "2"}, wantStdout: "ZZ2=two\nZZ3=three\n"},
		{name: "limit bytes", args: []string{"logs", "web", "-p", "--tail=1", "--limit-bytes", "4"}, wantStdout: "ZZ3="},
		{name: "timestamps", args: []string{"logs", "web", "--timestamps"}, wantStdout: `^\d{4}-\d\d-\d\dT\S+Z hello listening on :8080\n$`},
		{name: "since", args: []string{"logs", "web", "--since", "1h"}, wantStdout: helloServeLine},
		{name: "follow until the container stops", args: []string{"logs", "slow", "-f"}, wantStdout: "exiting with 0\n"},
		{name: "unknown container", args: []string{"logs", "web", "-c", "nope"}, wantCode: 1,
			wantStderr: `error: container "nope" of pod default/web not found on this node`},
		{name: "no previous instance", args: []string{"logs", "slow", "--previous"}, wantCode: 1,
			wantStderr: `error: no previous terminated instance of container "app" of pod default/slow`},
		{name: "no pod", args: []string{"logs"}, wantCode: 1, wantStderr: "logs takes one POD (or pod/POD)"},
		{name: "not a pod", args: []string{"logs", "deploy/web"}, wantCode: 1, wantStderr: `"deploy/web": only pods have logs`},
		{name: "bad tail", args: []string{"logs", "web", "--tail", "-2"}, wantCode: 1, wantStderr: "--tail -2: want a number of lines, or -1 for all"},
		{name: "bad since", args: []string{"logs", "web", "--since", "0s"}, wantCode: 1, wantStderr: "--since 0s: want a positive duration"},
		{name: "bad limit", args: []string{"logs", "web", "--limit-bytes", "0"}, wantCode: 1, wantStderr: "--limit-bytes 0: want a positive number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, nil, "", append([]string{"--kubeconfig", kc}, tc.args...)...)
			if r.code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s", r.code, tc.wantCode, r)
			}
			if strings.HasPrefix(tc.wantStdout, "^") {
				if !regexp.MustCompile(tc.wantStdout).MatchString(r.stdout) {
					t.Fatalf("got stdout %q, want it to match %s", r.stdout, tc.wantStdout)
				}
			} else if r.stdout != tc.wantStdout {
				t.Fatalf("got stdout %q, want %q", r.stdout, tc.wantStdout)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("got stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}

	t.Run("Ctrl-C ends a followed log", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout syncBuffer
		var stderr bytes.Buffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"--kubeconfig", kc, "logs", "-f", "web"}, strings.NewReader(""), &stdout, &stderr)
		}()
		testutil.Eventually(t, 20*time.Second, func() string {
			if stdout.String() != helloServeLine {
				return "the followed log has not shown the server's line; stdout: " + stdout.String()
			}
			return ""
		})
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("got exit %d after Ctrl-C, want 0; stderr: %s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the followed log did not end after Ctrl-C")
		}
	})
}
