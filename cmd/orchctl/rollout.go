package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	deploymentctl "orch.dev/orch/server/controller/deployment"
)

// The workload kinds the rollout, scale and set commands know.
var (
	deploymentsGR   = schema.GroupResource{Group: "apps", Resource: "deployments"}
	replicaSetsGR   = schema.GroupResource{Group: "apps", Resource: "replicasets"}
	statefulSetsGR  = schema.GroupResource{Group: "apps", Resource: "statefulsets"}
	daemonSetsGR    = schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	controllersGR   = schema.GroupResource{Resource: "replicationcontrollers"}
	restartedAtNote = "kubectl.kubernetes.io/restartedAt"
)

// workload is one object a command line names, resolved to its kind.
type workload struct {
	mapping *meta.RESTMapping
	name    string
}

func (w workload) String() string           { return objectName(w.mapping.GroupVersionKind, w.name) }
func (w workload) gr() schema.GroupResource { return w.mapping.Resource.GroupResource() }
func (w workload) is(grs ...schema.GroupResource) bool {
	for _, gr := range grs {
		if w.gr() == gr {
			return true
		}
	}
	return false
}

// workloads resolves KIND/NAME... or KIND NAME... arguments; every kind must
// be one of allowed, which what names for the error.
func (s *session) workloads(c *cli.Context, cn *connection, args []string, what string, allowed ...schema.GroupResource) ([]workload, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("say which object: KIND/NAME or KIND NAME, e.g. deployment/web (%s)", what)
	}
	targets, err := s.resolveTargets(c.Context, cn, args)
	if err != nil {
		return nil, err
	}
	var out []workload
	for _, t := range targets {
		if len(t.names) == 0 {
			return nil, fmt.Errorf("say which %s: %s NAME or %s/NAME", t.mapping.Resource.Resource, args[0], args[0])
		}
		for _, n := range t.names {
			w := workload{mapping: t.mapping, name: n}
			if !w.is(allowed...) {
				return nil, fmt.Errorf("%s: %s", w, what)
			}
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *session) rolloutCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollout",
		Usage: "follow, pause, resume, restart and undo rollouts of deployments, daemon sets and stateful sets",
		Subcommands: []*cli.Command{
			{
				Name:      "status",
				Usage:     "wait for a rollout to finish, showing its progress",
				ArgsUsage: "KIND/NAME",
				Description: "Exits 0 once the rollout is complete, 1 when it fails: a deployment that passed its progress\n" +
					"deadline (and was perhaps rolled back automatically), or --timeout.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Value: true, Usage: "follow the rollout until it ends; false prints the status once"},
					&cli.DurationFlag{Name: "timeout", Usage: "give up after `DURATION` (0: no limit)"},
				},
				BashComplete: completeKinds,
				Action:       s.rolloutStatus,
			},
			{
				Name:         "history",
				Usage:        "list the revisions of a deployment, or show one",
				ArgsUsage:    "KIND/NAME",
				Flags:        []cli.Flag{&cli.Int64Flag{Name: "revision", Usage: "show the pod template of revision `N`"}},
				BashComplete: completeKinds,
				Action:       s.rolloutHistory,
			},
			{
				Name:         "undo",
				Usage:        "go back to an earlier revision of a deployment",
				ArgsUsage:    "KIND/NAME",
				Flags:        []cli.Flag{&cli.Int64Flag{Name: "to-revision", Usage: "the revision `N` to go back to (default: the previous one)"}},
				BashComplete: completeKinds,
				Action:       s.rolloutUndo,
			},
			{
				Name:         "restart",
				Usage:        "replace every pod of a deployment, daemon set or stateful set with a rollout",
				ArgsUsage:    "KIND/NAME...",
				BashComplete: completeKinds,
				Action:       s.rolloutRestart,
			},
			{
				Name:         "pause",
				Usage:        "stop a deployment's rollouts; template changes wait until it is resumed",
				ArgsUsage:    "KIND/NAME...",
				BashComplete: completeKinds,
				Action:       func(c *cli.Context) error { return s.rolloutPause(c, true) },
			},
			{
				Name:         "resume",
				Usage:        "let a paused deployment roll out again",
				ArgsUsage:    "KIND/NAME...",
				BashComplete: completeKinds,
				Action:       func(c *cli.Context) error { return s.rolloutPause(c, false) },
			},
		},
	}
}

