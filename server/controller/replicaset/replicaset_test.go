package replicaset

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
)

// start runs the controller against a fresh API server.
func start(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	c := New(Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	return ctx, env.Client
}

func template(image string, labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	l := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: template("orch/hello:dev", l)},
	}
}

// owned lists the active pods controlled by uid.
func owned(ctx context.Context, t *testing.T, cs kubernetes.Interface, selector string, uid string) ([]corev1.Pod, error) {
	t.Helper()
	l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && string(ref.UID) == uid && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitPods waits until uid controls exactly n active pods matching selector.
func waitPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, selector, uid string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testutil.Eventually(t, 20*time.Second, func() string {
		var err error
		if pods, err = owned(ctx, t, cs, selector, uid); err != nil {
			return err.Error()
		}
		if len(pods) != n {
			return fmt.Sprintf("%d pods, want %d", len(pods), n)
		}
		return ""
	})
	return pods
}

// markReady plays the node agent: the pod runs and is Ready.
func markReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, p corev1.Pod) {
	t.Helper()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestReplicaSet(t *testing.T) {
	ctx, cs := start(t)
	rsets := cs.AppsV1().ReplicaSets("default")

	t.Run("creates the replicas with owner references and events", func(t *testing.T) {
		rs, err := rsets.Create(ctx, newRS("web", 3), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := waitPods(ctx, t, cs, "app=web", string(rs.UID), 3)
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "orch/hello:dev" || p.GenerateName != "web-" {
				t.Errorf("pod %s: image %s, generateName %q", p.Name, p.Spec.Containers[0].Image, p.GenerateName)
			}
		}
		testutil.Eventually(t, 10*time.Second, func() string {
			ev, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=SuccessfulCreate"})
			if err != nil {
				return err.Error()
			}
			var n int32
			for _, e := range ev.Items {
				n += e.Count
			}
			if n != 3 {
				return fmt.Sprintf("%d SuccessfulCreate events, want 3", n)
			}
			return ""
		})
	})

	t.Run("scales up and down at once, deleting unready pods first", func(t *testing.T) {
		rs, err := rsets.Create(ctx, newRS("scale", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := waitPods(ctx, t, cs, "app=scale", string(rs.UID), 2)
		markReady(ctx, t, cs, pods[0])
		markReady(ctx, t, cs, pods[1])
		for _, n := range []int32{5, 1} {
			testutil.Eventually(t, 10*time.Second, func() string {
				s, err := rsets.GetScale(ctx, "scale", metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				s.Spec.Replicas = n
				if _, err := rsets.UpdateScale(ctx, "scale", s, metav1.UpdateOptions{}); err != nil {
					return err.Error()
				}
				return ""
			})
			pods = waitPods(ctx, t, cs, "app=scale", string(rs.UID), int(n))
		}
		if !isReady(pods[0]) {
			t.Errorf("scaling down kept the unready pod %s over the ready ones", pods[0].Name)
		}
	})

	t.Run("status counts ready and available pods", func(t *testing.T) {
		rs := newRS("status", 2)
		rs.Spec.MinReadySeconds = 1
		rs, err := rsets.Create(ctx, rs, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := waitPods(ctx, t, cs, "app=status", string(rs.UID), 2)
		markReady(ctx, t, cs, pods[0])
		testutil.Eventually(t, 20*time.Second, func() string {
			got, err := rsets.Get(ctx, "status", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			st := got.Status
			if st.Replicas != 2 || st.ReadyReplicas != 1 || st.AvailableReplicas != 1 || st.FullyLabeledReplicas != 2 || st.ObservedGeneration != got.Generation {
				return fmt.Sprintf("status %+v", st)
			}
			return ""
		})
	})

	t.Run("adopts a matching orphan instead of creating", func(t *testing.T) {
		orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Labels: map[string]string{"app": "adopt"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:dev"}}}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rs, err := rsets.Create(ctx, newRS("adopt", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The controller may sync the new ReplicaSet before its cache holds
		// the orphan and create two pods; once it sees the orphan it adopts
		// it and deletes one of the three (the orphan too, when all were
		// made in the same second). Only the ReplicaSet deletes pods here,
		// and only pods it owns: a stray that is gone was adopted first.
		testutil.Eventually(t, 20*time.Second, func() string {
			pods, err := owned(ctx, t, cs, "app=adopt", string(rs.UID))
			if err != nil {
				return err.Error()
			}
			if len(pods) != 2 {
				return fmt.Sprintf("owned pods %v, want two", names(pods))
			}
			stray, err := cs.CoreV1().Pods("default").Get(ctx, "stray", metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return ""
			case err != nil:
				return err.Error()
			case stray.DeletionTimestamp != nil:
				return ""
			}
			if ref := metav1.GetControllerOf(stray); ref == nil || ref.UID != rs.UID {
				return fmt.Sprintf("the orphan stray has controller %v, want the ReplicaSet", ref)
			}
			return ""
		})
	})

	t.Run("a pod whose labels stop matching is released and replaced", func(t *testing.T) {
		rs, err := rsets.Create(ctx, newRS("release", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := waitPods(ctx, t, cs, "app=release", string(rs.UID), 2)
		p := pods[0]
		p.Labels = map[string]string{"app": "debug"}
		if _, err := cs.CoreV1().Pods("default").Update(ctx, &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPods(ctx, t, cs, "app=release", string(rs.UID), 2)
		testutil.Eventually(t, 10*time.Second, func() string {
			got, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if ref := metav1.GetControllerOf(got); ref != nil {
				return "released pod still has controller " + ref.Name
			}
			return ""
		})
	})

	t.Run("a deleted pod is replaced; template changes reach only new pods", func(t *testing.T) {
		rs, err := rsets.Create(ctx, newRS("replace", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := waitPods(ctx, t, cs, "app=replace", string(rs.UID), 2)
		testutil.Eventually(t, 10*time.Second, func() string {
			cur, err := rsets.Get(ctx, "replace", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			cur.Spec.Template.Spec.Containers[0].Image = "orch/hello:v2"
			if _, err := rsets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err.Error()
			}
			return ""
		})
		// The pod is deleted once the controller has seen the new template
		// (its status says so), or its replacement may still be made from
		// the old one.
		testutil.Eventually(t, 10*time.Second, func() string {
			cur, err := rsets.Get(ctx, "replace", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if cur.Status.ObservedGeneration != cur.Generation {
				return fmt.Sprintf("observedGeneration %d, want %d", cur.Status.ObservedGeneration, cur.Generation)
			}
			return ""
		})
		if err := cs.CoreV1().Pods("default").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, func() string {
			now, err := owned(ctx, t, cs, "app=replace", string(rs.UID))
			if err != nil {
				return err.Error()
			}
			images := map[string]int{}
			for _, p := range now {
				images[p.Spec.Containers[0].Image]++
			}
			if len(now) != 2 || images["orch/hello:dev"] != 1 || images["orch/hello:v2"] != 1 {
				return fmt.Sprintf("images %v", images)
			}
			return ""
		})
	})

	t.Run("replication controllers too", func(t *testing.T) {
		l := map[string]string{"app": "legacy"}
		tmpl := template("orch/hello:dev", l)
		rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
			Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](3), Selector: l, Template: &tmpl}}
		rc, err := cs.CoreV1().ReplicationControllers("default").Create(ctx, rc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitPods(ctx, t, cs, "app=legacy", string(rc.UID), 3)
		testutil.Eventually(t, 10*time.Second, func() string {
			got, err := cs.CoreV1().ReplicationControllers("default").Get(ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if got.Status.Replicas != 3 {
				return fmt.Sprintf("status.replicas %d", got.Status.Replicas)
			}
			return ""
		})
	})
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}
