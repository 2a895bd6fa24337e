package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// drainPollInterval is how often drain looks whether the evicted pods are
// gone.
const drainPollInterval = 200 * time.Millisecond

// evictRetryInterval is how long drain waits before asking again for an
// eviction the API refused for now (429, a disruption budget).
const evictRetryInterval = 5 * time.Second

func (s *session) drainCommand() *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "cordon a node and evict its pods, before maintenance",
		ArgsUsage: "NODE | node/NODE",
		Description: "Marks the node unschedulable, then evicts its pods (each gets its grace period to stop;\n" +
			"controllers make replacements elsewhere) and waits until they are gone. DaemonSet pods stay, as\n" +
			"do mirror and finished pods. Pods no controller manages would not come back, and emptyDir data\n" +
			"would be lost: drain refuses those unless --force and --delete-emptydir-data say otherwise.\n" +
			"orchctl uncordon NODE makes the node schedulable again. Example: orchctl drain node-2 --timeout 2m",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up after `DURATION` when pods are still there (0: no limit)"},
			&cli.IntFlag{Name: "grace-period", Value: -1, Usage: "`SECONDS` each pod gets to stop; -1 keeps the pod's own"},
			&cli.BoolFlag{Name: "force", Usage: "also evict pods that no controller manages: they are not recreated anywhere"},
			&cli.BoolFlag{Name: "ignore-daemonsets", Value: true, Usage: "leave DaemonSet pods on the node; false refuses to drain a node that has some"},
			&cli.BoolFlag{Name: "delete-emptydir-data", Usage: "also evict pods with emptyDir volumes, whose data is lost"},
		},
		Action: s.drain,
	}
}

// drainRules are the choices that decide which pods drain may evict.
type drainRules struct {
	force, ignoreDaemonSets, deleteEmptyDir bool
}

// drainPlan is what drain does with a node's pods: the ones it evicts, the
// warnings it prints, and the reasons it refuses to go on.
type drainPlan struct {
	evict    []*corev1.Pod
	warnings []string
	refusals []string
}

// planDrain sorts the pods on a node as kubectl drain does. Mirror pods
// and finished pods are left silently; DaemonSet pods are left with a
// warning (or refused without --ignore-daemonsets); pods without a
// controller and pods with emptyDir volumes are refused unless the rules
// allow them, in which case a warning says they go.
func planDrain(pods []corev1.Pod, rules drainRules) drainPlan {
	var plan drainPlan
	var daemons, bare, local []string
	for i := range pods {
		p := &pods[i]
		name := p.Namespace + "/" + p.Name
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ref := metav1.GetControllerOfNoCopy(p)
		if ref != nil && ref.Kind == "DaemonSet" {
			daemons = append(daemons, name)
			continue
		}
		if p.DeletionTimestamp == nil {
			if ref == nil {
				bare = append(bare, name)
			}
			if usesEmptyDir(p) {
				local = append(local, name)
			}
		}
		plan.evict = append(plan.evict, p)
	}
	list := func(names []string) string { return strings.Join(names, ", ") }
	if len(daemons) > 0 {
		if rules.ignoreDaemonSets {
			plan.warnings = append(plan.warnings, "ignoring DaemonSet-managed Pods: "+list(daemons))
		} else {
			plan.refusals = append(plan.refusals, "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "+list(daemons))
		}
	}
	if len(bare) > 0 {
		if rules.force {
			plan.warnings = append(plan.warnings, "deleting Pods that declare no controller: "+list(bare))
		} else {
			plan.refusals = append(plan.refusals, "cannot delete Pods that declare no controller (use --force to override): "+list(bare))
		}
	}
	if len(local) > 0 {
		if rules.deleteEmptyDir {
			plan.warnings = append(plan.warnings, "deleting Pods with local storage: "+list(local))
		} else {
			plan.refusals = append(plan.refusals, "cannot delete Pods with local storage (use --delete-emptydir-data to override): "+list(local))
		}
	}
	return plan
}

func usesEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

