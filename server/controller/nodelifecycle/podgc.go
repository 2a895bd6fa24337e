package nodelifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReasonDeletionByPodGC is the reason of the event recorded on a pod
// force-deleted because its Node no longer exists (Kubernetes' PodGC uses
// it for the same).
const ReasonDeletionByPodGC = "DeletionByPodGC"

// collectOrphans force-deletes the pods bound to a Node that does not
// exist: nothing will ever run or stop them. The informer may not show a
// Node created a moment ago, so the API is asked before anything goes.
func (c *Controller) collectOrphans(ctx context.Context, node string) error {
	pods := c.podsOn(node)
	if len(pods) == 0 || !c.expect.Satisfied(node) {
		return nil
	}
	_, err := c.deps.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	switch {
	case err == nil:
		return nil // the informer is behind; the Node's add event comes
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("get node %s: %w", node, err)
	}
	zero := int64(0)
	var errs []error
	for _, pod := range pods {
		deleted, err := c.deletePod(ctx, node, pod, &zero)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			c.deps.Logger.Warn("pod force-deleted: its node no longer exists", "pod", podKey(pod), "node", node)
			c.recorder.Eventf(pod, corev1.EventTypeWarning, ReasonDeletionByPodGC, "Node %s no longer exists; force-deleting the pod", node)
		}
	}
	return joinErrs(errs)
}
