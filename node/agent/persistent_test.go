package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeClaims is a claimLookup over fixed objects.
type fakeClaims struct {
	claims map[string]*corev1.PersistentVolumeClaim // "ns/name"
	pvs    map[string]*corev1.PersistentVolume
}

func (f fakeClaims) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	if c, ok := f.claims[ns+"/"+name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), name)
}

func (f fakeClaims) volume(name string) (*corev1.PersistentVolume, error) {
	if pv, ok := f.pvs[name]; ok {
		return pv, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumes"), name)
}

func boundClaim(name, volume string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("claim-" + name)},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: volume},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
}

func nodeVolume(name, node string, claim *corev1.PersistentVolumeClaim, src corev1.PersistentVolumeSource, provisioned bool) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeSource: src,
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: labelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	if claim != nil {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID}
	}
	if provisioned {
		pv.Annotations = map[string]string{annProvisionedBy: localProvisioner}
	}
	return pv
}

func TestClaimVolumes(t *testing.T) {
	manual := t.TempDir()
	local := func(p string) corev1.PersistentVolumeSource {
		return corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: p}}
	}
	data := boundClaim("data", "pvc-1")
	pending := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: "shop", UID: "p"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	elsewhere := boundClaim("elsewhere", "pvc-2")
	byHand := boundClaim("byhand", "manual")
	stolen := boundClaim("stolen", "pvc-3")
	lookup := fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"shop/data": data, "shop/pending": pending, "shop/elsewhere": elsewhere, "shop/byhand": byHand, "shop/stolen": stolen},
		pvs: map[string]*corev1.PersistentVolume{
			"pvc-1":  nodeVolume("pvc-1", "node-a", data, local("/var/lib/orch/volumes/pvc-1"), true),
			"pvc-2":  nodeVolume("pvc-2", "node-b", elsewhere, local("/var/lib/orch/volumes/pvc-2"), true),
			"manual": nodeVolume("manual", "node-a", byHand, local(manual), false),
			"pvc-3":  nodeVolume("pvc-3", "node-a", data, local("/var/lib/orch/volumes/pvc-3"), true),
		},
	}
	cases := []struct {
		name, claim string
		readOnly    bool
		wantPath    string // relative to the data dir, or absolute
		wantErr     string
	}{
		{name: "provisioned volume", claim: "data", wantPath: "volumes/pvc-1"},
		{name: "read-only claim", claim: "data", readOnly: true, wantPath: "volumes/pvc-1"},
		{name: "volume made by hand", claim: "byhand", wantPath: manual},
		{name: "missing claim", claim: "nope", wantErr: `persistentvolumeclaim "nope" not found`},
		{name: "unbound claim", claim: "pending", wantErr: `persistentvolumeclaim "pending" is not bound yet (Pending)`},
		{name: "volume on another node", claim: "elsewhere", wantErr: `persistentvolume "pvc-2" is on node node-b, not on this node (node-a)`},
		{name: "volume bound to another claim", claim: "stolen", wantErr: `persistentvolume "pvc-3" is not bound to claim "stolen"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := newVolumeManager(dir)
			m.claims, m.nodeName = lookup, "node-a"
			pod := volumePod([]corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: tc.claim, ReadOnly: tc.readOnly}}}},
				[]corev1.VolumeMount{{Name: "v", MountPath: "/data"}})
			res := m.setUp(pod, testConfigs(), nil)
			if tc.wantErr != "" {
				want := `MountVolume.SetUp failed for volume "v" : ` + tc.wantErr
				if len(res.failed) != 1 || res.failed[0] != want {
					t.Fatalf("got failures %q, want %q", res.failed, want)
				}
				return
			}
			if len(res.failed) > 0 {
				t.Fatal(res.failed)
			}
			want := tc.wantPath
			if !filepath.IsAbs(want) {
				want = filepath.Join(dir, want)
			}
			mounts, err := mountsFor(&pod.Spec.Containers[0], res.volumes, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(mounts) != 1 || mounts[0].Source != want || mounts[0].Target != "/data" || mounts[0].ReadOnly != tc.readOnly {
				t.Fatalf("got mounts %+v, want %s at /data read-only %v", mounts, want, tc.readOnly)
			}
			if st, err := os.Stat(want); err != nil || !st.IsDir() {
				t.Fatalf("volume directory: %v", err)
			}
		})
	}
}

func TestProvisionedVolumeOutlivesPodsUntilDeleted(t *testing.T) {
	dir := t.TempDir()
	data := boundClaim("data", "pvc-1")
	lookup := fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"shop/data": data},
		pvs: map[string]*corev1.PersistentVolume{"pvc-1": nodeVolume("pvc-1", "node-a", data,
			corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/orch/volumes/pvc-1"}}, true)},
	}
	m := newVolumeManager(dir)
	m.claims, m.nodeName = lookup, "node-a"
	pod := volumePod([]corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}, nil)
	res := m.setUp(pod, testConfigs(), nil)
	if len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	stamp := filepath.Join(res.volumes["v"].path, "stamp")
	if err := os.WriteFile(stamp, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The pod goes; a new pod of the same claim finds the data.
	if err := m.tearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	pod2 := pod.DeepCopy()
	pod2.UID = "u-2"
	if res := m.setUp(pod2, testConfigs(), nil); len(res.failed) > 0 {
		t.Fatal(res.failed)
	}
	if b, err := os.ReadFile(stamp); err != nil || string(b) != "first" {
		t.Fatalf("got %q, %v; want the data kept across pods", b, err)
	}
	// Only a deleted volume's directory goes.
	if err := os.MkdirAll(filepath.Join(dir, "volumes", "pvc-gone"), 0o755); err != nil {
		t.Fatal(err)
	}
	exists := func(name string) bool { _, ok := lookup.pvs[name]; return ok }
	if err := m.removePersistent(exists); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "volumes"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "pvc-1" {
		t.Fatalf("got volume directories %v, want only pvc-1", names)
	}
}
