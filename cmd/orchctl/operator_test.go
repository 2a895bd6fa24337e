package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/server/api/apitest"
)

func TestRaftListPeers(t *testing.T) {
	env := apitest.Start(t)
	t.Run("table", func(t *testing.T) {
		r := mustSucceed(t, env, "", "operator", "raft", "list-peers")
		got := lines(r.stdout)
		if len(got) != 2 {
			t.Fatalf("got %d lines, want a header and one peer\n%s", len(got), r.stdout)
		}
		if !regexp.MustCompile(`^NAME {5}ADDRESS {3,}STATE {4}VOTER$`).MatchString(got[0]) {
			t.Fatalf("got header %q, want NAME ADDRESS STATE VOTER aligned", got[0])
		}
		if !regexp.MustCompile(`^memory   \S+   leader   true$`).MatchString(got[1]) {
			t.Fatalf("got row %q, want the in-memory store as the voting leader", got[1])
		}
	})
	t.Run("json", func(t *testing.T) {
		r := mustSucceed(t, env, "", "operator", "raft", "list-peers", "-o", "json")
		var peers []raftPeer
		if err := json.Unmarshal([]byte(r.stdout), &peers); err != nil {
			t.Fatalf("got %v parsing %q, want a JSON array", err, r.stdout)
		}
		if len(peers) != 1 || peers[0].Name != "memory" || peers[0].State != "leader" || !peers[0].Voter {
			t.Fatalf("got %+v, want one voting leader named memory", peers)
		}
	})
}

func TestRaftErrors(t *testing.T) {
	env := apitest.Start(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "remove an unknown peer", args: []string{"operator", "raft", "remove-peer", "nope"}, want: `"nope" not found`},
		{name: "transfer to an unknown peer", args: []string{"operator", "raft", "transfer-leadership", "--to", "nope"}, want: `"nope" not found`},
		{name: "remove-peer without a name", args: []string{"operator", "raft", "remove-peer"}, want: "remove-peer takes one NAME"},
		{name: "bad output", args: []string{"operator", "raft", "list-peers", "-o", "yaml"}, want: `--output "yaml": want table or json`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", tc.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("got %s, want exit 1 and %q", r, tc.want)
			}
		})
	}
}

func TestSnapshotSaveRestore(t *testing.T) {
	env := apitest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.snap")
	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, cm("before"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := mustSucceed(t, env, "", "operator", "snapshot", "save", file)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := "wrote " + itoa(int32(st.Size())) + " bytes to " + file; strings.TrimSpace(r.stdout) != want || st.Size() == 0 {
		t.Fatalf("got %q and a %d-byte file, want %q", r.stdout, st.Size(), want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("got %d files in the directory, want only the snapshot (no temporary file left)", len(entries))
	}

	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, cm("after"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = mustSucceed(t, env, "", "operator", "snapshot", "restore", file)
	if !strings.Contains(r.stdout, "restored the cluster state from "+file) {
		t.Fatalf("got %q, want it to say what was restored", r.stdout)
	}
	if _, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "before", metav1.GetOptions{}); err != nil {
		t.Fatalf("got %v, want configmap before restored", err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "after", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("got %v, want configmap after gone with the restore", err)
	}

	errCases := []struct {
		name string
		file string
		want string
	}{
		{name: "damaged file", file: writeFile(t, dir, "damaged.snap", "not a snapshot at all"), want: "bad snapshot"},
		{name: "empty file", file: writeFile(t, dir, "empty.snap", ""), want: "is empty"},
		{name: "missing file", file: filepath.Join(dir, "missing.snap"), want: "no such file"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := orchctl(t, env, "", "operator", "snapshot", "restore", tc.file)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("got %s, want exit 1 and %q", r, tc.want)
			}
		})
	}
	t.Run("save into a missing directory", func(t *testing.T) {
		r := orchctl(t, env, "", "operator", "snapshot", "save", filepath.Join(dir, "no", "such", "dir", "x.snap"))
		if r.code != 1 || !strings.Contains(r.stderr, "snapshot file:") {
			t.Fatalf("got %s, want exit 1 and a snapshot file error", r)
		}
	})
}
