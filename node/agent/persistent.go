package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Persistent volumes on this node. A claim bound to a volume of the
// built-in local provisioner (annotation pv.kubernetes.io/provisioned-by:
// orch.dev/local) is a directory <data-dir>/volumes/<volume name>, made on
// first use, kept across pod restarts and deletions, and removed when the
// volume object is deleted (the data lives as long as its
// PersistentVolume). Other volumes with a spec.local or spec.hostPath are
// bind-mounted from their path, which an administrator prepared.
const (
	localProvisioner  = "orch.dev/local"
	annProvisionedBy  = "pv.kubernetes.io/provisioned-by"
	persistentDirName = "volumes"
)

// claimLookup finds claims and volumes; absent objects are reported with
// errors for which apierrors.IsNotFound holds.
type claimLookup interface {
	claim(ns, name string) (*corev1.PersistentVolumeClaim, error)
	volume(name string) (*corev1.PersistentVolume, error)
}

type informerClaims struct {
	claims func(ns, name string) (*corev1.PersistentVolumeClaim, error)
	pvs    func(name string) (*corev1.PersistentVolume, error)
}

func (l informerClaims) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return l.claims(ns, name)
}
func (l informerClaims) volume(name string) (*corev1.PersistentVolume, error) { return l.pvs(name) }

// persistentDir is where the agent keeps the local provisioner's volume.
func (m *volumeManager) persistentDir(pv string) string {
	return filepath.Join(m.persistentRoot, pv)
}

// claimVolume resolves a persistentVolumeClaim volume to its directory on
// this node. Until the claim is bound to a volume of this node the pod
// waits with the returned error as its message.
func (m *volumeManager) claimVolume(ns string, src *corev1.PersistentVolumeClaimVolumeSource) (hostVolume, error) {
	m.mu.Lock()
	lookup, node := m.claims, m.nodeName
	m.mu.Unlock()
	if lookup == nil {
		return hostVolume{}, fmt.Errorf("persistentvolumeclaim %q: the node agent is not watching claims yet", src.ClaimName)
	}
	pvc, err := lookup.claim(ns, src.ClaimName)
	if apierrors.IsNotFound(err) {
		return hostVolume{}, fmt.Errorf("persistentvolumeclaim %q not found", src.ClaimName)
	}
	if err != nil {
		return hostVolume{}, err
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return hostVolume{}, fmt.Errorf("persistentvolumeclaim %q is not bound yet (%s)", src.ClaimName, pvc.Status.Phase)
	}
	pv, err := lookup.volume(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return hostVolume{}, fmt.Errorf("persistentvolume %q of claim %q not found", pvc.Spec.VolumeName, src.ClaimName)
	}
	if err != nil {
		return hostVolume{}, err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return hostVolume{}, fmt.Errorf("persistentvolume %q is not bound to claim %q", pv.Name, src.ClaimName)
	}
	if nodes := volumeNodes(pv); nodes != nil && !slices.Contains(nodes, node) {
		return hostVolume{}, fmt.Errorf("persistentvolume %q is on node %s, not on this node (%s)", pv.Name, strings.Join(nodes, ", "), node)
	}
	hv := hostVolume{writable: !src.ReadOnly, readOnly: src.ReadOnly}
	switch {
	case pv.Annotations[annProvisionedBy] == localProvisioner:
		hv.path = m.persistentDir(pv.Name)
		// Made world-writable, as an emptyDir, so containers running as
		// any user can use it.
		if _, err := os.Stat(hv.path); errors.Is(err, fs.ErrNotExist) {
			if err := makeEmptyDir(hv.path); err != nil {
				return hostVolume{}, fmt.Errorf("make volume directory: %w", err)
			}
		} else if err != nil {
			return hostVolume{}, err
		}
	case pv.Spec.Local != nil:
		hv.path = pv.Spec.Local.Path
		if st, err := os.Stat(hv.path); err != nil || !st.IsDir() {
			return hostVolume{}, fmt.Errorf("local volume %q: path %s is not a directory on this node", pv.Name, hv.path)
		}
	case pv.Spec.HostPath != nil:
		typ := corev1.HostPathUnset
		if pv.Spec.HostPath.Type != nil {
			typ = *pv.Spec.HostPath.Type
		}
		if err := checkHostPath(pv.Spec.HostPath.Path, typ); err != nil {
			return hostVolume{}, err
		}
		hv.path = pv.Spec.HostPath.Path
	default:
		return hostVolume{}, fmt.Errorf("persistentvolume %q: only local and hostPath volumes are supported by this node agent", pv.Name)
	}
	return hv, nil
}

// volumeNodes are the nodes a volume's required node affinity names by
// host name, nil when it names none that way.
func volumeNodes(pv *corev1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var out []string
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, r := range term.MatchExpressions {
			if r.Key == labelHostname && r.Operator == corev1.NodeSelectorOpIn {
				out = append(out, r.Values...)
			}
		}
	}
	return out
}

// removePersistent removes the directories of local volumes whose
// PersistentVolume is gone; exists says whether a volume still exists.
func (m *volumeManager) removePersistent(exists func(name string) bool) error {
	entries, err := os.ReadDir(m.persistentRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() && !exists(e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(m.persistentRoot, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// startVolumeSource watches claims and volumes: a change kicks the workers
// of the pods using the claim (a pod waiting for its claim to be bound
// starts at once), and a deleted volume's directory is removed, now and
// every minute for volumes deleted while the agent was down. It returns
// once the caches are filled.
func (a *Agent) startVolumeSource(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	claims := factory.Core().V1().PersistentVolumeClaims()
	pvs := factory.Core().V1().PersistentVolumes()
	claimChanged := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			a.claimChanged(pvc.Namespace, pvc.Name)
		}
	}
	claimReg, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: claimChanged, UpdateFunc: func(_, obj any) { claimChanged(obj) }, DeleteFunc: claimChanged,
	})
	if err != nil {
		return err
	}
	pvLister := pvs.Lister()
	exists := func(name string) bool {
		_, err := pvLister.Get(name)
		return !apierrors.IsNotFound(err)
	}
	gc := func() {
		if err := a.volumes.removePersistent(exists); err != nil {
			a.log.Warn("remove data of deleted volumes", "err", err)
		}
	}
	pvReg, err := pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			if pv, ok := obj.(*corev1.PersistentVolume); ok && pv.Spec.ClaimRef != nil {
				a.claimChanged(pv.Spec.ClaimRef.Namespace, pv.Spec.ClaimRef.Name)
			}
		},
		DeleteFunc: func(any) { gc() },
	})
	if err != nil {
		return err
	}
	a.volumes.mu.Lock()
	a.volumes.claims = informerClaims{
		claims: func(ns, name string) (*corev1.PersistentVolumeClaim, error) {
			return claims.Lister().PersistentVolumeClaims(ns).Get(name)
		},
		pvs: pvLister.Get,
	}
	a.volumes.nodeName = a.cfg.Name
	a.volumes.mu.Unlock()
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), claimReg.HasSynced, pvReg.HasSynced) {
		return ctx.Err()
	}
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			gc()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// claimChanged kicks the workers of the pods that use a claim.
func (a *Agent) claimChanged(ns, name string) {
	a.mu.Lock()
	var kick []*podWorker
	for _, w := range a.workers {
		if p := w.currentPod(); p != nil && p.Namespace == ns && slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name
		}) {
			kick = append(kick, w)
		}
	}
	a.mu.Unlock()
	for _, w := range kick {
		w.poke()
	}
}
