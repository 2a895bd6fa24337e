package deployment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller/replicaset"
)

const ns = "default"

// harness is an API server with the ReplicaSet and Deployment controllers
// running, and a scripted kubelet that binds pods to a node and reports
// them Ready unless their image is "broken".
type harness struct {
	t       *testing.T
	ctx     context.Context
	cs      kubernetes.Interface
	clock   *testingclock.FakeClock
	kubelet *testutil.ScriptedKubelet
}

func notBroken(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		if strings.Contains(c.Image, "broken") {
			return false
		}
	}
	return true
}

// start runs the controllers; realClock gives the Deployment controller
// the real clock instead of a fake one the test steps.
func start(t *testing.T, realClock bool, opts ...func(*Deps)) *harness {
	t.Helper()
	env := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(env.Client, 0)
	rsc := replicaset.New(replicaset.Deps{Client: env.Client, Informers: f, Logger: logging.Discard})
	h := &harness{t: t, ctx: ctx, cs: env.Client}
	deps := Deps{Client: env.Client, Informers: f, Logger: logging.Discard}
	if !realClock {
		h.clock = testingclock.NewFakeClock(time.Now())
		deps.Clock = h.clock
	}
	for _, o := range opts {
		o(&deps)
	}
	dc := New(deps)
	f.Start(ctx.Done())
	done := make(chan struct{}, 2)
	go func() { _ = rsc.Run(ctx); done <- struct{}{} }()
	go func() { _ = dc.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		f.Shutdown()
	})
	h.kubelet = testutil.StartScriptedKubelet(t, env.Client, ns)
	h.kubelet.BindTo("node-1")
	h.kubelet.SetReady(notBroken)
	return h
}

// newDeployment is the fixture Deployment "web": replicas of image
// orch/hello:v1 labelled app=web; changes adjust it.
func newDeployment(replicas int32, changes ...func(*appsv1.Deployment)) *appsv1.Deployment {
	l := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orch/hello:v1"}}},
			},
		},
	}
	for _, c := range changes {
		c(d)
	}
	return d
}

func (h *harness) create(d *appsv1.Deployment) *appsv1.Deployment {
	h.t.Helper()
	out, err := h.cs.AppsV1().Deployments(ns).Create(h.ctx, d, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) get() *appsv1.Deployment {
	h.t.Helper()
	d, err := h.cs.AppsV1().Deployments(ns).Get(h.ctx, "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// update changes the Deployment, retrying on conflicts with the
// controller.
func (h *harness) update(change func(*appsv1.Deployment)) *appsv1.Deployment {
	h.t.Helper()
	var out *appsv1.Deployment
	testutil.Eventually(h.t, 10*time.Second, func() string {
		d := h.get()
		change(d)
		var err error
		if out, err = h.cs.AppsV1().Deployments(ns).Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
	return out
}

func setImage(image string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

// replicaSets lists the ReplicaSets of app=web by revision.
func (h *harness) replicaSets() []appsv1.ReplicaSet {
	h.t.Helper()
	l, err := h.cs.AppsV1().ReplicaSets(ns).List(h.ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return Revision(&l.Items[i]) < Revision(&l.Items[j]) })
	return l.Items
}

func (h *harness) rsWithImage(image string) *appsv1.ReplicaSet {
	h.t.Helper()
	for _, rs := range h.replicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			return &rs
		}
	}
	return nil
}

// activePods lists the pods of app=web that are not being deleted.
func (h *harness) activePods() []corev1.Pod {
	h.t.Helper()
	l, err := h.cs.CoreV1().Pods(ns).List(h.ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func describeSets(sets []appsv1.ReplicaSet) string {
	var parts []string
	for _, rs := range sets {
		parts = append(parts, fmt.Sprintf("%s(rev %s, %s, spec %d, status %d/%d available)", rs.Name, rs.Annotations[RevisionAnnotation],
			rs.Spec.Template.Spec.Containers[0].Image, replicasOf(rs.Spec.Replicas), rs.Status.AvailableReplicas, rs.Status.Replicas))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// waitComplete waits until the Deployment runs replicas ready pods of
// image and nothing else, and says so in its status.
func (h *harness) waitComplete(image string, replicas int32) {
	h.t.Helper()
	testutil.Eventually(h.t, 20*time.Second, func() string {
		d := h.get()
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.Replicas != replicas || st.UpdatedReplicas != replicas ||
			st.ReadyReplicas != replicas || st.AvailableReplicas != replicas || st.UnavailableReplicas != 0 {
			return fmt.Sprintf("status %+v, want %d replicas all updated and available at generation %d; sets %s", st, replicas, d.Generation, describeSets(h.replicaSets()))
		}
		if c := getCondition(st, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonNewRSAvailable {
			return fmt.Sprintf("Progressing condition %+v, want reason %s", c, ReasonNewRSAvailable)
		}
		for _, rs := range h.replicaSets() {
			img := rs.Spec.Template.Spec.Containers[0].Image
			if n := replicasOf(rs.Spec.Replicas); (img == image && n != replicas) || (img != image && n != 0) {
				return fmt.Sprintf("replica sets %s, want only the one of %s scaled, to %d", describeSets(h.replicaSets()), image, replicas)
			}
		}
		pods := h.activePods()
		if len(pods) != int(replicas) {
			return fmt.Sprintf("%d pods, want %d", len(pods), replicas)
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return fmt.Sprintf("pod %s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, image)
			}
		}
		return ""
	})
}

// events lists the messages of the Deployment's events with reason.
func (h *harness) events(reason string) []string {
	h.t.Helper()
	l, err := h.cs.CoreV1().Events(ns).List(h.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,involvedObject.kind=Deployment,reason=" + reason})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		out = append(out, e.Message)
	}
	sort.Strings(out)
	return out
}

// waitEvent waits for an event of reason with exactly message.
func (h *harness) waitEvent(reason, message string) {
	h.t.Helper()
	testutil.Eventually(h.t, 10*time.Second, func() string {
		got := h.events(reason)
		for _, m := range got {
			if m == message {
				return ""
			}
		}
		return fmt.Sprintf("events %s: %q, want %q", reason, got, message)
	})
}
