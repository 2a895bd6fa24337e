package agent

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"orch.dev/orch/internal/testutil"
	rt "orch.dev/orch/node/runtime"
)

func TestFailedPostStartRestartsTheContainer(t *testing.T) {
	pod := probedPod(corev1.Container{Lifecycle: &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"warm-up"}}},
	}})
	h := startHealthAgent(t, pod)
	// The hook fails in the first attempt only.
	h.rt.setExec(func(c *rt.Container, cmd []string) int {
		if c.Labels[rt.LabelAttempt] == "0" {
			return 1
		}
		return 0
	})
	h.start()
	var events []string
	testutil.Eventually(t, 20*time.Second, func() string {
		p := h.pod(t, pod)
		if len(p.Status.ContainerStatuses) == 0 {
			return "no container status yet"
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Sprintf("restartCount %d, state %+v; want the second attempt running (calls %q)", cs.RestartCount, cs.State, h.rt.callLog())
		}
		return containsAll(h.eventsSoFar(&events), "Warning FailedPostStartHook PostStartHook of container app failed")
	})
}
