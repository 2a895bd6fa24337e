package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/internal/token"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/api"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/encryption"
)

// Distinctive values: found anywhere they should not be, they fail a test.
const (
	dataValue       = "orch-data-plaintext-7f3a9c"
	stringDataValue = "orch-stringdata-plaintext-91c2e4"
)

// forbidden are the forms a secret value may take in stored bytes.
func forbidden() []string {
	var out []string
	for _, v := range []string{dataValue, stringDataValue} {
		out = append(out, v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)))
	}
	return out
}

func leaks(b []byte) []string {
	var found []string
	for _, f := range forbidden() {
		if bytes.Contains(b, []byte(f)) {
			found = append(found, f)
		}
	}
	return found
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func newSecret(name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "db"}},
		Data:       map[string][]byte{"password": []byte(dataValue)},
		StringData: map[string]string{"token": stringDataValue},
	}
}

func rawSecret(t *testing.T, st raftstore.Store, ns, name string) *raftstore.KeyValue {
	t.Helper()
	kv, _, err := st.Get(testCtx(t), "/core/secrets/"+ns+"/"+name, raftstore.ReadOptions{Linearizable: true})
	if err != nil || kv == nil {
		t.Fatalf("raw get %s/%s: got %v, %v", ns, name, kv, err)
	}
	return kv
}

