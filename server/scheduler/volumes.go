package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"orch.dev/orch/server/controller"
)

const reasonVolumeAffinity = "node(s) had volume node affinity conflict"

// volumes is what the scheduler knows of claims, volumes and classes, and
// the nodes it has chosen for claims whose choice is not yet visible in
// the informers.
type volumes struct {
	claims  corelisters.PersistentVolumeClaimLister
	pvs     corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister

	mu     sync.Mutex
	chosen map[string]string // claim "ns/name" → node
}

// nodeSelectorForName selects exactly the named node.
func nodeSelectorForName(node string) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
}

// resolve works out the pod's volume constraints: the node selectors of
// the volumes it uses go into info, the unbound WaitForFirstConsumer
// claims still to be given a node are returned. A non-empty message says
// why the pod cannot be scheduled on any node.
func (v *volumes) resolve(info *podInfo) (toSelect []*corev1.PersistentVolumeClaim, msg string) {
	pod := info.pod
	for _, name := range controller.ClaimNames(&pod.Spec) {
		pvc, err := v.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			return nil, fmt.Sprintf("persistentvolumeclaim %q not found", name)
		}
		if pvc.DeletionTimestamp != nil {
			return nil, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
		}
		if pvc.Spec.VolumeName != "" {
			pv, err := v.pvs.Get(pvc.Spec.VolumeName)
			if err != nil {
				return nil, fmt.Sprintf("persistentvolume %q not found", pvc.Spec.VolumeName)
			}
			if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
				info.volumeAffinity = append(info.volumeAffinity, pv.Spec.NodeAffinity.Required)
			}
			continue
		}
		node := pvc.Annotations[controller.AnnSelectedNode]
		if node == "" {
			v.mu.Lock()
			node = v.chosen[pod.Namespace+"/"+name]
			v.mu.Unlock()
		}
		if node != "" {
			info.volumeAffinity = append(info.volumeAffinity, nodeSelectorForName(node))
			continue
		}
		classes, _ := v.classes.List(labels.Everything()) // listers do not fail
		className := controller.ClaimClassName(pvc, classes)
		if className == "" {
			return nil, "pod has unbound immediate PersistentVolumeClaims"
		}
		sc, err := v.classes.Get(className)
		if err != nil {
			return nil, fmt.Sprintf("storageclass.storage.k8s.io %q not found", className)
		}
		if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			return nil, "pod has unbound immediate PersistentVolumeClaims"
		}
		if sc.Provisioner != controller.LocalProvisioner {
			// Nothing makes volumes of this class: the pod may go only
			// where a volume made beforehand fits the claim.
			sel, ok := v.freeVolumesSelector(pvc, className)
			if !ok {
				return nil, "node(s) didn't find available persistent volumes to bind"
			}
			if sel != nil {
				info.volumeAffinity = append(info.volumeAffinity, sel)
			}
		}
		toSelect = append(toSelect, pvc)
	}
	return toSelect, ""
}

// freeVolumesSelector selects the nodes where a volume that fits the
// claim can be used: the union of those volumes' node affinities (nil when
// one of them has none, and so may be used anywhere). ok is false when no
// volume fits at all.
func (v *volumes) freeVolumesSelector(pvc *corev1.PersistentVolumeClaim, className string) (sel *corev1.NodeSelector, ok bool) {
	pvs, _ := v.pvs.List(labels.Everything()) // listers do not fail
	var terms []corev1.NodeSelectorTerm
	for _, pv := range pvs {
		if !controller.VolumeFits(pvc, className, pv) {
			continue
		}
		ok = true
		if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
			return nil, true
		}
		terms = append(terms, pv.Spec.NodeAffinity.Required.NodeSelectorTerms...)
	}
	if !ok {
		return nil, false
	}
	return &corev1.NodeSelector{NodeSelectorTerms: terms}, true
}

// choose remembers the node chosen for claims until their annotation is
// visible, so that a second pod of the same claim goes to the same node.
func (v *volumes) choose(claims []*corev1.PersistentVolumeClaim, node string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range claims {
		v.chosen[c.Namespace+"/"+c.Name] = node
	}
}

func (v *volumes) forget(claims []*corev1.PersistentVolumeClaim) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range claims {
		delete(v.chosen, c.Namespace+"/"+c.Name)
	}
}

// claimChanged drops a remembered choice once the claim shows it (or is
// bound or gone).
func (v *volumes) claimChanged(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if pvc.Annotations[controller.AnnSelectedNode] != "" || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		v.forget([]*corev1.PersistentVolumeClaim{pvc})
	}
}

// selectNode records the chosen node on each claim, as Kubernetes does,
// for the provisioner to make the volume there.
func (s *Scheduler) selectNode(ctx context.Context, claims []*corev1.PersistentVolumeClaim, node string) error {
	for _, c := range claims {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid":         c.UID, // fails if the claim was replaced meanwhile
			"annotations": map[string]string{controller.AnnSelectedNode: node},
		}})
		if err != nil {
			return err
		}
		_, err = s.deps.Client.CoreV1().PersistentVolumeClaims(c.Namespace).Patch(ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("select node for claim %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	return nil
}

// filterVolumeAffinity keeps a pod on the node that holds its volumes.
func filterVolumeAffinity(p *podInfo, n *nodeInfo) []string {
	for _, sel := range p.volumeAffinity {
		if n.node == nil || !controller.NodeSelectorMatches(sel, n.node) {
			return []string{reasonVolumeAffinity}
		}
	}
	return nil
}
