package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rt "orch.dev/orch/node/runtime"
)

func TestPodDNS(t *testing.T) {
	search := []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	for _, tc := range []struct {
		name       string
		clusterDNS string
		policy     corev1.DNSPolicy
		hostNet    bool
		config     *corev1.PodDNSConfig
		want       rt.SandboxSpec
		own        bool // the agent writes the pod's resolv.conf
	}{
		{name: "default policy is ClusterFirst", clusterDNS: "10.42.0.1", own: true,
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: search, DNSOptions: []string{"ndots:5"}}},
		{name: "host network falls back to the host", clusterDNS: "10.42.0.1", policy: corev1.DNSClusterFirst, hostNet: true},
		{name: "ClusterFirstWithHostNet", clusterDNS: "10.42.0.1", policy: corev1.DNSClusterFirstWithHostNet, hostNet: true, own: true,
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: search, DNSOptions: []string{"ndots:5"}}},
		{name: "Default uses the host", clusterDNS: "10.42.0.1", policy: corev1.DNSDefault},
		{name: "no cluster DNS running", policy: corev1.DNSClusterFirst},
		{name: "None takes dnsConfig alone", clusterDNS: "10.42.0.1", policy: corev1.DNSNone, own: true,
			config: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"example.com"}, Options: []corev1.PodDNSConfigOption{{Name: "edns0"}}},
			want:   rt.SandboxSpec{DNS: []string{"1.1.1.1"}, DNSSearch: []string{"example.com"}, DNSOptions: []string{"edns0"}}},
		{name: "dnsConfig adds to ClusterFirst and overrides an option", clusterDNS: "10.42.0.1", own: true,
			config: &corev1.PodDNSConfig{Searches: []string{"corp.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}},
			want: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: append(append([]string(nil), search...), "corp.example"),
				DNSOptions: []string{"ndots:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{clusterDNS: tc.clusterDNS}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team"},
				Spec: corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNet, DNSConfig: tc.config}}
			var got rt.SandboxSpec
			if own := a.podDNS(pod, &got); own != tc.own {
				t.Errorf("podDNS says the agent writes resolv.conf: %v, want %v", own, tc.own)
			}
			if !reflect.DeepEqual(got.DNS, tc.want.DNS) || !reflect.DeepEqual(got.DNSSearch, tc.want.DNSSearch) || !reflect.DeepEqual(got.DNSOptions, tc.want.DNSOptions) {
				t.Errorf("got DNS %v search %v options %v, want %v %v %v", got.DNS, got.DNSSearch, got.DNSOptions, tc.want.DNS, tc.want.DNSSearch, tc.want.DNSOptions)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec rt.SandboxSpec
		want string
	}{
		{name: "cluster first",
			spec: rt.SandboxSpec{DNS: []string{"10.42.0.1"}, DNSSearch: []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local"}, DNSOptions: []string{"ndots:5"}},
			want: "nameserver 10.42.0.1\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{name: "more than three nameservers keep the first three",
			spec: rt.SandboxSpec{DNS: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}},
			want: "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"},
		{name: "options only", spec: rt.SandboxSpec{DNSOptions: []string{"edns0", "ndots:2"}},
			want: "options edns0 ndots:2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(resolvConf(&tc.spec))
			_, body, _ := strings.Cut(got, "\n") // the first line is a comment
			if body != tc.want {
				t.Errorf("resolv.conf:\n%s\nwant after the comment line:\n%s", got, tc.want)
			}
		})
	}
}

func TestResolvConfMountFollowsTheFile(t *testing.T) {
	a := &Agent{volumes: newVolumeManager(t.TempDir())}
	if _, ok := a.resolvConfMount("u1"); ok {
		t.Fatal("a pod without a written resolv.conf got a mount")
	}
	path, err := a.writeResolvConf("u1", &rt.SandboxSpec{DNS: []string{"10.42.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := a.resolvConfMount("u1")
	if !ok || m.Source != path || m.Target != "/etc/resolv.conf" || m.ReadOnly {
		t.Fatalf("mount %+v, %v; want %s at /etc/resolv.conf", m, ok, path)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "nameserver 10.42.0.1\n") {
		t.Fatalf("resolv.conf %q, %v", b, err)
	}
}

func TestDataDirIsMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	a, err := New(Config{Name: "n1", DataDir: "state/agent"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := a.writeResolvConf("u1", &rt.SandboxSpec{DNS: []string{"10.42.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	// The engine binds absolute paths only.
	if !filepath.IsAbs(path) || !filepath.IsAbs(a.volumes.volumeDir("u1", pluginEmptyDir, "v")) {
		t.Fatalf("resolv.conf at %q, volumes under %q: want absolute paths", path, a.volumes.root)
	}
}