// eachWorkload runs do for every named workload, printing "NAME what" for
// the ones that succeed and the errors of the others, and carries on.
func (s *session) eachWorkload(ws []workload, do func(workload) (string, error)) error {
	failed := false
	for _, w := range ws {
		msg, err := do(w)
		if err != nil {
			if _, down := unreachable(err); down {
				return err
			}
			fmt.Fprintf(s.stderr, "error: %s: %s\n", w, s.explain(err))
			failed = true
			continue
		}
		fmt.Fprintln(s.stdout, w.String()+" "+msg)
	}
	if failed {
		return errReported
	}
	return nil
}

func (s *session) rolloutPause(c *cli.Context, pause bool) error {
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, c.Args().Slice(), "only deployments can be "+verb+"d", deploymentsGR)
	if err != nil {
		return err
	}
	return s.eachWorkload(ws, func(w workload) (string, error) {
		deps := cn.clientset.AppsV1().Deployments(cn.namespace)
		d, err := deps.Get(c.Context, w.name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if d.Spec.Paused == pause {
			if pause {
				return "", fmt.Errorf("deployment %q is already paused", w.name)
			}
			return "", fmt.Errorf("deployment %q is not paused", w.name)
		}
		patch := fmt.Sprintf(`{"spec":{"paused":%t}}`, pause)
		if _, err := deps.Patch(c.Context, w.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return "", err
		}
		return verb + "d", nil
	})
}

func (s *session) rolloutRestart(c *cli.Context) error {
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, c.Args().Slice(), "only deployments, daemon sets and stateful sets can be restarted",
		deploymentsGR, daemonSetsGR, statefulSetsGR)
	if err != nil {
		return err
	}
	return s.eachWorkload(ws, func(w workload) (string, error) {
		if w.is(deploymentsGR) {
			d, err := cn.clientset.AppsV1().Deployments(cn.namespace).Get(c.Context, w.name, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			if d.Spec.Paused {
				return "", fmt.Errorf("cannot restart paused deployment %q (run 'orchctl rollout resume %s' first)", w.name, w)
			}
		}
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{restartedAtNote: s.now().Format(time.RFC3339)},
		}}}})
		if err != nil {
			return "", err
		}
		if _, err := cn.resourceClient(w.mapping, cn.namespace).Patch(c.Context, w.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return "", err
		}
		return "restarted", nil
	})
}

// oneDeployment resolves the single deployment a command names.
func (s *session) oneDeployment(c *cli.Context, cn *connection, command string) (workload, error) {
	ws, err := s.workloads(c, cn, c.Args().Slice(), "rollout "+command+" works on deployments only: they keep their revisions as replica sets", deploymentsGR)
	if err != nil {
		return workload{}, err
	}
	if len(ws) != 1 {
		return workload{}, fmt.Errorf("rollout %s takes one deployment, got %d", command, len(ws))
	}
	return ws[0], nil
}

// revisions lists the ReplicaSets a deployment controls, by revision.
func revisions(ctx context.Context, cn *connection, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	l, err := cn.clientset.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []appsv1.ReplicaSet
	for _, rs := range l.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID && deploymentctl.Revision(&rs) > 0 {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return deploymentctl.Revision(&out[i]) < deploymentctl.Revision(&out[j]) })
	return out, nil
}

