package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
)

// metadataMap is what label and annotate edit: one of an object's two
// string maps in metadata, with the rules of its keys and values.
type metadataMap struct {
	command string // label, annotate
	noun    string // label, annotation
	field   string // labels, annotations: the key in metadata
	done    string // labeled, annotated
	get     func(*unstructured.Unstructured) map[string]string
	// checkValue returns the problems with a value; annotations take any.
	checkValue func(string) []string
}

var (
	labelsMap = metadataMap{command: "label", noun: "label", field: "labels", done: "labeled",
		get: (*unstructured.Unstructured).GetLabels, checkValue: validation.IsValidLabelValue}
	annotationsMap = metadataMap{command: "annotate", noun: "annotation", field: "annotations", done: "annotated",
		get: (*unstructured.Unstructured).GetAnnotations, checkValue: func(string) []string { return nil }}
)

func (s *session) labelCommand() *cli.Command    { return s.metadataCommand(labelsMap) }
func (s *session) annotateCommand() *cli.Command { return s.metadataCommand(annotationsMap) }

func (s *session) metadataCommand(m metadataMap) *cli.Command {
	return &cli.Command{
		Name:      m.command,
		Usage:     fmt.Sprintf("set or remove %ss of objects", m.noun),
		ArgsUsage: "KIND NAME... | KIND/NAME... | KIND -l SELECTOR | KIND --all  KEY=VALUE... KEY-...",
		Description: fmt.Sprintf("KEY=VALUE sets a %[1]s, KEY- removes one. Changing the value of an existing %[1]s needs\n"+
			"--overwrite. Example: orchctl %[2]s pod web-1 tier=frontend owner-", m.noun, m.command),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "overwrite", Usage: fmt.Sprintf("allow changing the value of existing %ss", m.noun)},
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "the objects of the kind whose labels match `SELECTOR`"},
			&cli.BoolFlag{Name: "all", Usage: "every object of the kind in the namespace"},
		},
		BashComplete: completeKinds,
		Action:       func(c *cli.Context) error { return s.editMetadata(c, m) },
	}
}

// metadataChanges are the KEY=VALUE and KEY- arguments, checked.
type metadataChanges struct {
	set    map[string]string
	remove []string
}

// isChange says whether an argument is a change rather than a kind or a
// name: names never contain "=" and never end in "-".
func isChange(arg string) bool { return strings.Contains(arg, "=") || strings.HasSuffix(arg, "-") }

func (m metadataMap) parseChanges(args []string) (metadataChanges, error) {
	ch := metadataChanges{set: map[string]string{}}
	removed := map[string]bool{}
	for _, arg := range args {
		key, value, isSet := strings.Cut(arg, "=")
		if !isSet {
			key = strings.TrimSuffix(arg, "-")
		}
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return ch, fmt.Errorf("invalid %s %q: key %q: %s", m.noun, arg, key, strings.Join(errs, "; "))
		}
		if isSet {
			if errs := m.checkValue(value); len(errs) > 0 {
				return ch, fmt.Errorf("invalid %s %q: value %q: %s", m.noun, arg, value, strings.Join(errs, "; "))
			}
			if old, dup := ch.set[key]; dup && old != value {
				return ch, fmt.Errorf("%s %q is given two values, %q and %q", m.noun, key, old, value)
			}
			ch.set[key] = value
		} else if !removed[key] {
			removed[key] = true
			ch.remove = append(ch.remove, key)
		}
		if _, set := ch.set[key]; set && removed[key] {
			return ch, fmt.Errorf("%s %q is both set and removed; pass one", m.noun, key)
		}
	}
	return ch, nil
}

