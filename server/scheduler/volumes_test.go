package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/controller"
)

func withClaim(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v-" + name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
	}
}

func testClaim(name, volume string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  volume,
		},
	}
}

func testLocalPV(name, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/srv/" + name}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{expr("kubernetes.io/hostname", corev1.NodeSelectorOpIn, node)},
			}}}},
		},
	}
}

func TestFilterVolumeAffinity(t *testing.T) {
	pv := testLocalPV("v", "n2")
	tests := []struct {
		name     string
		affinity []*corev1.NodeSelector
		node     string
		want     string
	}{
		{name: "no volumes", node: "n1"},
		{name: "volume on the node", affinity: []*corev1.NodeSelector{pv.Spec.NodeAffinity.Required}, node: "n2"},
		{name: "volume elsewhere", affinity: []*corev1.NodeSelector{pv.Spec.NodeAffinity.Required}, node: "n1", want: reasonVolumeAffinity},
		{name: "selected node", affinity: []*corev1.NodeSelector{nodeSelectorForName("n1")}, node: "n1"},
		{name: "two volumes on two nodes", affinity: []*corev1.NodeSelector{nodeSelectorForName("n1"), pv.Spec.NodeAffinity.Required}, node: "n1", want: reasonVolumeAffinity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodInfo(makePod("p"))
			p.volumeAffinity = tc.affinity
			got := strings.Join(filterVolumeAffinity(p, nodeInfoOf(makeNode(tc.node))), ",")
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodsFollowTheirVolumes(t *testing.T) {
	c := startCluster(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		c.createNode(makeNode(n))
	}
	claims := c.env.Client.CoreV1().PersistentVolumeClaims("default")

	t.Run("missing claim", func(t *testing.T) {
		c.createPod(makePod("orphan", withClaim("missing")))
		_, msg := c.waitEvent("orphan", reasonFailedScheduling)
		if !strings.Contains(msg, `persistentvolumeclaim "missing" not found`) {
			t.Fatalf("got %q, want the missing claim named", msg)
		}
		// The claim appearing cures it.
		if _, err := claims.Create(c.ctx, testClaim("missing", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		node := c.waitBound("orphan")
		pvc, err := claims.Get(c.ctx, "missing", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pvc.Annotations[controller.AnnSelectedNode]; got != node {
			t.Fatalf("claim's selected node %q, want the pod's node %q", got, node)
		}
	})

	t.Run("pods sharing an unbound claim go to one node", func(t *testing.T) {
		if _, err := claims.Create(c.ctx, testClaim("shared", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range 6 {
			name := fmt.Sprintf("share-%d", i)
			names = append(names, name)
			c.createPod(makePod(name, withClaim("shared")))
		}
		for _, n := range names {
			c.waitBound(n)
		}
		if got := c.placement(names...); len(got) != 1 {
			t.Fatalf("got placement %v, want one node", got)
		}
	})

	t.Run("bound claim keeps its pods on the volume's node", func(t *testing.T) {
		if _, err := c.env.Client.CoreV1().PersistentVolumes().Create(c.ctx, testLocalPV("pv-n2", "n2"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := claims.Create(c.ctx, testClaim("bound", "pv-n2"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range 4 {
			name := fmt.Sprintf("bound-%d", i)
			names = append(names, name)
			c.createPod(makePod(name, withClaim("bound")))
		}
		for _, n := range names {
			if got := c.waitBound(n); got != "n2" {
				t.Fatalf("pod %s on %s, want n2 where its volume is", n, got)
			}
		}
	})

	t.Run("volume on a node that cannot take the pod", func(t *testing.T) {
		c.createNode(makeNode("n4", cordoned))
		if _, err := c.env.Client.CoreV1().PersistentVolumes().Create(c.ctx, testLocalPV("pv-n4", "n4"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := claims.Create(c.ctx, testClaim("stuck", "pv-n4"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.createPod(makePod("stuck", withClaim("stuck")))
		// The pod may be tried before the scheduler sees the claim; the
		// claim's arrival sends it back to be tried again.
		testutil.Eventually(t, 20*time.Second, func() string {
			p, err := c.env.Client.CoreV1().Pods("default").Get(c.ctx, "stuck", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && strings.Contains(cond.Message, "3 "+reasonVolumeAffinity) && strings.Contains(cond.Message, "1 "+reasonUnschedulable) {
					return ""
				}
			}
			return fmt.Sprintf("conditions %+v, want 3 volume conflicts and 1 unschedulable node", p.Status.Conditions)
		})
	})

	t.Run("a class nothing provisions goes where a volume made beforehand fits", func(t *testing.T) {
		if _, err := c.env.Client.StorageV1().StorageClasses().Create(c.ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "manual"},
			Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pv := testLocalPV("manual-n3", "n3")
		pv.Spec.StorageClassName = "manual"
		pv, err := c.env.Client.CoreV1().PersistentVolumes().Create(c.ctx, pv, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pv.Status.Phase = corev1.VolumeAvailable
		if _, err := c.env.Client.CoreV1().PersistentVolumes().UpdateStatus(c.ctx, pv, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		manual := func(name, size string) *corev1.PersistentVolumeClaim {
			pvc := testClaim(name, "")
			pvc.Spec.StorageClassName = ptr.To("manual")
			pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
			return pvc
		}
		if _, err := claims.Create(c.ctx, manual("manual-fits", "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.createPod(makePod("manual-pod", withClaim("manual-fits")))
		if got := c.waitBound("manual-pod"); got != "n3" {
			t.Fatalf("pod on %s, want n3 where the only fitting volume is", got)
		}

		if _, err := claims.Create(c.ctx, manual("manual-too-big", "100Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.createPod(makePod("manual-none", withClaim("manual-too-big")))
		testutil.Eventually(t, 20*time.Second, func() string {
			p, err := c.env.Client.CoreV1().Pods("default").Get(c.ctx, "manual-none", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && strings.Contains(cond.Message, "didn't find available persistent volumes to bind") {
					return ""
				}
			}
			return fmt.Sprintf("conditions %+v, want no available persistent volumes", p.Status.Conditions)
		})
	})
}