// revisionNumbers lists the revisions for error messages.
func revisionNumbers(sets []appsv1.ReplicaSet) string {
	var nums []string
	for i := range sets {
		nums = append(nums, strconv.FormatInt(deploymentctl.Revision(&sets[i]), 10))
	}
	if len(nums) == 0 {
		return "none"
	}
	return strings.Join(nums, ", ")
}

func findRevision(sets []appsv1.ReplicaSet, rev int64) *appsv1.ReplicaSet {
	for i := range sets {
		if deploymentctl.Revision(&sets[i]) == rev {
			return &sets[i]
		}
	}
	return nil
}

func (s *session) rolloutHistory(c *cli.Context) error {
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	w, err := s.oneDeployment(c, cn, "history")
	if err != nil {
		return err
	}
	d, err := cn.clientset.AppsV1().Deployments(cn.namespace).Get(c.Context, w.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sets, err := revisions(c.Context, cn, d)
	if err != nil {
		return err
	}
	if rev := c.Int64("revision"); rev != 0 {
		rs := findRevision(sets, rev)
		if rs == nil {
			return fmt.Errorf("deployment %q has no revision %d (revisions: %s)", w.name, rev, revisionNumbers(sets))
		}
		fmt.Fprintf(s.stdout, "%s with revision #%d\n", w, rev)
		dd := newDescriber(s.stdout, s.now())
		tmpl := rs.Spec.Template
		dd.head(0, "Pod Template")
		dd.list(1, "Labels", sortedPairs(tmpl.Labels, "="))
		dd.list(1, "Annotations", sortedPairs(tmpl.Annotations, ": "))
		dd.containers(1, "Containers", tmpl.Spec.Containers, nil)
		return dd.flush()
	}
	fmt.Fprintln(s.stdout, w.String())
	if len(sets) == 0 {
		fmt.Fprintln(s.stdout, "No rollout history found.")
		return nil
	}
	tw := tabwriter.NewWriter(s.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for i := range sets {
		cause := orNone(sets[i].Annotations[deploymentctl.ChangeCauseAnnotation])
		fmt.Fprintf(tw, "%d\t%s\n", deploymentctl.Revision(&sets[i]), clean(cause))
	}
	return tw.Flush()
}

func (s *session) rolloutUndo(c *cli.Context) error {
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	w, err := s.oneDeployment(c, cn, "undo")
	if err != nil {
		return err
	}
	to := c.Int64("to-revision")
	if to < 0 {
		return fmt.Errorf("--to-revision %d: want a revision number, or 0 for the previous one", to)
	}
	deps := cn.clientset.AppsV1().Deployments(cn.namespace)
	var msg string
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := deps.Get(c.Context, w.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Paused {
			return fmt.Errorf("cannot roll back paused deployment %q; resume it first with 'orchctl rollout resume %s'", w.name, w)
		}
		sets, err := revisions(c.Context, cn, d)
		if err != nil {
			return err
		}
		var target *appsv1.ReplicaSet
		if to > 0 {
			if target = findRevision(sets, to); target == nil {
				return fmt.Errorf("deployment %q has no revision %d (revisions: %s)", w.name, to, revisionNumbers(sets))
			}
		} else {
			// The previous revision is the newest but one.
			if len(sets) < 2 {
				return fmt.Errorf("deployment %q has no previous revision to go back to (revisions: %s)", w.name, revisionNumbers(sets))
			}
			target = &sets[len(sets)-2]
		}
		rev := deploymentctl.Revision(target)
		if deploymentctl.EqualIgnoreHash(&target.Spec.Template, &d.Spec.Template) {
			msg = fmt.Sprintf("skipped rollback (current template already matches revision %d)", rev)
			return nil
		}
		deploymentctl.RollbackTo(d, target)
		if _, err := deps.Update(c.Context, d, metav1.UpdateOptions{}); err != nil {
			return err
		}
		msg = fmt.Sprintf("rolled back to revision %d", rev)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, w.String()+" "+msg)
	return nil
}