func (s *session) editMetadata(c *cli.Context, m metadataMap) error {
	var objArgs, changeArgs []string
	for _, a := range c.Args().Slice() {
		if isChange(a) {
			changeArgs = append(changeArgs, a)
		} else {
			objArgs = append(objArgs, a)
		}
	}
	if len(changeArgs) == 0 {
		return fmt.Errorf("say what to change: KEY=VALUE sets a %[1]s, KEY- removes one (see 'orchctl %[2]s --help')", m.noun, m.command)
	}
	ch, err := m.parseChanges(changeArgs)
	if err != nil {
		return err
	}
	sel := c.String("selector")
	if _, err := labels.Parse(sel); err != nil {
		return fmt.Errorf("--selector %q: %w", sel, err)
	}
	if len(objArgs) == 0 {
		return fmt.Errorf("say which objects to %s: KIND NAME..., KIND/NAME..., KIND -l SELECTOR or KIND --all", m.command)
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	objs, err := s.selectObjects(c, cn, objArgs)
	if err != nil {
		return err
	}
	failed := false
	for _, v := range objs {
		msg, err := s.editObject(ctx, cn, m, v, ch, c.Bool("overwrite"))
		if err != nil {
			if _, down := unreachable(err); down {
				return err
			}
			fmt.Fprintf(s.stderr, "error: %s: %s\n", objectName(v.mapping.GroupVersionKind, v.name), s.explain(err))
			failed = true
			continue
		}
		fmt.Fprintln(s.stdout, objectName(v.mapping.GroupVersionKind, v.name)+" "+msg)
	}
	if failed {
		return errReported
	}
	return nil
}

// selectObjects finds the objects named by KIND NAME..., KIND/NAME..., or
// by KIND with -l or --all.
func (s *session) selectObjects(c *cli.Context, cn *connection, args []string) ([]victim, error) {
	targets, err := s.resolveTargets(c.Context, cn, args)
	if err != nil {
		return nil, err
	}
	sel, all := c.String("selector"), c.Bool("all")
	var out []victim
	for _, t := range targets {
		if len(t.names) > 0 {
			if sel != "" || all {
				return nil, errors.New("names cannot be combined with --selector or --all")
			}
			for _, n := range t.names {
				out = append(out, victim{mapping: t.mapping, ns: cn.namespace, name: n})
			}
			continue
		}
		if sel == "" && !all {
			return nil, fmt.Errorf("say which %s: names, -l SELECTOR, or --all", t.mapping.Resource.Resource)
		}
		list, err := cn.resourceClient(t.mapping, cn.namespace).List(c.Context, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, err
		}
		for _, u := range list.Items {
			out = append(out, victim{mapping: t.mapping, ns: u.GetNamespace(), name: u.GetName()})
		}
	}
	if len(out) == 0 {
		fmt.Fprintln(s.stderr, "No resources found")
	}
	return out, nil
}

// editObject applies the changes to one object with a merge patch that
// carries the resourceVersion it checked --overwrite against, so a
// concurrent change is a conflict (retried) rather than overwritten. It
// returns what to print after the object's name.
func (s *session) editObject(ctx context.Context, cn *connection, m metadataMap, v victim, ch metadataChanges, overwrite bool) (string, error) {
	client := cn.resourceClient(v.mapping, v.ns)
	var msg string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := client.Get(ctx, v.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur := m.get(u)
		patch := map[string]any{}
		var refused []string
		for _, k := range sortedKeys(ch.set) {
			old, exists := cur[k]
			switch {
			case exists && old == ch.set[k]:
			case exists && !overwrite:
				refused = append(refused, fmt.Sprintf("%q already has the value %q", k, old))
			default:
				patch[k] = ch.set[k]
			}
		}
		if len(refused) > 0 {
			return fmt.Errorf("%s; pass --overwrite to change it", strings.Join(refused, ", "))
		}
		for _, k := range ch.remove {
			if _, exists := cur[k]; exists {
				patch[k] = nil
			} else {
				fmt.Fprintf(s.stderr, "%s: %s %q not found\n", objectName(v.mapping.GroupVersionKind, v.name), m.noun, k)
			}
		}
		if len(patch) == 0 {
			msg = "not " + m.done
			return nil
		}
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{
			m.field: patch, "resourceVersion": u.GetResourceVersion(),
		}})
		if err != nil {
			return err
		}
		if _, err := client.Patch(ctx, v.name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
			return err
		}
		msg = m.done
		return nil
	})
	return msg, err
}
