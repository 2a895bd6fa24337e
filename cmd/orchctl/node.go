package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
)

func (s *session) cordonCommand() *cli.Command {
	return &cli.Command{
		Name:      "cordon",
		Usage:     "mark nodes unschedulable: new pods go elsewhere, running pods stay",
		ArgsUsage: "NODE... | node/NODE...",
		Action:    func(c *cli.Context) error { return s.setUnschedulable(c, true) },
	}
}

func (s *session) uncordonCommand() *cli.Command {
	return &cli.Command{
		Name:      "uncordon",
		Usage:     "mark nodes schedulable again",
		ArgsUsage: "NODE... | node/NODE...",
		Action:    func(c *cli.Context) error { return s.setUnschedulable(c, false) },
	}
}

// nodeArg reads a node argument: NAME, or node/NAME as get -o name prints it.
func nodeArg(arg string) (string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	if !isNodesKind(kind) {
		return "", fmt.Errorf("%q: this command works on nodes; pass NODE or node/NODE", arg)
	}
	if name == "" {
		return "", fmt.Errorf("%q: the node's name is missing", arg)
	}
	return name, nil
}

func isNodesKind(kind string) bool {
	switch strings.ToLower(kind) {
	case "node", "nodes", "no":
		return true
	}
	return false
}

