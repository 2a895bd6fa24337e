package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

// TestStatefulSetVolumeKeepsDataAcrossPods: a StatefulSet pod's claim is
// provisioned on the node the pod lands on, its replacement comes back to
// that node and finds the data, another pod of the same claim is placed
// there too, and the data goes with the claim.
func TestStatefulSetVolumeKeepsDataAcrossPods(t *testing.T) {
	nc := startNodes(t, 2)
	ctx := context.Background()
	l := map[string]string{"app": "stamp"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "stamp", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: "stamp", Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{{
					Name: "app", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "date >> /data/stamp; exec sleep 3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
				},
			}},
		},
	}
	if _, err := nc.cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := nc.waitPod(t, "default", "stamp-0", 60*time.Second, phaseIs(corev1.PodRunning))
	node := first.Spec.NodeName

	pvc, err := nc.cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-stamp-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Annotations["volume.kubernetes.io/selected-node"] != node {
		t.Fatalf("claim %s: phase %s, selected node %q; want Bound on %s", pvc.Name, pvc.Status.Phase, pvc.Annotations["volume.kubernetes.io/selected-node"], node)
	}
	pvName := pvc.Spec.VolumeName
	// The data is in the agent's data dir.
	var hostDir string
	for _, a := range nc.agents {
		if a.name == node {
			hostDir = filepath.Join(a.dir, "volumes", pvName)
		}
	}
	stampLines := func(pod string) []string {
		var lines []string
		testutil.Eventually(t, 30*time.Second, func() string {
			out, code := nc.execOut(t, pod, "app", "cat", "/data/stamp")
			if code != 0 {
				return fmt.Sprintf("cat /data/stamp in %s: exit %d: %s", pod, code, out)
			}
			lines = strings.Split(strings.TrimSpace(out), "\n")
			return ""
		})
		return lines
	}
	before := stampLines("stamp-0")
	if len(before) != 1 {
		t.Fatalf("got stamp %q, want one line", before)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "stamp")); err != nil || strings.TrimSpace(string(b)) != before[0] {
		t.Fatalf("host file %s: %q, %v; want the pod's stamp", hostDir, b, err)
	}

	// The pod goes; its replacement has the same name, node and data.
	if err := nc.cs.CoreV1().Pods("default").Delete(ctx, "stamp-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	second := nc.waitPod(t, "default", "stamp-0", 60*time.Second, func(p *corev1.Pod) string {
		if p.UID == first.UID {
			return "stamp-0 not replaced yet"
		}
		return phaseIs(corev1.PodRunning)(p)
	})
	if second.Spec.NodeName != node {
		t.Fatalf("replacement on %s, want %s where its volume is", second.Spec.NodeName, node)
	}
	after := stampLines("stamp-0")
	if len(after) != 2 || after[0] != before[0] {
		t.Fatalf("got stamp %q after the restart, want %q plus a new line", after, before[0])
	}

	// Another pod of the same claim goes to the volume's node.
	reader := helloPod("reader", corev1.Container{Name: "app", Image: testutil.BusyboxImage, Command: []string{"sleep", "3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}}})
	reader.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	reader.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-stamp-0", ReadOnly: true}}}}
	nc.createPod(t, reader)
	r := nc.waitPod(t, "default", "reader", 60*time.Second, phaseIs(corev1.PodRunning))
	if r.Spec.NodeName != node {
		t.Fatalf("reader on %s, want %s where the volume is", r.Spec.NodeName, node)
	}
	if got := stampLines("reader"); len(got) != 2 {
		t.Fatalf("reader sees stamp %q, want two lines", got)
	}
	if out, code := nc.execOut(t, "reader", "app", "sh", "-c", "echo x > /data/other"); code == 0 {
		t.Fatalf("read-only claim was writable: %s", out)
	}

	// The claim in use stays; once its pods are gone, it goes and so do its
	// volume and data.
	if err := nc.cs.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data-stamp-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nc.cs.AppsV1().StatefulSets("default").Delete(ctx, "stamp", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nc.cs.CoreV1().Pods("default").Delete(ctx, "reader", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, func() string {
		if _, err := nc.cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("volume %s still exists (%v)", pvName, err)
		}
		if _, err := os.Stat(hostDir); err == nil {
			return "volume directory " + hostDir + " still exists"
		}
		return ""
	})
}

// TestVolumeMadeBeforehand: an operator makes a local PersistentVolume on
// one node's disk and a claim of no class; the claim binds to it, and a
// pod of the claim goes to that node and writes into the directory.
func TestVolumeMadeBeforehand(t *testing.T) {
	nc := startNodes(t, 2)
	ctx := context.Background()
	target := nc.agents[1].name
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "disk-" + target},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{target}}},
			}}}},
		}}
	if _, err := nc.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = nc.cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(""),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if _, err := nc.cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		got, err := nc.cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "manual", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got.Status.Phase != corev1.ClaimBound || got.Spec.VolumeName != pv.Name {
			return fmt.Sprintf("claim %s, volume %q; want Bound to %s", got.Status.Phase, got.Spec.VolumeName, pv.Name)
		}
		return ""
	})
	p := helloPod("manual-writer", corev1.Container{Name: "w", Image: testutil.BusyboxImage,
		Command:      []string{"sh", "-c", "echo kept > /data/note; sleep 3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}})
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "manual"}}}}
	nc.createPod(t, p)
	running := nc.waitPod(t, "default", "manual-writer", 90*time.Second, phaseIs(corev1.PodRunning))
	if running.Spec.NodeName != target {
		t.Fatalf("pod on %s, want %s where the volume is", running.Spec.NodeName, target)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		b, err := os.ReadFile(filepath.Join(dir, "note"))
		if err != nil || strings.TrimSpace(string(b)) != "kept" {
			return fmt.Sprintf("%s/note: %q, %v; want kept", dir, b, err)
		}
		return ""
	})
}
