package deployment

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/testutil"
)

const deadline = 30 // progressDeadlineSeconds of the fixtures

func withDeadline(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = ptr.To[int32](deadline) }

// waitStuck waits until the rollout of image has made all the progress it
// can: its pods exist (not Ready) and the status shows it.
func (h *harness) waitStuck(image string, updated int32) {
	h.t.Helper()
	testutil.Eventually(h.t, 10*time.Second, func() string {
		d := h.get()
		rs := h.rsWithImage(image)
		if rs == nil || rs.Status.Replicas != updated || d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != updated {
			return fmt.Sprintf("status %+v, replica sets %s; want %d pods of %s", d.Status, describeSets(h.replicaSets()), updated, image)
		}
		return ""
	})
}

// passDeadline moves the clock past the progress deadline, and again,
// until done says what should follow happened.
func (h *harness) passDeadline(done func(d *appsv1.Deployment) string) *appsv1.Deployment {
	h.t.Helper()
	var d *appsv1.Deployment
	testutil.Eventually(h.t, 20*time.Second, func() string {
		d = h.get()
		msg := done(d)
		if msg == "" {
			return ""
		}
		// Nothing but the controller's timer on its clock makes it look
		// again.
		h.clock.Step((deadline + 1) * time.Second)
		return msg
	})
	return d
}

// timedOut says how d's status falls short of a rollout of the current
// generation that passed its progress deadline.
func timedOut(d *appsv1.Deployment) string {
	c := getCondition(d.Status, appsv1.DeploymentProgressing)
	if c == nil || c.Reason != ReasonTimedOut || c.Status != corev1.ConditionFalse || d.Status.ObservedGeneration != d.Generation {
		return fmt.Sprintf("Progressing %+v at generation %d of %d; want False %s", c, d.Status.ObservedGeneration, d.Generation, ReasonTimedOut)
	}
	return ""
}

func TestAutoRollbackToTheLastAvailableRevision(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(3, withDeadline))
	h.waitComplete("orch/hello:v1", 3)
	h.update(setImage("orch/hello:v2"))
	h.waitComplete("orch/hello:v2", 3)
	h.update(setImage("orch/broken:v3"))
	h.waitStuck("orch/broken:v3", 1)

	h.passDeadline(func(d *appsv1.Deployment) string {
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "orch/hello:v2" {
			return "template has " + img
		}
		return ""
	})
	want := "Rolled back from revision 3 to revision 2: progress deadline 30s exceeded: 0 of 3 new pods available"
	h.waitEvent(ReasonAutoRollback, want)
	d := h.get()
	for k, v := range map[string]string{AutoRolledBackFromAnnotation: "3", AutoRolledBackToAnnotation: "2",
		AutoRollbackReasonAnnotation: "progress deadline 30s exceeded: 0 of 3 new pods available"} {
		if d.Annotations[k] != v {
			t.Errorf("annotation %s: got %q, want %q", k, d.Annotations[k], v)
		}
	}
	if _, ok := d.Spec.Template.Labels[PodTemplateHashLabel]; ok {
		t.Errorf("got template labels %v, want no %s", d.Spec.Template.Labels, PodTemplateHashLabel)
	}

	// The restored revision is the v2 ReplicaSet again, now revision 4.
	h.waitComplete("orch/hello:v2", 3)
	rs := h.rsWithImage("orch/hello:v2")
	if rs.Annotations[RevisionAnnotation] != "4" || rs.Annotations[RevisionHistoryAnnotation] != "2" {
		t.Errorf("restored replica set %s: got revision %q and history %q, want 4 and 2", rs.Name, rs.Annotations[RevisionAnnotation], rs.Annotations[RevisionHistoryAnnotation])
	}
	if len(h.replicaSets()) != 3 {
		t.Errorf("got replica sets %s, want v1, v2 and v3", describeSets(h.replicaSets()))
	}
	if got := h.get().Annotations[RevisionAnnotation]; got != "4" {
		t.Errorf("deployment revision: got %q, want 4", got)
	}
	h.waitEvent(ReasonDeploymentRollback, fmt.Sprintf(`Rolled back deployment "web" to revision 2 (replica set %s), now revision 4`, rs.Name))

	// A new template starts a new revision and clears the record.
	h.update(setImage("orch/hello:v5"))
	h.waitComplete("orch/hello:v5", 3)
	if ann := h.get().Annotations; ann[AutoRolledBackFromAnnotation] != "" || ann[AutoRolledBackToAnnotation] != "" {
		t.Errorf("got annotations %v after a new revision, want the rollback record cleared", ann)
	}
}