func checkValues(t *testing.T, what string, s *corev1.Secret, password string) {
	t.Helper()
	if got := string(s.Data["password"]); got != password {
		t.Errorf("%s: got password %q, want %q", what, got, password)
	}
	if got := string(s.Data["token"]); got != stringDataValue {
		t.Errorf("%s: got token %q, want the stringData value merged into data", what, got)
	}
	if s.StringData != nil {
		t.Errorf("%s: got stringData %v, want it folded into data", what, s.StringData)
	}
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed, want an event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return watch.Event{}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	env := apitest.Start(t)
	c := testCtx(t)
	secrets := env.Client.CoreV1().Secrets("default")
	all, err := secrets.Watch(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	filtered, err := secrets.Watch(c, metav1.ListOptions{LabelSelector: "app=db", FieldSelector: "type=Opaque"})
	if err != nil {
		t.Fatal(err)
	}
	defer filtered.Stop()

	created, err := secrets.Create(c, newSecret("db"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "create answer", created, dataValue)
	kv := rawSecret(t, env.Store, "default", "db")
	if !encryption.IsSealed(kv.Value) {
		t.Fatalf("got stored value %.60q, want it sealed", kv.Value)
	}
	if l := leaks(kv.Value); l != nil {
		t.Fatalf("got %q in the stored value", l)
	}

	got, err := secrets.Get(c, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "get", got, dataValue)
	for _, opts := range []metav1.ListOptions{{}, {LabelSelector: "app=db"}, {FieldSelector: "type=Opaque"}, {FieldSelector: "metadata.name=db"}, {Limit: 1}} {
		list, err := secrets.List(c, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 {
			t.Fatalf("list %+v: got %d items, want 1", opts, len(list.Items))
		}
		checkValues(t, fmt.Sprintf("list %+v", opts), &list.Items[0], dataValue)
	}

	got.Data["password"] = []byte(dataValue + "-2")
	if _, err := secrets.Update(c, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(c, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]watch.Interface{"all": all, "filtered": filtered} {
		for _, want := range []struct {
			typ      watch.EventType
			password string
		}{{watch.Added, dataValue}, {watch.Modified, dataValue + "-2"}, {watch.Deleted, dataValue + "-2"}} {
			ev := nextEvent(t, w)
			s, ok := ev.Object.(*corev1.Secret)
			if ev.Type != want.typ || !ok {
				t.Fatalf("%s watch: got %s %T, want %s Secret", name, ev.Type, ev.Object, want.typ)
			}
			checkValues(t, fmt.Sprintf("%s watch %s", name, ev.Type), s, want.password)
		}
	}
}

// Secrets stored before encryption was on are plaintext: they read as
// they are and are sealed on their next write.
func TestSecretsStoredInPlaintextBefore(t *testing.T) {
	env := apitest.Start(t)
	c := testCtx(t)
	old := fmt.Sprintf(`{"kind":"Secret","apiVersion":"v1","metadata":{"name":"old","namespace":"default","uid":"4b8d3a52-0000-4000-8000-000000000001","creationTimestamp":"2025-01-01T00:00:00Z"},"data":{"password":%q,"token":%q},"type":"Opaque"}`,
		base64.StdEncoding.EncodeToString([]byte(dataValue)), base64.StdEncoding.EncodeToString([]byte(stringDataValue)))
	if _, err := env.Store.Txn(c, &raftstore.Txn{Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: "/core/secrets/default/old", Value: []byte(old)}}}); err != nil {
		t.Fatal(err)
	}
	s, err := env.Client.CoreV1().Secrets("default").Get(c, "old", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "get", s, dataValue)
	s.Labels = map[string]string{"touched": "yes"}
	if _, err := env.Client.CoreV1().Secrets("default").Update(c, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if kv := rawSecret(t, env.Store, "default", "old"); !encryption.IsSealed(kv.Value) || leaks(kv.Value) != nil {
		t.Fatalf("got stored value %.60q after a write, want it sealed", kv.Value)
	}
}

type rotateResult struct {
	KeyID       string   `json:"keyID"`
	Reencrypted int      `json:"reencrypted"`
	Retired     []string `json:"retired"`
	Resumed     bool     `json:"resumed"`
}

func rotate(t *testing.T, cfg *rest.Config) rotateResult {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.CoreV1().RESTClient().Post().AbsPath("/orch/v1/secrets/rotate-key").DoRaw(testCtx(t))
	if err != nil {
		t.Fatalf("rotate-key: %v: %s", err, raw)
	}
	var res rotateResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("rotate-key answer %s: %v", raw, err)
	}
	return res
}

func keyIDOf(t *testing.T, st raftstore.Store, ns, name string) string {
	t.Helper()
	id, ok := encryption.KeyID(rawSecret(t, st, ns, name).Value)
	if !ok {
		t.Fatalf("%s/%s: stored value is not sealed", ns, name)
	}
	return id
}

func TestRotateKey(t *testing.T) {
	env := apitest.Start(t)
	c := testCtx(t)
	secrets := env.Client.CoreV1().Secrets("default")
	for _, n := range []string{"a", "b", "c"} {
		if _, err := secrets.Create(c, newSecret(n), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := secrets.List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldKey := keyIDOf(t, env.Store, "default", "a")
	w, err := secrets.Watch(c, metav1.ListOptions{ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	res := rotate(t, env.Config)
	if res.Reencrypted != 3 || res.KeyID == oldKey || len(res.Retired) != 1 || res.Retired[0] != oldKey || res.Resumed {
		t.Fatalf("got %+v, want 3 re-encrypted with a new key and %s retired", res, oldKey)
	}
	for _, n := range []string{"a", "b", "c"} {
		if id := keyIDOf(t, env.Store, "default", n); id != res.KeyID {
			t.Errorf("%s: got key %s, want %s", n, id, res.KeyID)
		}
		s, err := secrets.Get(c, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "get after rotation", s, dataValue)
	}
	// A watch that was open sees the rewrites as modifications.
	for range 3 {
		ev := nextEvent(t, w)
		s, ok := ev.Object.(*corev1.Secret)
		if ev.Type != watch.Modified || !ok {
			t.Fatalf("got %s %v, want MODIFIED", ev.Type, ev.Object)
		}
		checkValues(t, "watch during rotation", s, dataValue)
	}
	// History sealed with the retired key is gone, as if compacted: a
	// watch from before the secrets existed must list again.
	old, err := secrets.Watch(c, metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	for {
		ev := nextEvent(t, old)
		if ev.Type == watch.Error {
			if st, ok := ev.Object.(*metav1.Status); !ok || st.Code != 410 {
				t.Fatalf("got error %v, want 410 Gone", ev.Object)
			}
			break
		}
		if s, ok := ev.Object.(*corev1.Secret); ok {
			t.Fatalf("got %s of %s from history sealed with a retired key, want 410 Gone", ev.Type, s.Name)
		}
	}
	// Again: a new key, everything moved.
	res2 := rotate(t, env.Config)
	if res2.Reencrypted != 3 || res2.KeyID == res.KeyID {
		t.Fatalf("got %+v, want 3 re-encrypted with another key", res2)
	}
}

// The raw files of a store on disk (Raft log, state database, a snapshot)
// never hold a Secret's value or a data key in the clear.
func TestSecretsNotInStoreFiles(t *testing.T) {
	env := apitest.StartOnDisk(t)
	c := testCtx(t)
	if _, err := env.Client.CoreV1().Secrets("default").Create(c, newSecret("db"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, err := env.Client.CoreV1().RESTClient().Get().AbsPath("/orch/v1/snapshot").DoRaw(c)
	if err != nil {
		t.Fatal(err)
	}
	keys := dataKeys(t, env.Store)
	files := map[string]func() []byte{
		"raft.db":  func() []byte { return readFile(t, filepath.Join(env.Dir, "raft.db")) },
		"state.db": func() []byte { return readFile(t, filepath.Join(env.Dir, "state.db")) },
		"snapshot": func() []byte { return snap },
	}
	for name, read := range files {
		// The secret is in the file (its key and its envelope), so the
		// test looks at the right bytes.
		testutil.Eventually(t, 10*time.Second, func() string {
			b := read()
			if !bytes.Contains(b, []byte("/core/secrets/default/db")) || !bytes.Contains(b, []byte(encryption.Header)) {
				return name + " has no sealed secret yet"
			}
			return ""
		})
		b := read()
		if l := leaks(b); l != nil {
			t.Errorf("%s: got %q in the file, want only ciphertext", name, l)
		}
		for id, k := range keys {
			if bytes.Contains(b, k) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(k))) {
				t.Errorf("%s: got data key %s in the clear", name, id)
			}
		}
	}
	old := keyIDOf(t, env.Store, "default", "db")
	res := rotate(t, env.Config)
	kvs, _, _, err := env.Store.List(c, "/core/secrets/", raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if bytes.Contains(kv.Value, []byte(old)) {
			t.Errorf("%s: got the retired key id %s in the stored value (now %s)", kv.Key, old, res.KeyID)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dataKeys opens the stored keyring with the token, as a server does.
func dataKeys(t *testing.T, st raftstore.Store) map[string][]byte {
	t.Helper()
	kv, _, err := st.Get(testCtx(t), encryption.KeysKey, raftstore.ReadOptions{Linearizable: true})
	if err != nil || kv == nil {
		t.Fatalf("keyring: got %v, %v", kv, err)
	}
	var stored struct {
		Keys []struct {
			ID     string `json:"id"`
			Sealed []byte `json:"sealed"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(kv.Value, &stored); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range stored.Keys {
		raw, err := token.Open(encryption.KEK(apitest.ClusterToken), k.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		out[k.ID] = raw
	}
	if len(out) == 0 {
		t.Fatal("got no data keys")
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// Refused writes name the keys at fault, never the values; neither do the
// server's logs or Events.
func TestSecretValuesNotInErrorsOrLogs(t *testing.T) {
	store, err := raftstore.OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var logs lockedBuffer
	srv := api.New(api.Config{
		Store: store, Operator: store,
		Authenticate: func(tok string) (string, bool) { return api.AdminUser, tok == "t" },
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SecretsKEK:   encryption.KEK("logs-test-cluster-token"),
	})
	c := testCtx(t)
	if err := srv.EnsureNamespace(c, "default"); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	cfg := &rest.Config{Host: hs.URL, BearerToken: "t", TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: -1}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	secrets := cs.CoreV1().Secrets("default")
	cases := []struct {
		name    string
		secret  *corev1.Secret
		wantKey string
	}{
		{name: "bad key", secret: &corev1.Secret{Data: map[string][]byte{"bad key": []byte(dataValue)}, StringData: map[string]string{"bad/key": stringDataValue}}, wantKey: "data[bad key]"},
		{name: "docker config not JSON", secret: &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":` + stringDataValue}}, wantKey: "data[.dockerconfigjson]"},
		{name: "docker config without auths", secret: &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"credsStore":"` + stringDataValue + `"}`}}, wantKey: "data[.dockerconfigjson]"},
		{name: "tls without key", secret: &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: []byte(dataValue)}}, wantKey: "data[tls.key]"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.secret.Name = fmt.Sprintf("bad%d", i)
			_, err := secrets.Create(c, tc.secret, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("got %q, want it to name %s", err, tc.wantKey)
			}
			if l := leaks([]byte(err.Error())); l != nil {
				t.Errorf("got %q in the error %q", l, err)
			}
		})
	}
	// An immutable secret refuses new data without quoting it.
	s := newSecret("frozen")
	s.Immutable = func() *bool { b := true; return &b }()
	if _, err := secrets.Create(c, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.StringData = map[string]string{"token": stringDataValue + "-new"}
	s.ResourceVersion = ""
	if _, err := secrets.Update(c, s, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || leaks([]byte(err.Error())) != nil {
		t.Errorf("got %v, want Invalid without the value", err)
	}
	rotate(t, cfg)
	events, err := cs.CoreV1().Events("").List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := json.Marshal(events)
	if l := leaks(eb); l != nil {
		t.Errorf("got %q in Events", l)
	}
	if !bytes.Contains(logs.Bytes(), []byte("rotated the secret data key")) {
		t.Fatalf("got logs %s, want the rotation logged (the test reads the right log)", logs.Bytes())
	}
	if l := leaks(logs.Bytes()); l != nil {
		t.Errorf("got %q in the server's logs", l)
	}
}
