package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	deploymentctl "orch.dev/orch/server/controller/deployment"
)

// rolloutViewer says where a rollout stands: a line to show, whether it is
// over, and an error when it failed.
type rolloutViewer interface {
	status(obj runtime.Object) (msg string, done bool, err error)
}

func viewerFor(w workload) (rolloutViewer, error) {
	switch w.gr() {
	case deploymentsGR:
		return &deploymentViewer{}, nil
	case daemonSetsGR:
		return daemonSetViewer{}, nil
	case statefulSetsGR:
		return statefulSetViewer{}, nil
	}
	return nil, fmt.Errorf("%s: rollout status works on deployments, daemon sets and stateful sets", w)
}

// rolloutStatus follows a rollout through a watch of the object until it
// completes, fails, or --timeout passes.
func (s *session) rolloutStatus(c *cli.Context) error {
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return fmt.Errorf("--timeout %v: want a positive duration, or 0 for no limit", timeout)
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, c.Args().Slice(), "rollout status works on deployments, daemon sets and stateful sets",
		deploymentsGR, daemonSetsGR, statefulSetsGR)
	if err != nil {
		return err
	}
	if len(ws) != 1 {
		return fmt.Errorf("rollout status follows one object, got %d", len(ws))
	}
	w := ws[0]
	viewer, err := viewerFor(w)
	if err != nil {
		return err
	}
	rc := cn.resourceClient(w.mapping, cn.namespace)
	if !c.Bool("watch") {
		u, err := rc.Get(c.Context, w.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		obj, _, err := toTyped(u)
		if err != nil {
			return err
		}
		msg, _, err := viewer.status(obj)
		if err != nil {
			return err
		}
		fmt.Fprintln(s.stdout, msg)
		return nil
	}

	ctx, cancel := watchtools.ContextWithOptionalTimeout(c.Context, timeout)
	defer cancel()
	byName := fields.OneTermEqualSelector("metadata.name", w.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return rc.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return rc.Watch(ctx, o)
		},
	}
	exists := func(store cache.Store) (bool, error) {
		if _, ok, err := store.GetByKey(cn.namespace + "/" + w.name); err != nil || ok {
			return false, err
		}
		return false, apierrors.NewNotFound(w.gr(), w.name)
	}
	last := ""
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, exists, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, fmt.Errorf("%s was deleted while its rollout was followed", w)
		case watch.Added, watch.Modified:
		default:
			return false, nil
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, fmt.Errorf("watch sent %T, want an object", ev.Object)
		}
		obj, _, err := toTyped(u)
		if err != nil {
			return false, err
		}
		msg, done, err := viewer.status(obj)
		if err != nil {
			return false, err
		}
		if msg != last {
			fmt.Fprintln(s.stdout, msg)
			last = msg
		}
		return done, nil
	})
	switch {
	case err == nil:
		return nil
	case c.Context.Err() != nil:
		return c.Context.Err()
	case ctx.Err() != nil:
		return fmt.Errorf("timed out after %v waiting for the rollout of %s to finish", timeout, w)
	}
	return err
}

// deploymentViewer reads a Deployment's rollout as kubectl does, and also
// notices an automatic rollback: the record of one that appears while the
// rollout is followed, or one of the revision that failed.
type deploymentViewer struct {
	seen    bool
	initial string // the rollback record when following started
}

func rollbackRecord(d *appsv1.Deployment) string {
	a := d.Annotations
	if a[deploymentctl.AutoRolledBackFromAnnotation] == "" {
		return ""
	}
	return a[deploymentctl.AutoRolledBackFromAnnotation] + ">" + a[deploymentctl.AutoRolledBackToAnnotation] + ":" + a[deploymentctl.AutoRollbackReasonAnnotation]
}

func rolledBackError(d *appsv1.Deployment) error {
	a := d.Annotations
	msg := fmt.Sprintf("deployment %q exceeded its progress deadline; rolled back to revision %s", d.Name, a[deploymentctl.AutoRolledBackToAnnotation])
	if why := a[deploymentctl.AutoRollbackReasonAnnotation]; why != "" {
		msg += " (" + why + ")"
	}
	return errors.New(msg)
}

func (v *deploymentViewer) status(obj runtime.Object) (string, bool, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return "", false, fmt.Errorf("got %T, want a Deployment", obj)
	}
	record := rollbackRecord(d)
	if !v.seen {
		v.seen, v.initial = true, record
	}
	if record != "" && record != v.initial {
		return "", false, rolledBackError(d)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil && c.Reason == deploymentctl.ReasonTimedOut {
		// A rollback left the failed revision: the current one is newer.
		if record != "" && d.Annotations[deploymentctl.RevisionAnnotation] != d.Annotations[deploymentctl.AutoRolledBackFromAnnotation] {
			return "", false, rolledBackError(d)
		}
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	want := replicas(d.Spec.Replicas)
	st := d.Status
	var msg string
	switch {
	case st.UpdatedReplicas < want:
		msg = fmt.Sprintf("%d out of %d new replicas have been updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		msg = fmt.Sprintf("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		msg = fmt.Sprintf("%d of %d updated replicas are available", st.AvailableReplicas, st.UpdatedReplicas)
	default:
		return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
	}
	msg = fmt.Sprintf("Waiting for deployment %q rollout to finish: %s...", d.Name, msg)
	if d.Spec.Paused {
		msg += fmt.Sprintf(" (paused: 'orchctl rollout resume deployment/%s' resumes it)", d.Name)
	}
	return msg, false, nil
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

type daemonSetViewer struct{}

func (daemonSetViewer) status(obj runtime.Object) (string, bool, error) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return "", false, fmt.Errorf("got %T, want a DaemonSet", obj)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for the %s strategy; daemon set %q uses %s",
			appsv1.RollingUpdateDaemonSetStrategyType, ds.Name, ds.Spec.UpdateStrategy.Type)
	}
	if ds.Generation > ds.Status.ObservedGeneration {
		return "Waiting for daemon set spec update to be observed...", false, nil
	}
	st := ds.Status
	switch {
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled), false, nil
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", ds.Name, st.NumberAvailable, st.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out", ds.Name), true, nil
}

type statefulSetViewer struct{}

func (statefulSetViewer) status(obj runtime.Object) (string, bool, error) {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return "", false, fmt.Errorf("got %T, want a StatefulSet", obj)
	}
	if sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for the %s strategy; stateful set %q uses %s",
			appsv1.RollingUpdateStatefulSetStrategyType, sts.Name, sts.Spec.UpdateStrategy.Type)
	}
	st := sts.Status
	if st.ObservedGeneration == 0 || sts.Generation > st.ObservedGeneration {
		return "Waiting for statefulset spec update to be observed...", false, nil
	}
	want := replicas(sts.Spec.Replicas)
	if st.ReadyReplicas < want {
		return fmt.Sprintf("Waiting for %d pods to be ready...", want-st.ReadyReplicas), false, nil
	}
	if ru := sts.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		if updating := want - *ru.Partition; st.UpdatedReplicas < updating {
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", st.UpdatedReplicas, updating), false, nil
		}
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", st.UpdatedReplicas), true, nil
	}
	if st.UpdateRevision != st.CurrentRevision {
		return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", st.UpdatedReplicas, st.UpdateRevision), false, nil
	}
	return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", st.CurrentReplicas, st.CurrentRevision), true, nil
}
