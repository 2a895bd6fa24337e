package volumebinding

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller"
)

func start(t *testing.T) (kubernetes.Interface, context.Context) {
	env := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	f := informers.NewSharedInformerFactory(env.Client, 0)
	c := New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	return env.Client, ctx
}

func newClaim(name, class, node string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
		},
	}
	if class != "" {
		pvc.Spec.StorageClassName = ptr.To(class)
	}
	if node != "" {
		pvc.Annotations = map[string]string{controller.AnnSelectedNode: node}
	}
	return pvc
}

// waitBound waits for the claim to be Bound and returns it with its volume.
func waitBound(t *testing.T, cs kubernetes.Interface, ctx context.Context, name string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	var pv *corev1.PersistentVolume
	testutil.Eventually(t, 15*time.Second, func() string {
		var err error
		pvc, err = cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
			return fmt.Sprintf("claim %s is %s (volume %q)", name, pvc.Status.Phase, pvc.Spec.VolumeName)
		}
		pv, err = cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if pv.Status.Phase != corev1.VolumeBound {
			return fmt.Sprintf("volume %s is %s", pv.Name, pv.Status.Phase)
		}
		return ""
	})
	return pvc, pv
}

func waitVolume(t *testing.T, cs kubernetes.Interface, ctx context.Context, name string, phase corev1.PersistentVolumePhase) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() string {
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case phase == "" && apierrors.IsNotFound(err):
			return ""
		case err != nil:
			return err.Error()
		case phase == "":
			return fmt.Sprintf("volume %s still exists (%s)", name, pv.Status.Phase)
		case pv.Status.Phase != phase:
			return fmt.Sprintf("volume %s is %s, want %s", name, pv.Status.Phase, phase)
		}
		return ""
	})
}

func TestProvisionsAndBindsOnSelectedNode(t *testing.T) {
	cs, ctx := start(t)
	claims := cs.CoreV1().PersistentVolumeClaims("default")
	tests := []struct {
		name, class string
	}{
		{name: "default-class"},
		{name: "local-class", class: "local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			created, err := claims.Create(ctx, newClaim(tc.name, tc.class, "node-a"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pvc, pv := waitBound(t, cs, ctx, tc.name)
			if want := "pvc-" + string(created.UID); pv.Name != want {
				t.Errorf("volume %s, want %s", pv.Name, want)
			}
			if pv.Spec.Local == nil || pv.Spec.Local.Path != LocalVolumeRoot+"/"+pv.Name {
				t.Errorf("volume source %+v, want local path under %s", pv.Spec.PersistentVolumeSource, LocalVolumeRoot)
			}
			terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
			if len(terms) != 1 || terms[0].MatchExpressions[0].Key != corev1.LabelHostname || !slices.Equal(terms[0].MatchExpressions[0].Values, []string{"node-a"}) {
				t.Errorf("node affinity %+v, want hostname node-a", terms)
			}
			if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != created.UID {
				t.Errorf("claimRef %+v, want the claim", ref)
			}
			if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.StorageClassName != "local" ||
				pv.Annotations[controller.AnnProvisionedBy] != LocalProvisioner {
				t.Errorf("volume %+v, want Delete policy, class local, provisioned by %s", pv, LocalProvisioner)
			}
			if q := pvc.Status.Capacity[corev1.ResourceStorage]; q.String() != "2Gi" || !slices.Equal(pvc.Status.AccessModes, created.Spec.AccessModes) {
				t.Errorf("claim status %+v, want 2Gi ReadWriteOnce", pvc.Status)
			}
			if !slices.Contains(pvc.Finalizers, controller.PVCProtectionFinalizer) {
				t.Errorf("claim finalizers %v, want %s", pvc.Finalizers, controller.PVCProtectionFinalizer)
			}
		})
	}

	t.Run("no node chosen yet: Pending", func(t *testing.T) {
		if _, err := claims.Create(ctx, newClaim("waiting", "", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The finalizer shows the controller has seen the claim.
		testutil.Eventually(t, 10*time.Second, func() string {
			pvc, err := claims.Get(ctx, "waiting", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if !slices.Contains(pvc.Finalizers, controller.PVCProtectionFinalizer) {
				return "claim not protected yet"
			}
			return ""
		})
		pvc, err := claims.Get(ctx, "waiting", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending {
			t.Fatalf("got volume %q phase %s, want Pending without a volume", pvc.Spec.VolumeName, pvc.Status.Phase)
		}
	})
}

func TestClaimInUseIsKeptThenItsVolumeDeleted(t *testing.T) {
	cs, ctx := start(t)
	claims := cs.CoreV1().PersistentVolumeClaims("default")
	if _, err := claims.Create(ctx, newClaim("data", "", "node-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, pv := waitBound(t, cs, ctx, "data")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "user"}, Spec: corev1.PodSpec{NodeName: "node-a",
		Containers: []corev1.Container{{Name: "c", Image: "x"}},
		Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := claims.Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deleting a pod brings its claims a sync: give the controller one
	// with the pod still there, then check the claim stays.
	if _, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: pod.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		pvc, err := claims.Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return "claim in use is gone: " + err.Error()
		}
		if pvc.DeletionTimestamp == nil {
			return "claim not being deleted yet"
		}
		return ""
	})
	for _, name := range []string{"user", "other"} {
		if err := cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 15*time.Second, func() string {
		if _, err := claims.Get(ctx, "data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("claim still there (%v)", err)
		}
		return ""
	})
	waitVolume(t, cs, ctx, pv.Name, "")
}

func TestRetainKeepsReleasedVolume(t *testing.T) {
	cs, ctx := start(t)
	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "keep"},
		Provisioner: LocalProvisioner, ReclaimPolicy: &retain, VolumeBindingMode: &wait}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	claims := cs.CoreV1().PersistentVolumeClaims("default")
	if _, err := claims.Create(ctx, newClaim("kept", "keep", "node-b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, pv := waitBound(t, cs, ctx, "kept")
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Fatalf("reclaim policy %s, want Retain", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if err := claims.Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cs, ctx, pv.Name, corev1.VolumeReleased)
}

func TestVolumeMadeByHand(t *testing.T) {
	cs, ctx := start(t)
	pv := localVolume("manual", newClaim("x", "", ""), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: ""}}, "node-c")
	pv.Spec.ClaimRef = nil
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cs, ctx, "manual", corev1.VolumeAvailable)
	// A claim naming the volume binds to it.
	claim := newClaim("byname", "", "")
	claim.Spec.StorageClassName = ptr.To("")
	claim.Spec.VolumeName = "manual"
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc, got := waitBound(t, cs, ctx, "byname")
	if got.Spec.ClaimRef == nil || got.Spec.ClaimRef.UID != pvc.UID {
		t.Fatalf("claimRef %+v, want the claim", got.Spec.ClaimRef)
	}
	if q := pvc.Status.Capacity[corev1.ResourceStorage]; q.String() != "5Gi" {
		t.Fatalf("claim capacity %s, want the volume's 5Gi", q.String())
	}
}