func TestAutoRollbackDoesNotLoop(t *testing.T) {
	h := start(t, false)
	h.create(newDeployment(2, withDeadline))
	h.waitComplete("orch/hello:v1", 2)
	h.update(setImage("orch/broken:v2"))
	h.waitStuck("orch/broken:v2", 1)
	// Now nothing becomes Ready any more: the restored revision fails too.
	h.kubelet.SetReady(func(*corev1.Pod) bool { return false })
	testutil.Eventually(t, 10*time.Second, func() string {
		if d := h.get(); d.Status.AvailableReplicas != 0 {
			return fmt.Sprintf("%d replicas available, want none", d.Status.AvailableReplicas)
		}
		return ""
	})

	d := h.passDeadline(func(d *appsv1.Deployment) string {
		if d.Annotations[RevisionAnnotation] != "3" {
			return "revision " + d.Annotations[RevisionAnnotation] + ", want 3"
		}
		return timedOut(d)
	})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "orch/hello:v1" {
		t.Fatalf("got template image %s, want the restored orch/hello:v1 kept", img)
	}
	if got := h.events(ReasonAutoRollback); len(got) != 1 {
		t.Fatalf("got AutoRollback events %q, want exactly one", got)
	}
}

func TestNoAutoRollback(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(h *harness)
		image  string
		change func(*appsv1.Deployment)
	}{
		{
			name: "the deployment opts out",
			setup: func(h *harness) {
				h.create(newDeployment(2, withDeadline, func(d *appsv1.Deployment) {
					d.Annotations = map[string]string{AutoRollbackAnnotation: "false"}
				}))
				h.waitComplete("orch/hello:v1", 2)
				h.update(setImage("orch/broken:v2"))
			},
			image: "orch/broken:v2",
		},
		{
			name: "no revision was ever available",
			setup: func(h *harness) {
				h.create(newDeployment(2, withDeadline, setImage("orch/broken:v1")))
			},
			image: "orch/broken:v1",
		},
		{
			name: "the controller has it off",
			setup: func(h *harness) {
				h.create(newDeployment(2, withDeadline))
				h.waitComplete("orch/hello:v1", 2)
				h.update(setImage("orch/broken:v2"))
			},
			image: "orch/broken:v2",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, false, func(d *Deps) { d.DisableAutoRollback = tc.name == "the controller has it off" })
			tc.setup(h)
			d := h.passDeadline(timedOut)
			if img := d.Spec.Template.Spec.Containers[0].Image; img != tc.image {
				t.Errorf("got template image %s, want %s kept", img, tc.image)
			}
			if got := h.events(ReasonAutoRollback); len(got) != 0 {
				t.Errorf("got AutoRollback events %q, want none", got)
			}
			if v, ok := d.Annotations[AutoRolledBackFromAnnotation]; ok {
				t.Errorf("got annotation %s=%q, want none", AutoRolledBackFromAnnotation, v)
			}
		})
	}
}

// With the real clock nothing but the controller's own timer finds the
// deadline passed.
func TestProgressDeadlineIsCheckedOnItsOwn(t *testing.T) {
	h := start(t, true)
	h.create(newDeployment(2))
	h.waitComplete("orch/hello:v1", 2)
	h.update(func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "orch/broken:v2"
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](1)
	})
	h.waitEvent(ReasonAutoRollback, "Rolled back from revision 2 to revision 1: progress deadline 1s exceeded: 0 of 2 new pods available")
	h.waitComplete("orch/hello:v1", 2)
}
