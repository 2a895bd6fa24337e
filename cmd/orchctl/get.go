package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// kindsForCompletion are offered when completing the KIND argument.
var kindsForCompletion = []string{
	"all", "pods", "services", "deployments", "replicasets", "replicationcontrollers", "daemonsets",
	"statefulsets", "jobs", "cronjobs", "configmaps", "secrets", "namespaces", "nodes", "endpoints", "events",
}

func completeKinds(c *cli.Context) {
	if c.NArg() > 0 {
		return
	}
	for _, k := range kindsForCompletion {
		fmt.Fprintln(c.App.Writer, k)
	}
}

func outputFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: usage}
}

func selectorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label `SELECTOR`, e.g. app=web,tier!=db"},
		&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "across all namespaces"},
	}
}

func (s *session) getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "show objects as a table, YAML, JSON or names",
		ArgsUsage: "KIND[,KIND...] [NAME...] | KIND/NAME...",
		Description: "KIND is a resource's plural, singular or short name (po, svc, deploy, ...), its Kind, kind.group,\n" +
			"or \"all\". With --watch the table is printed, then a row per change until interrupted.",
		Flags: append(selectorFlags(),
			outputFlag("output `FORMAT`: wide, yaml, json or name"),
			&cli.StringFlag{Name: "field-selector", Usage: "field `SELECTOR`, e.g. status.phase=Running"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "after the listing, print changes as they happen"},
		),
		BashComplete: completeKinds,
		Action:       s.get,
	}
}

// getOptions are get's flags, checked.
type getOptions struct {
	output        string
	labelSelector string
	fieldSelector string
	allNamespaces bool
}

func readGetOptions(c *cli.Context) (getOptions, error) {
	o := getOptions{
		output:        c.String("output"),
		labelSelector: c.String("selector"),
		fieldSelector: c.String("field-selector"),
		allNamespaces: c.Bool("all-namespaces"),
	}
	switch o.output {
	case "", "wide", "yaml", "json", "name":
	default:
		return o, fmt.Errorf("--output %q: want wide, yaml, json or name", o.output)
	}
	if _, err := labels.Parse(o.labelSelector); err != nil {
		return o, fmt.Errorf("--selector %q: %w", o.labelSelector, err)
	}
	if _, err := fields.ParseSelector(o.fieldSelector); err != nil {
		return o, fmt.Errorf("--field-selector %q: %w", o.fieldSelector, err)
	}
	return o, nil
}

// fetched is what get found for one target.
type fetched struct {
	t     *target
	items []unstructured.Unstructured
}

func (s *session) get(c *cli.Context) error {
	o, err := readGetOptions(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		return errors.New("say which kind to get, e.g. `orchctl get pods`; kinds include " + strings.Join(kindsForCompletion, ", "))
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	targets, err := s.resolveTargets(ctx, cn, c.Args().Slice())
	if err != nil {
		return err
	}
	for _, t := range targets {
		if len(t.names) > 0 && o.allNamespaces && t.namespaced() {
			return errors.New("an object cannot be fetched by name across all namespaces; drop --all-namespaces or name a namespace with -n")
		}
		if len(t.names) > 0 && o.labelSelector != "" {
			return errors.New("--selector cannot be combined with names")
		}
	}
	if c.Bool("watch") {
		if len(targets) != 1 || len(targets[0].names) > 1 {
			return errors.New("--watch works on one kind, and at most one name")
		}
		return s.watch(ctx, cn, targets[0], o)
	}

	var results []fetched
	var errs []error
	for _, t := range targets {
		f := fetched{t: t}
		if len(t.names) == 0 {
			list, err := cn.resourceClient(t.mapping, o.namespace(cn)).List(ctx, metav1.ListOptions{LabelSelector: o.labelSelector, FieldSelector: o.fieldSelector})
			if err != nil {
				return err
			}
			f.items = list.Items
		}
		for _, name := range t.names {
			u, err := cn.resourceClient(t.mapping, cn.namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if !apierrors.IsNotFound(err) {
					return err
				}
				errs = append(errs, err)
				continue
			}
			f.items = append(f.items, *u)
		}
		results = append(results, f)
	}
	single := len(targets) == 1 && len(targets[0].names) == 1
	if err := s.printResults(cn, results, o, single, len(targets) > 1); err != nil {
		return err
	}
	for _, err := range errs {
		fmt.Fprintln(s.stderr, "error: "+s.explain(err))
	}
	if len(errs) > 0 {
		return errReported
	}
	return nil
}

// namespace is the namespace to list in: "" (all) with -A.
func (o getOptions) namespace(cn *connection) string {
	if o.allNamespaces {
		return ""
	}
	return cn.namespace
}

// noResources is kubectl's message for an empty listing.
func (o getOptions) noResources(cn *connection, results []fetched) string {
	namespaced := false
	for _, r := range results {
		namespaced = namespaced || r.t.namespaced()
	}
	if o.allNamespaces || !namespaced {
		return "No resources found"
	}
	return fmt.Sprintf("No resources found in %s namespace.", cn.namespace)
}

func (s *session) printResults(cn *connection, results []fetched, o getOptions, single, severalKinds bool) error {
	var all []unstructured.Unstructured
	named := false
	for _, r := range results {
		all = append(all, r.items...)
		named = named || len(r.t.names) > 0
	}
	switch o.output {
	case "yaml", "json":
		if single && len(all) == 1 {
			return writeObject(s.stdout, o.output, all[0].Object)
		}
		if single && len(all) == 0 {
			return nil // the NotFound error says it all
		}
		return writeObject(s.stdout, o.output, listOf(all))
	case "name":
		for _, u := range all {
			fmt.Fprintln(s.stdout, objectName(u.GroupVersionKind(), u.GetName()))
		}
	default:
		printed := false
		for _, r := range results {
			if len(r.items) == 0 {
				continue
			}
			if printed {
				fmt.Fprintln(s.stdout)
			}
			printed = true
			p := printerFor(r.t.mapping.GroupVersionKind)
			opts := tableOptions{wide: o.output == "wide", withNamespace: o.allNamespaces && r.t.namespaced(), kindPrefix: severalKinds}
			sortForTable(r.t.mapping.GroupVersionKind, r.items)
			rows := [][]string{p.header(opts)}
			for i := range r.items {
				row, err := p.rowFor(&r.items[i], opts, s.now())
				if err != nil {
					return err
				}
				rows = append(rows, row)
			}
			tw := &tableWriter{w: s.stdout}
			if err := tw.write(rows...); err != nil {
				return err
			}
		}
		if len(all) > 0 {
			return nil
		}
	}
	if len(all) == 0 && !named {
		fmt.Fprintln(s.stderr, o.noResources(cn, results))
	}
	return nil
}

// listOf wraps objects in a v1 List, as kubectl prints several objects.
func listOf(items []unstructured.Unstructured) map[string]any {
	out := make([]any, 0, len(items))
	for _, u := range items {
		out = append(out, u.Object)
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      out,
		"metadata":   map[string]any{"resourceVersion": ""},
	}
}

// writeObject prints obj as YAML or as JSON indented by four spaces.
func writeObject(w io.Writer, format string, obj any) error {
	var data []byte
	var err error
	if format == "yaml" {
		data, err = yaml.Marshal(obj)
	} else {
		data, err = json.MarshalIndent(obj, "", "    ")
		data = append(data, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