func handMadeVolume(name, class, size string, mutate ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/" + name}},
		},
	}
	for _, m := range mutate {
		m(pv)
	}
	return pv
}

func onNode(node string) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}}}
	}
}

func TestBindsClaimsToVolumesMadeBeforehand(t *testing.T) {
	cs, ctx := start(t)
	claims := cs.CoreV1().PersistentVolumeClaims("default")
	for _, pv := range []*corev1.PersistentVolume{
		handMadeVolume("small", "", "1Gi"),
		handMadeVolume("fits", "", "3Gi"),
		handMadeVolume("big", "", "10Gi"),
		handMadeVolume("fast", "fast", "3Gi"),
		handMadeVolume("gold", "", "20Gi", func(pv *corev1.PersistentVolume) { pv.Labels = map[string]string{"tier": "gold"} }),
		handMadeVolume("reserved", "", "50Gi", func(pv *corev1.PersistentVolume) {
			pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "wants-reserved"}
		}),
		handMadeVolume("local-n1", "local", "5Gi", onNode("n1")),
	} {
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1",
		Labels: map[string]string{corev1.LabelHostname: "n1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cs, ctx, "small", corev1.VolumeAvailable)

	noClass := func(name string) *corev1.PersistentVolumeClaim {
		pvc := newClaim(name, "", "")
		pvc.Spec.StorageClassName = ptr.To("")
		return pvc
	}
	for _, tc := range []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		want  string // the volume it binds to
	}{
		{name: "the smallest volume that fits", claim: noClass("first"), want: "fits"},
		{name: "the next one once that is taken", claim: noClass("second"), want: "big"},
		{name: "a selector picks by label", claim: func() *corev1.PersistentVolumeClaim {
			pvc := noClass("picky")
			pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
			return pvc
		}(), want: "gold"},
		{name: "a volume reserved by claimRef goes to its claim", claim: noClass("wants-reserved"), want: "reserved"},
		{name: "a class of its own", claim: newClaim("fast-claim", "fast", ""), want: "fast"},
		{name: "a local claim binds to a volume made on its node", claim: newClaim("on-n1", "local", "n1"), want: "local-n1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := claims.Create(ctx, tc.claim, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pvc, pv := waitBound(t, cs, ctx, tc.claim.Name)
			if pv.Name != tc.want {
				t.Fatalf("claim %s bound to %s, want %s", pvc.Name, pv.Name, tc.want)
			}
			if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
				t.Fatalf("volume %s claimRef %+v, want claim %s", pv.Name, ref, pvc.UID)
			}
		})
	}

	t.Run("a local claim on another node gets a volume provisioned", func(t *testing.T) {
		if _, err := claims.Create(ctx, newClaim("on-n2", "local", "n2"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pvc, pv := waitBound(t, cs, ctx, "on-n2")
		if pv.Name != "pvc-"+string(pvc.UID) {
			t.Fatalf("bound to %s, want a provisioned volume", pv.Name)
		}
	})

	t.Run("a claim that nothing fits waits, and binds when a volume appears", func(t *testing.T) {
		if _, err := claims.Create(ctx, noClass("later"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Give the loop a chance to bind wrongly (only "small", too small,
		// is free) before the fitting volume exists.
		time.Sleep(300 * time.Millisecond)
		if pvc, err := claims.Get(ctx, "later", metav1.GetOptions{}); err != nil || pvc.Spec.VolumeName != "" {
			t.Fatalf("claim later: %v, volume %q; want it unbound", err, pvc.Spec.VolumeName)
		}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, handMadeVolume("late", "", "2Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, pv := waitBound(t, cs, ctx, "later"); pv.Name != "late" {
			t.Fatalf("bound to %s, want late", pv.Name)
		}
	})
}
