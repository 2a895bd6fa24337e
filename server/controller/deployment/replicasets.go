package deployment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// claimReplicaSets returns the ReplicaSets the Deployment controls, after
// adopting orphans that match its selector and releasing owned ones that
// no longer do.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return ClaimReplicaSets(ctx, c.client, d, sel, all)
}

// ClaimReplicaSets sorts ReplicaSets into the ones d controls after
// adoption and release, as controller.ClaimPods does for pods: ReplicaSets
// d controls whose labels stopped matching selector are released, and
// ReplicaSets without a controller whose labels match are adopted, unless d
// is being deleted (checked against the API, not a cache, before the first
// adoption). ReplicaSets controlled by something else are never touched.
func ClaimReplicaSets(ctx context.Context, client kubernetes.Interface, d *appsv1.Deployment, selector labels.Selector, sets []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	var owned []*appsv1.ReplicaSet
	var errs []error
	var adoptable error
	checked := false
	canAdopt := func() error {
		if checked {
			return adoptable
		}
		checked = true
		fresh, err := client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			adoptable = err
		case fresh.UID != d.UID:
			adoptable = fmt.Errorf("deployment %s/%s is gone: found uid %s, want %s", d.Namespace, d.Name, fresh.UID, d.UID)
		case fresh.DeletionTimestamp != nil:
			adoptable = fmt.Errorf("deployment %s/%s is being deleted", d.Namespace, d.Name)
		}
		return adoptable
	}
	for _, rs := range sets {
		ref := metav1.GetControllerOfNoCopy(rs)
		matches := selector.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID != d.UID:
			continue
		case ref != nil && matches:
			owned = append(owned, rs)
		case ref != nil:
			if rs.DeletionTimestamp != nil {
				continue
			}
			if _, err := setReplicaSetController(ctx, client, rs, nil); err != nil {
				errs = append(errs, fmt.Errorf("release replica set %s: %w", rs.Name, err))
			}
		case matches && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			if err := canAdopt(); err != nil {
				errs = append(errs, fmt.Errorf("adopt replica set %s: %w", rs.Name, err))
				continue
			}
			adopted, err := setReplicaSetController(ctx, client, rs, metav1.NewControllerRef(d, deploymentKind))
			if err != nil {
				errs = append(errs, fmt.Errorf("adopt replica set %s: %w", rs.Name, err))
				continue
			}
			if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// setReplicaSetController replaces rs's controller reference with ref (nil
// removes it), guarded by rs's resourceVersion. It returns nil when rs is
// gone.
func setReplicaSetController(ctx context.Context, client kubernetes.Interface, rs *appsv1.ReplicaSet, ref *metav1.OwnerReference) (*appsv1.ReplicaSet, error) {
	cp := rs.DeepCopy()
	var refs []metav1.OwnerReference
	for _, r := range cp.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			refs = append(refs, r)
		}
	}
	if ref != nil {
		refs = append(refs, *ref)
	}
	cp.OwnerReferences = refs
	out, err := client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return out, err
}