func (s *session) drain(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("say which node, e.g. orchctl drain node-1 (one node at a time)")
	}
	name, err := nodeArg(c.Args().First())
	if err != nil {
		return err
	}
	var grace *int64
	switch g := c.Int("grace-period"); {
	case g < -1:
		return fmt.Errorf("--grace-period %d: want -1 (the pod's own) or 0 and up", g)
	case g >= 0:
		v := int64(g)
		grace = &v
	}
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return fmt.Errorf("--timeout %v: want a positive duration, or 0 for no limit", timeout)
	}
	rules := drainRules{force: c.Bool("force"), ignoreDaemonSets: c.Bool("ignore-daemonsets"), deleteEmptyDir: c.Bool("delete-emptydir-data")}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	if err := s.setNodeUnschedulable(ctx, cn, name, true); err != nil {
		return err
	}
	// The timeout bounds the waits rather than each request: a request
	// cut short by a deadline says less than the pods still there.
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	pods, err := s.podsOnNode(ctx, cn, name)
	if err != nil {
		return err
	}
	plan := planDrain(pods, rules)
	for _, w := range plan.warnings {
		fmt.Fprintln(s.stderr, "Warning: "+w)
	}
	if len(plan.refusals) > 0 {
		return fmt.Errorf("cannot drain node/%s (it stays cordoned): %s", name, strings.Join(plan.refusals, "; "))
	}
	for i, p := range plan.evict {
		fmt.Fprintf(s.stdout, "evicting pod %s/%s\n", p.Namespace, p.Name)
		if err := s.evictPod(ctx, cn, p, grace, expired); err != nil {
			if errors.Is(err, errDrainTimeout) || ctx.Err() != nil {
				return s.drainError(name, timeout, err, plan.evict[i:])
			}
			return fmt.Errorf("cannot evict pod %s/%s: %s", p.Namespace, p.Name, s.explain(err))
		}
	}
	if err := s.waitEvicted(ctx, cn, name, plan.evict, timeout, expired); err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "node/%s drained\n", name)
	return nil
}

// podsOnNode lists the pods bound to a node, in every namespace.
func (s *session) podsOnNode(ctx context.Context, cn *connection, node string) ([]corev1.Pod, error) {
	list, err := cn.clientset.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// errDrainTimeout is what a wait returns when drain's --timeout passed.
var errDrainTimeout = errors.New("drain timed out")

// evictPod asks the API to evict one pod, again after a while when it is
// refused for now (429), until ctx ends or the drain times out. A pod
// already gone (or replaced by another of the same name) counts as
// evicted.
func (s *session) evictPod(ctx context.Context, cn *connection, p *corev1.Pod, grace *int64, expired <-chan time.Time) error {
	uid := p.UID
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &uid}},
	}
	for {
		err := cn.clientset.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			cur, gerr := cn.clientset.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(gerr) || gerr == nil && cur.UID != uid {
				return nil // the UID precondition failed: this pod is gone
			}
		case !apierrors.IsTooManyRequests(err):
			return err
		}
		fmt.Fprintf(s.stderr, "error when evicting pods/%q -n %q (will retry after %v): %s\n", p.Name, p.Namespace, evictRetryInterval, s.explain(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-expired:
			return errDrainTimeout
		case <-time.After(evictRetryInterval):
		}
	}
}

// waitEvicted waits until none of pods is on the node any more (gone, or
// replaced by a pod of the same name), saying so for each.
func (s *session) waitEvicted(ctx context.Context, cn *connection, node string, pods []*corev1.Pod, timeout time.Duration, expired <-chan time.Time) error {
	pending := append([]*corev1.Pod(nil), pods...)
	tick := time.NewTicker(drainPollInterval)
	defer tick.Stop()
	for len(pending) > 0 {
		current, err := s.podsOnNode(ctx, cn, node)
		if err != nil {
			if ctx.Err() != nil {
				return s.drainError(node, timeout, ctx.Err(), pending)
			}
			return err
		}
		there := map[types.UID]bool{}
		for _, p := range current {
			there[p.UID] = true
		}
		left := pending[:0]
		for _, p := range pending {
			if there[p.UID] {
				left = append(left, p)
				continue
			}
			fmt.Fprintf(s.stdout, "pod/%s evicted\n", p.Name)
		}
		if pending = left; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return s.drainError(node, timeout, ctx.Err(), pending)
		case <-expired:
			return s.drainError(node, timeout, errDrainTimeout, pending)
		case <-tick.C:
		}
	}
	return nil
}

// drainError explains why a drain stopped, naming the pods still there.
func (s *session) drainError(node string, timeout time.Duration, err error, pending []*corev1.Pod) error {
	var names []string
	for _, p := range pending {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	still := ""
	if len(names) > 0 {
		still = "; still there: " + strings.Join(names, ", ")
	}
	if errors.Is(err, errDrainTimeout) {
		return fmt.Errorf("drain of node/%s timed out after --timeout %v%s", node, timeout, still)
	}
	return fmt.Errorf("drain of node/%s: %s%s", node, s.explain(err), still)
}
