package statefulset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// claimName is the claim a template gives the pod with ordinal's name, as
// Kubernetes names it: TEMPLATE-SET-ORDINAL.
func claimName(template *corev1.PersistentVolumeClaim, podName string) string {
	return template.Name + "-" + podName
}

// ensureClaims creates the claims of the pod's volumeClaimTemplates that do
// not exist yet, before the pod: the pod's volumes name them. A claim that
// exists is kept as it is, so a replacement pod finds its predecessor's
// data. Claims outlive their pods and (with the default Retain policy for
// whenDeleted) the set; with whenDeleted: Delete the set owns them and
// the garbage collector deletes them with it.
func (c *Controller) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	for i := range set.Spec.VolumeClaimTemplates {
		tmpl := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(tmpl, pod.Name)
		if _, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name); err == nil {
			continue
		} else if !apierrors.IsNotFound(err) {
			return err
		}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Namespace:   set.Namespace,
				Labels:      map[string]string{},
				Annotations: tmpl.Annotations,
			},
			Spec: *tmpl.Spec.DeepCopy(),
		}
		for k, v := range tmpl.Labels {
			claim.Labels[k] = v
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				claim.Labels[k] = v
			}
		}
		if rp := set.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil && rp.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			claim.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, statefulSetKind)}
		}
		_, err := c.deps.Client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			// The cache is behind; the claim is there.
		case err != nil:
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", name, pod.Name, set.Name, err)
			return fmt.Errorf("create claim %s: %w", name, err)
		default:
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", name, pod.Name, set.Name)
		}
	}
	return nil
}