// Revision is the revision number of a ReplicaSet or Deployment, 0 when it
// has none (or one that is not a number).
func Revision(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(sets []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range sets {
		if r := Revision(rs); r > m {
			m = r
		}
	}
	return m
}

// byCreation orders ReplicaSets oldest first, by name among equals.
func byCreation(sets []*appsv1.ReplicaSet) {
	sort.SliceStable(sets, func(i, j int) bool {
		a, b := sets[i], sets[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// byRevision orders ReplicaSets by revision, oldest first.
func byRevision(sets []*appsv1.ReplicaSet) {
	byCreation(sets)
	sort.SliceStable(sets, func(i, j int) bool { return Revision(sets[i]) < Revision(sets[j]) })
}

// findNewReplicaSet is the ReplicaSet running the Deployment's current
// template; the oldest one if several do.
func findNewReplicaSet(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	byCreation(sorted)
	for _, rs := range sorted {
		if EqualIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// replicaSets splits the Deployment's ReplicaSets into the new one (nil
// unless it exists or create is set) and the old ones, and brings the
// revision annotations of the new one and of the Deployment up to date.
func (c *Controller) replicaSets(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	existing := findNewReplicaSet(d, rsList)
	var old []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if rs != existing {
			old = append(old, rs)
		}
	}
	newRS, err := c.newReplicaSet(ctx, d, existing, old, create)
	if err != nil {
		return nil, nil, err
	}
	// Later steps of the same sync see the ReplicaSet as written.
	for i := range rsList {
		if existing != nil && rsList[i] == existing {
			rsList[i] = newRS
		}
	}
	return newRS, old, nil
}

// newReplicaSet brings the existing new ReplicaSet up to date (revision,
// annotations, minReadySeconds) or, when create is set and there is none,
// creates it, sized by the strategy.
func (c *Controller) newReplicaSet(ctx context.Context, d *appsv1.Deployment, existing *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	newRevision := strconv.FormatInt(maxRevision(old)+1, 10)
	if existing != nil {
		return c.syncExistingNewReplicaSet(ctx, d, existing, newRevision)
	}
	if !create {
		return nil, nil
	}

	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = withLabel(tmpl.Labels, PodTemplateHashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withLabel(sel.MatchLabels, PodTemplateHashLabel, hash)
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          withLabel(tmpl.Labels, PodTemplateHashLabel, hash),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, deploymentKind)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &zero, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	n := newRSReplicas(d, append(append([]*appsv1.ReplicaSet(nil), old...), rs), rs)
	rs.Spec.Replicas = &n
	setNewReplicaSetAnnotations(d, rs, newRevision, false)

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExisted := false
	switch {
	case apierrors.IsAlreadyExists(err):
		// Either this loop made it and its informer has not shown it yet,
		// or the name is taken by a ReplicaSet with another template or
		// owner: a hash collision, resolved by a new collision count.
		cur, getErr := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if getErr != nil {
			return nil, getErr
		}
		if ref := metav1.GetControllerOfNoCopy(cur); ref != nil && ref.UID == d.UID && EqualIgnoreHash(&cur.Spec.Template, &d.Spec.Template) {
			created, alreadyExisted = cur, true
			break
		}
		var count int32
		if d.Status.CollisionCount != nil {
			count = *d.Status.CollisionCount
		}
		count++
		d.Status.CollisionCount = &count
		if werr := c.writeStatus(ctx, d); werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("replica set name %s is taken by another template; collision count now %d", rs.Name, count)
	case err != nil:
		if ctx.Err() != nil {
			return nil, err
		}
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		c.recorder.Event(d, corev1.EventTypeWarning, ReasonFailedRSCreate, msg)
		if hasProgressDeadline(d) {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonFailedRSCreate, msg, c.clock.Now()))
			if werr := c.writeStatus(ctx, d); werr != nil {
				return nil, errors.Join(err, werr)
			}
		}
		return nil, err
	}
	if !alreadyExisted && n > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	// The condition goes before the revision: should its write fail, the
	// next sync still sees a revision that is not the Deployment's yet
	// and starts the progress clock then.
	if !alreadyExisted && hasProgressDeadline(d) {
		msg := fmt.Sprintf("Created new replica set %q", created.Name)
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSCreated, msg, c.clock.Now()))
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	if err := c.setDeploymentRevision(ctx, d, newRevision, true); err != nil {
		return nil, err
	}
	return created, nil
}

// syncExistingNewReplicaSet gives the ReplicaSet of the current template
// the next revision when an older template was current (a rollback), the
// Deployment's annotations and minReadySeconds.
func (c *Controller) syncExistingNewReplicaSet(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string) (*appsv1.ReplicaSet, error) {
	cp := rs.DeepCopy()
	oldRevision := cp.Annotations[RevisionAnnotation]
	changed := setNewReplicaSetAnnotations(d, cp, newRevision, true)
	if cp.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
		cp.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		changed = true
	}
	if changed {
		out, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update replica set %s: %w", cp.Name, err)
		}
		rs = out
		if oldRevision != "" && oldRevision != rs.Annotations[RevisionAnnotation] {
			c.recorder.Eventf(d, corev1.EventTypeNormal, ReasonDeploymentRollback, "Rolled back deployment %q to revision %s (replica set %s), now revision %s",
				d.Name, oldRevision, rs.Name, rs.Annotations[RevisionAnnotation])
		}
	}
	// A ReplicaSet that is not yet the Deployment's revision starts a
	// rollout (a rollback, or a creation whose condition was not
	// written): its progress is measured from now, not judged by the
	// condition of the revision before.
	revision := rs.Annotations[RevisionAnnotation]
	cond := getCondition(d.Status, appsv1.DeploymentProgressing)
	if hasProgressDeadline(d) && !d.Spec.Paused && (cond == nil || d.Annotations[RevisionAnnotation] != revision) {
		msg := fmt.Sprintf("Found new replica set %q", rs.Name)
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewRS, msg, c.clock.Now()))
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	if err := c.setDeploymentRevision(ctx, d, revision, false); err != nil {
		return nil, err
	}
	return rs, nil
}

