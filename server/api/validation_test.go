package api

import (
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(code int, agent, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func TestValidationAtTheDoor(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	cases := []struct {
		name      string
		pod       *corev1.Pod
		wantField string
	}{
		{name: "no containers", pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}, wantField: "spec.containers"},
		{name: "bad name", pod: pod("Bad_Name", ""), wantField: "metadata.name"},
		{name: "no image", pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "noimage"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}, wantField: "spec.containers[0].image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CoreV1().Pods("default").Create(c, tc.pod, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want Invalid (422)", err)
			}
			st := err.(apierrors.APIStatus).Status()
			found := false
			for _, cause := range st.Details.Causes {
				found = found || cause.Field == tc.wantField
			}
			if !found {
				t.Fatalf("got causes %+v, want one for %s", st.Details.Causes, tc.wantField)
			}
		})
	}

	t.Run("defaults are applied and returned", func(t *testing.T) {
		p, err := e.client.CoreV1().Pods("default").Create(c, pod("defaulted", ""), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.DNSPolicy != corev1.DNSClusterFirst || p.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent || p.Status.QOSClass != corev1.PodQOSBestEffort {
			t.Fatalf("got restartPolicy %q dnsPolicy %q pullPolicy %q qos %q, want Always ClusterFirst IfNotPresent BestEffort",
				p.Spec.RestartPolicy, p.Spec.DNSPolicy, p.Spec.Containers[0].ImagePullPolicy, p.Status.QOSClass)
		}
	})

	t.Run("pod spec is immutable but for the image", func(t *testing.T) {
		p, _ := e.client.CoreV1().Pods("default").Get(c, "defaulted", metav1.GetOptions{})
		p.Spec.Containers[0].Image = "orch/hello:v2"
		if _, err := e.client.CoreV1().Pods("default").Update(c, p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("image update: %v", err)
		}
		p, _ = e.client.CoreV1().Pods("default").Get(c, "defaulted", metav1.GetOptions{})
		p.Spec.Containers[0].Name = "renamed"
		_, err := e.client.CoreV1().Pods("default").Update(c, p, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec") {
			t.Fatalf("got %v, want Invalid naming spec", err)
		}
	})

	t.Run("unimplemented fields get a warning", func(t *testing.T) {
		rec := &warningRecorder{}
		cfg := rest.CopyConfig(e.config)
		cfg.WarningHandler = rec
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := pod("spread", "")
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		if _, err := cs.CoreV1().Pods("default").Create(c, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.msgs) != 1 || !strings.HasPrefix(rec.msgs[0], "spec.topologySpreadConstraints") {
			t.Fatalf("got warnings %q, want one naming spec.topologySpreadConstraints", rec.msgs)
		}
	})
}
