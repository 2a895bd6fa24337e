package statefulset

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const reasonRecreatingFailedPod = "RecreatingFailedPod"

// reconcile decides, from one view of the set's pods, which pods to create
// and delete, and does it. It returns how soon to look again when waiting
// on time (minReadySeconds, failure back-off).
func (c *Controller) reconcile(ctx context.Context, s *state) (time.Duration, error) {
	monotonic := s.set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	var retry time.Duration
	var creates, deletes []*corev1.Pod
	var errs []error

	// The pods the set should have, lowest ordinal first. In order, a pod
	// that is missing, on its way out or not yet Running, Ready and
	// available holds back everything after it.
	blocked := false
	for i := 0; i < s.replicas && !blocked; i++ {
		p := s.byOrdinal[i]
		switch {
		case p == nil:
			creates = append(creates, s.podFor(i))
			blocked = monotonic
		case p.DeletionTimestamp != nil:
			// NAME-i is made again only once the old NAME-i is gone.
			blocked = monotonic
		case isFinished(p):
			if d, ok := c.failedPodBackoff(s, p, i); ok {
				deletes = append(deletes, p)
			} else {
				retry = sooner(retry, d)
			}
			blocked = monotonic
		case !isRunningAndReady(p):
			blocked = monotonic
		case !s.healthy(p):
			retry = sooner(retry, s.availableIn(p))
			blocked = monotonic
		}
		if p != nil && p.DeletionTimestamp == nil && !isFinished(p) {
			if err := c.fixIdentity(ctx, s, p, i); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Scale-down: the pods above the replica count go from the highest
	// ordinal; in order, one at a time, each once the one above is gone.
	for _, p := range s.condemned {
		if blocked {
			break
		}
		if p.DeletionTimestamp == nil {
			deletes = append(deletes, p)
		}
		blocked = monotonic
	}

	// Rolling update: from the highest ordinal down to the partition, the
	// first pod of another revision is deleted (and made again by a later
	// sync once it is gone); pods already updated must be healthy first.
	if !blocked && s.rollingUpdate() {
		for i := s.replicas - 1; i >= s.partition(); i-- {
			p := s.byOrdinal[i]
			if p == nil {
				break
			}
			if revisionLabel(p) != s.update && p.DeletionTimestamp == nil && !isFinished(p) {
				deletes = append(deletes, p)
				break
			}
			if !s.healthy(p) {
				break
			}
		}
	}

	if err := c.apply(ctx, s, creates, deletes); err != nil {
		errs = append(errs, err)
	}
	return retry, errors.Join(errs...)
}

// failedPodBackoff says whether the finished pod with ordinal i may be
// deleted now; if not, how long until it may. The first failure is
// replaced at once, failures that follow wait longer each time.
func (c *Controller) failedPodBackoff(s *state, p *corev1.Pod, i int) (time.Duration, bool) {
	id := string(s.set.UID) + "/" + strconv.Itoa(i)
	if c.backoff.IsInBackOffSinceUpdate(id, s.now) {
		return c.backoff.Get(id), false
	}
	c.backoff.Next(id, s.now)
	c.recorder.Eventf(s.set, corev1.EventTypeWarning, reasonRecreatingFailedPod,
		"StatefulSet %s/%s is recreating %s Pod %s", s.set.Namespace, s.set.Name, p.Status.Phase, p.Name)
	return 0, true
}

// fixIdentity puts back the identity labels of a pod that lacks them (one
// adopted, or edited by hand).
func (c *Controller) fixIdentity(ctx context.Context, s *state, p *corev1.Pod, ordinal int) error {
	want := identityLabels(s.set, ordinal)
	ok := true
	for k, v := range want {
		if p.Labels[k] != v {
			ok = false
		}
	}
	if ok {
		return nil
	}
	cp := p.DeepCopy()
	if cp.Labels == nil {
		cp.Labels = map[string]string{}
	}
	for k, v := range want {
		cp.Labels[k] = v
	}
	if _, err := c.deps.Client.CoreV1().Pods(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("label pod %s: %w", p.Name, err)
	}
	return nil
}

// apply deletes and creates pods, telling the expectations first.
func (c *Controller) apply(ctx context.Context, s *state, creates, deletes []*corev1.Pod) error {
	var errs []error
	for _, p := range deletes {
		c.expect.ExpectDeletions(s.key, p.UID)
	}
	for _, p := range deletes {
		if err := c.podCtl.Delete(ctx, p, s.set); err != nil {
			c.expect.DeletionObserved(s.key, p.UID)
			errs = append(errs, fmt.Errorf("delete pod %s: %w", p.Name, err))
			continue
		}
		c.expect.DeletionObservedIfGone(c.pods, s.key, p)
	}
	if len(creates) > 0 {
		c.expect.ExpectCreations(s.key, len(creates))
		for i, p := range creates {
			err := c.ensureClaims(ctx, s.set, p)
			if err == nil {
				_, err = c.podCtl.Create(ctx, p, s.set)
			}
			if err != nil {
				// This creation and the ones not attempted will never be
				// observed. AlreadyExists means the cache is behind (or a
				// pod of that name is not the set's); retrying sorts it out.
				for range creates[i:] {
					c.expect.CreationObserved(s.key)
				}
				errs = append(errs, fmt.Errorf("create pod %s: %w", p.Name, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}
