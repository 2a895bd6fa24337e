package endpoint_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/endpoint/endpointtest"
	"orch.dev/orch/node/runtime"
)

const serveLine = "hello listening on :8080\n"

// startLogPods starts pod web, whose container app ran `hello env` once
// (now its previous instance) and now serves, and waits for the server's
// first line.
func startLogPods(t *testing.T, f *endpointtest.Fixture, srv *testServer) {
	t.Helper()
	first := f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"env"}, Env: []string{"ZZ1=one", "ZZ2=two", "ZZ3=three"}})
	f.WaitExit(t, first)
	f.Run(t, "default", "web", "app", runtime.ContainerSpec{Args: []string{"serve"}})
	testutil.Eventually(t, 30*time.Second, func() string {
		if code, body := srv.get(t, "/containerLogs/default/web/app", endpointtest.Token); code != http.StatusOK || body != serveLine {
			return "the server has not written its first line: " + body
		}
		return ""
	})
}

func TestLogs(t *testing.T) {
	f := endpointtest.New(t)
	srv := serve(t, f, nil, endpointtest.Token)
	startLogPods(t, f, srv)
	cases := []struct {
		name     string
		path     string
		wantCode int
		want     string // the body, or for errors a part of the message
		wantRE   string // instead of want: the whole body matches
	}{
		{name: "current instance", path: "/containerLogs/default/web/app", want: serveLine},
		{name: "previous instance", path: "/containerLogs/default/web/app?previous=true", wantRE: `(?s)^[A-Z]+=.*\nZZ1=one\nZZ2=two\nZZ3=three\n$`},
		{name: "tail", path: "/containerLogs/default/web/app?previous=true&tailLines=2", want: "ZZ2=two\nZZ3=three\n"},
		{name: "tail 0", path: "/containerLogs/default/web/app?previous=true&tailLines=0", want: ""},
		{name: "limit bytes", path: "/containerLogs/default/web/app?previous=true&tailLines=1&limitBytes=4", want: "ZZ3="},
		{name: "timestamps", path: "/containerLogs/default/web/app?timestamps=true", wantRE: `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z hello listening on :8080\n$`},
		{name: "since an hour ago", path: "/containerLogs/default/web/app?sinceSeconds=3600", want: serveLine},
		{name: "since a time", path: "/containerLogs/default/web/app?sinceTime=2000-01-01T00:00:00Z", want: serveLine},
		{name: "unknown container", path: "/containerLogs/default/web/nope", wantCode: http.StatusNotFound,
			want: `container "nope" of pod default/web not found on this node`},
		{name: "unknown pod", path: "/containerLogs/other/web/app", wantCode: http.StatusNotFound, want: `container "app" of pod other/web not found`},
		{name: "no previous instance", path: "/containerLogs/default/web/nope?previous=true", wantCode: http.StatusNotFound,
			want: `no previous terminated instance of container "nope" of pod default/web`},
		{name: "negative tail", path: "/containerLogs/default/web/app?tailLines=-1", wantCode: http.StatusBadRequest, want: `tailLines="-1"`},
		{name: "since zero seconds", path: "/containerLogs/default/web/app?sinceSeconds=0", wantCode: http.StatusBadRequest, want: `sinceSeconds="0"`},
		{name: "bad follow", path: "/containerLogs/default/web/app?follow=maybe", wantCode: http.StatusBadRequest, want: `follow="maybe": want true or false`},
		{name: "bad limit", path: "/containerLogs/default/web/app?limitBytes=lots", wantCode: http.StatusBadRequest, want: `limitBytes="lots"`},
		{name: "bad time", path: "/containerLogs/default/web/app?sinceTime=yesterday", wantCode: http.StatusBadRequest, want: "sinceTime=yesterday"},
		{name: "two starting points", path: "/containerLogs/default/web/app?sinceSeconds=5&sinceTime=2000-01-01T00:00:00Z", wantCode: http.StatusBadRequest,
			want: "give at most one"},
		{name: "no container in the path", path: "/containerLogs/default/web", wantCode: http.StatusNotFound, want: "no route for GET /containerLogs/default/web"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantCode == 0 {
				tc.wantCode = http.StatusOK
			}
			code, body := srv.get(t, tc.path, endpointtest.Token)
			if code != tc.wantCode {
				t.Fatalf("got %d %q, want %d", code, body, tc.wantCode)
			}
			switch {
			case code != http.StatusOK:
				if msg := statusMessage(t, body, code); !strings.Contains(msg, tc.want) {
					t.Fatalf("got message %q, want it to contain %q", msg, tc.want)
				}
			case tc.wantRE != "":
				if !regexp.MustCompile(tc.wantRE).MatchString(body) {
					t.Fatalf("got %q, want it to match %s", body, tc.wantRE)
				}
			case body != tc.want:
				t.Fatalf("got %q, want %q", body, tc.want)
			}
		})
	}
}

func TestFollowLogs(t *testing.T) {
	f := endpointtest.New(t)
	srv := serve(t, f, nil, endpointtest.Token)
	follow := func(t *testing.T, ctx context.Context, path string) io.ReadCloser {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+endpointtest.Token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("got %d %s, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp.Body
	}

	t.Run("lines arrive while the container runs", func(t *testing.T) {
		id := f.Run(t, "default", "server", "app", runtime.ContainerSpec{Args: []string{"serve"}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		body := follow(t, ctx, "/containerLogs/default/server/app?follow=true")
		defer body.Close()
		// The server never exits: its line can only come from a flush.
		line, err := bufio.NewReader(body).ReadString('\n')
		if err != nil || line != serveLine {
			t.Fatalf("got %q %v, want %q while the server runs", line, err, serveLine)
		}
		// The caller leaves: the read ends at once, with nothing more.
		// (Whether it ends with an error or a clean EOF depends on whether
		// the transport saw the cancel before the stream's end: both
		// happen, so only the outcome is checked.)
		cancel()
		if rest, _ := io.ReadAll(body); len(rest) > 0 {
			t.Fatalf("got %q more after the caller went away, want nothing", rest)
		}
		if st, err := f.Runtime.InspectContainer(context.Background(), id); err != nil || st.State != runtime.StateRunning {
			t.Fatalf("the container is %v (%v) after the caller left its log; want it running", st.State, err)
		}
	})

	t.Run("the stream ends with the container", func(t *testing.T) {
		id := f.Run(t, "default", "slow", "app", runtime.ContainerSpec{Args: []string{"exit", "0", "2s"}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		body := follow(t, ctx, "/containerLogs/default/slow/app?follow=1")
		defer body.Close()
		got, err := io.ReadAll(body)
		if err != nil || string(got) != "exiting with 0\n" {
			t.Fatalf("got %q %v, want the container's one line and the end", got, err)
		}
		if c := f.WaitExit(t, id); c.ExitCode != 0 {
			t.Fatalf("got exit code %d, want 0", c.ExitCode)
		}
	})
}