// setUnschedulable cordons (true) or uncordons (false) the named nodes,
// reporting each; a node that fails does not stop the others.
func (s *session) setUnschedulable(c *cli.Context, unschedulable bool) error {
	if c.NArg() == 0 {
		return fmt.Errorf("say which nodes, e.g. orchctl %s node-1", c.Command.Name)
	}
	var names []string
	for _, a := range c.Args().Slice() {
		n, err := nodeArg(a)
		if err != nil {
			return err
		}
		names = append(names, n)
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	failed := false
	for _, name := range names {
		if err := s.setNodeUnschedulable(c.Context, cn, name, unschedulable); err != nil {
			if _, down := unreachable(err); down {
				return err
			}
			fmt.Fprintln(s.stderr, "error: "+s.explain(err))
			failed = true
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// setNodeUnschedulable cordons (true) or uncordons (false) one node and
// says so: "node/NAME cordoned", or "already cordoned".
func (s *session) setNodeUnschedulable(ctx context.Context, cn *connection, name string, unschedulable bool) error {
	verb := map[bool]string{true: "cordoned", false: "uncordoned"}[unschedulable]
	nodes := cn.clientset.CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if n.Spec.Unschedulable == unschedulable {
		fmt.Fprintf(s.stdout, "node/%s already %s\n", name, verb)
		return nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": unschedulable}})
	if err != nil {
		return err
	}
	if _, err := nodes.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "node/%s %s\n", name, verb)
	return nil
}

func (s *session) taintCommand() *cli.Command {
	return &cli.Command{
		Name:      "taint",
		Usage:     "add, change or remove taints of nodes",
		ArgsUsage: "nodes NODE... | node/NODE...  KEY[=VALUE]:EFFECT... KEY:EFFECT-... KEY-...",
		Description: "EFFECT is NoSchedule, PreferNoSchedule or NoExecute. KEY:EFFECT- removes the taint with the\n" +
			"key and effect, KEY- every taint with the key. Changing the value of an existing taint needs\n" +
			"--overwrite. Example: orchctl taint nodes node-1 dedicated=db:NoSchedule",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "overwrite", Usage: "allow changing the value of existing taints"}},
		Action: s.taint,
	}
}

// taintChange is one taint argument, checked.
type taintChange struct {
	arg    string
	taint  corev1.Taint // with remove, Effect is empty when any goes
	remove bool
}

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

// parseTaint reads KEY[=VALUE]:EFFECT, KEY:EFFECT- or KEY-.
func parseTaint(arg string) (taintChange, error) {
	ch := taintChange{arg: arg, remove: strings.HasSuffix(arg, "-")}
	spec := strings.TrimSuffix(arg, "-")
	kv, effect, hasEffect := strings.Cut(spec, ":")
	key, value, hasValue := strings.Cut(kv, "=")
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return ch, fmt.Errorf("invalid taint %q: key %q: %s", arg, key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return ch, fmt.Errorf("invalid taint %q: value %q: %s", arg, value, strings.Join(errs, "; "))
	}
	if hasEffect {
		ok := false
		for _, e := range taintEffects {
			ok = ok || effect == string(e)
		}
		if !ok {
			return ch, fmt.Errorf("invalid taint %q: effect %q: want NoSchedule, PreferNoSchedule or NoExecute", arg, effect)
		}
	}
	switch {
	case ch.remove && hasValue:
		return ch, fmt.Errorf("invalid taint %q: a removal names the key and maybe the effect (KEY- or KEY:EFFECT-), not the value", arg)
	case !ch.remove && !hasEffect:
		return ch, fmt.Errorf("invalid taint %q: say its effect, e.g. %s:NoSchedule", arg, spec)
	}
	ch.taint = corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
	return ch, nil
}

// parseTaintArgs splits taint's arguments into node names and checked
// changes.
func parseTaintArgs(args []string) (nodes []string, changes []taintChange, err error) {
	var objArgs []string
	for _, a := range args {
		if strings.Contains(a, ":") || strings.Contains(a, "=") || strings.HasSuffix(a, "-") {
			ch, err := parseTaint(a)
			if err != nil {
				return nil, nil, err
			}
			changes = append(changes, ch)
		} else {
			objArgs = append(objArgs, a)
		}
	}
	switch {
	case len(objArgs) == 0:
		return nil, nil, errors.New("say which nodes: orchctl taint nodes NODE... KEY=VALUE:EFFECT")
	case strings.Contains(objArgs[0], "/"):
		for _, a := range objArgs {
			n, err := nodeArg(a)
			if err != nil {
				return nil, nil, err
			}
			if n == a {
				return nil, nil, fmt.Errorf("argument %q: with node/NAME arguments, every node must be node/NAME", a)
			}
			nodes = append(nodes, n)
		}
	case !isNodesKind(objArgs[0]):
		return nil, nil, fmt.Errorf("%q: only nodes have taints; orchctl taint nodes NODE... KEY=VALUE:EFFECT", objArgs[0])
	default:
		nodes = objArgs[1:]
	}
	if len(nodes) == 0 {
		return nil, nil, errors.New("say which nodes: orchctl taint nodes NODE... KEY=VALUE:EFFECT")
	}
	if len(changes) == 0 {
		return nil, nil, errors.New("say which taints to add (KEY=VALUE:EFFECT) or remove (KEY:EFFECT- or KEY-)")
	}
	for i, a := range changes {
		for _, b := range changes[:i] {
			if overlap(a, b) {
				return nil, nil, fmt.Errorf("taints %q and %q are about the same key and effect; give each once", b.arg, a.arg)
			}
		}
	}
	return nodes, changes, nil
}

// overlap says whether two changes touch the same taint: the same key,
// and the same effect or a removal of every effect.
func overlap(a, b taintChange) bool {
	if a.taint.Key != b.taint.Key {
		return false
	}
	return a.taint.Effect == b.taint.Effect || a.remove && a.taint.Effect == "" || b.remove && b.taint.Effect == ""
}

func (s *session) taint(c *cli.Context) error {
	nodes, changes, err := parseTaintArgs(c.Args().Slice())
	if err != nil {
		return err
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	verb := "untainted"
	for _, ch := range changes {
		if !ch.remove {
			verb = "tainted"
		}
	}
	failed := false
	for _, name := range nodes {
		if err := s.taintNode(c.Context, cn, name, changes, c.Bool("overwrite")); err != nil {
			if _, down := unreachable(err); down {
				return err
			}
			fmt.Fprintf(s.stderr, "error: node/%s: %s\n", name, s.explain(err))
			failed = true
			continue
		}
		fmt.Fprintf(s.stdout, "node/%s %s\n", name, verb)
	}
	if failed {
		return errReported
	}
	return nil
}

// taintNode replaces the node's taints with the changed list, in a merge
// patch that carries the resourceVersion the changes were checked
// against (spec.taints has no merge key: a patch replaces the list).
func (s *session) taintNode(ctx context.Context, cn *connection, name string, changes []taintChange, overwrite bool) error {
	nodes := cn.clientset.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints, err := applyTaints(n.Spec.Taints, changes, overwrite, metav1.Now())
		if err != nil {
			return err
		}
		var list any // null removes spec.taints
		if len(taints) > 0 {
			list = taints
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
			"spec":     map[string]any{"taints": list},
		})
		if err != nil {
			return err
		}
		_, err = nodes.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// applyTaints returns the taints after the changes. Removing a taint the
// node does not have is an error, as is changing a value without
// overwrite. New NoExecute taints get the time they were added, from which
// tolerationSeconds count.
func applyTaints(cur []corev1.Taint, changes []taintChange, overwrite bool, now metav1.Time) ([]corev1.Taint, error) {
	out := append([]corev1.Taint(nil), cur...)
	for _, ch := range changes {
		if !ch.remove {
			continue
		}
		kept := out[:0]
		for _, t := range out {
			if t.Key == ch.taint.Key && (ch.taint.Effect == "" || t.Effect == ch.taint.Effect) {
				continue
			}
			kept = append(kept, t)
		}
		if len(kept) == len(out) {
			return nil, fmt.Errorf("taint %q not found", strings.TrimSuffix(ch.arg, "-"))
		}
		out = kept
	}
	for _, ch := range changes {
		if ch.remove {
			continue
		}
		t := ch.taint
		if t.Effect == corev1.TaintEffectNoExecute {
			t.TimeAdded = &now
		}
		i := -1
		for j := range out {
			if out[j].Key == t.Key && out[j].Effect == t.Effect {
				i = j
			}
		}
		switch {
		case i < 0:
			out = append(out, t)
		case out[i].Value == t.Value:
		case !overwrite:
			return nil, fmt.Errorf("the node already has taint %s=%s:%s; pass --overwrite to change its value", t.Key, out[i].Value, t.Effect)
		default:
			out[i] = t
		}
	}
	return out, nil
}