// setDeploymentRevision records the current revision on the Deployment.
// A revision that starts a new ReplicaSet also clears the record of an
// earlier automatic rollback, which no longer describes the rollout.
func (c *Controller) setDeploymentRevision(ctx context.Context, d *appsv1.Deployment, revision string, fresh bool) error {
	_, rolledBack := d.Annotations[AutoRolledBackFromAnnotation]
	if d.Annotations[RevisionAnnotation] == revision && !(fresh && rolledBack) {
		return nil
	}
	cp := d.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[RevisionAnnotation] = revision
	if fresh {
		clearAutoRollback(cp.Annotations)
	}
	// The write returns the stored status; status changes made so far in
	// this sync are carried over.
	st := d.Status
	if err := c.writeDeployment(ctx, cp); err != nil {
		return err
	}
	cp.Status = st
	*d = *cp
	return nil
}

func clearAutoRollback(m map[string]string) {
	delete(m, AutoRolledBackFromAnnotation)
	delete(m, AutoRolledBackToAnnotation)
	delete(m, AutoRollbackReasonAnnotation)
}

// maxRevisionHistoryChars caps the revision-history annotation.
const maxRevisionHistoryChars = 2000

// setNewReplicaSetAnnotations copies the Deployment's annotations to the
// ReplicaSet of its current template and gives it newRevision unless it
// already has a later one; a fresh ReplicaSet also gets the replica
// annotations. It reports whether anything changed.
func setNewReplicaSetAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string, exists bool) bool {
	changed := false
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range d.Annotations {
		if skipAnnotation(k) || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	oldRevision := rs.Annotations[RevisionAnnotation]
	oldN, _ := strconv.ParseInt(oldRevision, 10, 64) // a missing or garbled revision counts as 0
	newN, _ := strconv.ParseInt(newRevision, 10, 64) // made by this package from a number
	if oldN < newN {
		rs.Annotations[RevisionAnnotation] = newRevision
		changed = true
		if oldRevision != "" {
			history := oldRevision
			if h := rs.Annotations[RevisionHistoryAnnotation]; h != "" {
				history = h + "," + oldRevision
			}
			for len(history) > maxRevisionHistoryChars {
				_, rest, ok := strings.Cut(history, ",")
				if !ok {
					break
				}
				history = rest
			}
			rs.Annotations[RevisionHistoryAnnotation] = history
		}
	}
	if !exists && setReplicasAnnotations(rs, replicasOf(d.Spec.Replicas), replicasOf(d.Spec.Replicas)+maxSurge(d)) {
		changed = true
	}
	return changed
}

// setReplicasAnnotations records the Deployment size a ReplicaSet was
// scaled for; it reports whether that changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, max int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(max))
	if rs.Annotations[DesiredReplicasAnnotation] == d && rs.Annotations[MaxReplicasAnnotation] == m {
		return false
	}
	rs.Annotations[DesiredReplicasAnnotation] = d
	rs.Annotations[MaxReplicasAnnotation] = m
	return true
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// cleanupOldReplicaSets deletes the oldest old ReplicaSets beyond
// revisionHistoryLimit that have no pods left.
func (c *Controller) cleanupOldReplicaSets(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(max(*d.Spec.RevisionHistoryLimit, 0))
	if diff <= 0 {
		return nil
	}
	byRevision(alive)
	var errs []error
	for _, rs := range alive[:diff] {
		if rs.Status.Replicas != 0 || replicasOf(rs.Spec.Replicas) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		uid := rs.UID
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete old replica set %s: %w", rs.Name, err))
			continue
		}
		c.log.Info("deleted old replica set beyond the revision history limit", "ns", rs.Namespace, "replicaset", rs.Name, "rev", Revision(rs))
	}
	return errors.Join(errs...)
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// specReplicas is the sum of the ReplicaSets' spec.replicas.
func specReplicas(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += replicasOf(rs.Spec.Replicas)
		}
	}
	return n
}

// activeOnly keeps the ReplicaSets with replicas wanted.
func activeOnly(sets []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range sets {
		if rs != nil && replicasOf(rs.Spec.Replicas) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

func withNew(old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	all := append([]*appsv1.ReplicaSet(nil), old...)
	if newRS != nil {
		all = append(all, newRS)
	}
	return all
}
