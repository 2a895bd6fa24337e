package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func (s *session) describeCommand() *cli.Command {
	return &cli.Command{
		Name:      "describe",
		Usage:     "show objects in detail, with their events",
		ArgsUsage: "KIND [NAME...] | KIND/NAME...",
		Description: "Without names, describes every object of the kind in the namespace (or those matching -l).\n" +
			"The Events section lists the core/v1 events about the object.",
		Flags:        []cli.Flag{&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label `SELECTOR`"}},
		BashComplete: completeKinds,
		Action:       s.describe,
	}
}

func (s *session) describe(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("say what to describe, e.g. `orchctl describe pod web-1`")
	}
	sel := c.String("selector")
	if _, err := labels.Parse(sel); err != nil {
		return fmt.Errorf("--selector %q: %w", sel, err)
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
	var objs []*unstructured.Unstructured
	failed := false
	for _, t := range targets {
		rc := cn.resourceClient(t.mapping, cn.namespace)
		if len(t.names) == 0 {
			list, err := rc.List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return err
			}
			for i := range list.Items {
				objs = append(objs, &list.Items[i])
			}
			continue
		}
		for _, name := range t.names {
			u, err := rc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				fmt.Fprintln(s.stderr, "error: "+s.explain(err))
				failed = true
				continue
			}
			objs = append(objs, u)
		}
	}
	if len(objs) == 0 && !failed {
		fmt.Fprintln(s.stderr, getOptions{}.noResources(cn, []fetched{{t: targets[0]}}))
	}
	for i, u := range objs {
		if i > 0 {
			fmt.Fprintln(s.stdout)
		}
		if err := s.describeObject(ctx, cn, u); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// describeObject prints one object: metadata, the essentials of its kind,
// and its events.
func (s *session) describeObject(ctx context.Context, cn *connection, u *unstructured.Unstructured) error {
	typed, ok, err := toTyped(u)
	if err != nil {
		return err
	}
	var events []corev1.Event
	if u.GroupVersionKind() != eventsGVK {
		if events, err = s.eventsFor(ctx, cn, u); err != nil {
			return err
		}
	}
	d := newDescriber(s.stdout, s.now())
	d.metadata(u)
	handled := true
	switch o := typed.(type) {
	case *corev1.Pod:
		d.pod(o)
	case *corev1.Service:
		//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
		var ep *corev1.Endpoints
		got, err := cn.clientset.CoreV1().Endpoints(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			ep = got
		case !apierrors.IsNotFound(err):
			return err
		}
		d.service(o, ep)
	case *corev1.Secret:
		d.secret(o)
	case *corev1.ConfigMap:
		d.configMap(o)
	case *corev1.Node:
		d.node(o)
	default:
		handled = ok && (d.storage(typed) || d.workload(typed))
	}
	if !handled {
		if err := d.generic(u); err != nil {
			return err
		}
	}
	if u.GroupVersionKind() != eventsGVK {
		d.events(events)
	}
	return d.flush()
}

// eventsFor lists the core/v1 events whose involvedObject is u, oldest
// first.
func (s *session) eventsFor(ctx context.Context, cn *connection, u *unstructured.Unstructured) ([]corev1.Event, error) {
	sel := fields.Set{
		"involvedObject.name": u.GetName(),
		"involvedObject.uid":  string(u.GetUID()),
	}
	if u.GetNamespace() != "" {
		sel["involvedObject.namespace"] = u.GetNamespace()
	} else {
		sel["involvedObject.kind"] = u.GetKind()
	}
	list, err := cn.clientset.CoreV1().Events(u.GetNamespace()).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil, fmt.Errorf("listing the events of %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	evs := list.Items
	sort.SliceStable(evs, func(i, j int) bool { return lastSeen(&evs[i]).Before(lastSeen(&evs[j])) })
	return evs, nil
}

// lastSeen is when an event last happened: its last timestamp, else its
// event time (events.k8s.io style), else when it was first seen or made.
func lastSeen(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// describer writes the "Key:  value" sections of describe, aligned by a
// tabwriter; each level indents two spaces.
type describer struct {
	tw  *tabwriter.Writer
	now time.Time
	err error // the first write error; flush returns it
}

func newDescriber(w io.Writer, now time.Time) *describer {
	return &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
}

func (d *describer) flush() error {
	if err := d.tw.Flush(); err != nil && d.err == nil {
		d.err = err
	}
	return d.err
}

func indent(level int) string { return strings.Repeat("  ", level) }

func clean(s string) string { return strings.ReplaceAll(s, "\t", " ") }

// kv prints one "Key:  value" line.
func (d *describer) kv(level int, key, value string) {
	fmt.Fprintf(d.tw, "%s%s:\t%s\n", indent(level), key, clean(value))
}

// head starts a section whose content follows on the next lines.
func (d *describer) head(level int, key string) {
	fmt.Fprintf(d.tw, "%s%s:\n", indent(level), key)
}

// list prints "Key:  first" and the other values under the first.
func (d *describer) list(level int, key string, values []string) {
	if len(values) == 0 {
		d.kv(level, key, "<none>")
		return
	}
	d.kv(level, key, values[0])
	for _, v := range values[1:] {
		fmt.Fprintf(d.tw, "%s\t%s\n", indent(level), clean(v))
	}
}

// row prints table cells (events, conditions) at a level.
func (d *describer) row(level int, cells ...string) {
	for i := range cells {
		cells[i] = clean(cells[i])
	}
	fmt.Fprintf(d.tw, "%s%s\n", indent(level), strings.Join(cells, "\t"))
}

// text prints a block of lines (YAML, file contents) at a level.
func (d *describer) text(level int, block string) {
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		fmt.Fprintf(d.tw, "%s%s\n", indent(level), clean(line))
	}
}

func (d *describer) when(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC1123Z), age(t, d.now))
}

func (d *describer) metadata(u *unstructured.Unstructured) {
	d.kv(0, "Name", u.GetName())
	if u.GetNamespace() != "" {
		d.kv(0, "Namespace", u.GetNamespace())
	}
	d.list(0, "Labels", sortedPairs(u.GetLabels(), "="))
	annotations := u.GetAnnotations()
	delete(annotations, lastAppliedAnnotation) // the manifest itself: too long to be useful here
	d.list(0, "Annotations", sortedPairs(annotations, ": "))
	d.kv(0, "Created", d.when(u.GetCreationTimestamp()))
	if ts := u.GetDeletionTimestamp(); ts != nil {
		d.kv(0, "Deleting since", d.when(*ts))
	}
	for _, ref := range u.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller {
			d.kv(0, "Controlled By", ref.Kind+"/"+ref.Name)
		}
	}
}

func sortedPairs(m map[string]string, sep string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+sep+v)
	}
	sort.Strings(out)
	return out
}

// generic shows what the describer has no special view for: every
// top-level field but the metadata (spec, status, data, ...) as YAML.
func (d *describer) generic(u *unstructured.Unstructured) error {
	var keys []string
	for k := range u.Object {
		switch k {
		case "apiVersion", "kind", "metadata":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		data, err := yaml.Marshal(u.Object[k])
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		title := k
		if title != "" {
			title = strings.ToUpper(k[:1]) + k[1:]
		}
		d.head(0, title)
		d.text(1, string(data))
	}
	return nil
}

// events ends every description: what happened to the object lately.
func (d *describer) events(evs []corev1.Event) {
	// A new alignment block: the events table is not aligned with
	// whatever section came before it.
	if err := d.flush(); err != nil {
		return
	}
	if len(evs) == 0 {
		d.kv(0, "Events", "<none>")
		return
	}
	d.head(0, "Events")
	d.row(1, "Type", "Reason", "Age", "From", "Message")
	d.row(1, "----", "------", "----", "----", "-------")
	for i := range evs {
		e := &evs[i]
		when := age(metav1.NewTime(lastSeen(e)), d.now)
		if e.Count > 1 && !e.FirstTimestamp.IsZero() {
			when = fmt.Sprintf("%s (x%d over %s)", when, e.Count, age(e.FirstTimestamp, d.now))
		}
		d.row(1, e.Type, e.Reason, when, eventSource(e), strings.TrimSpace(e.Message))
	}
}

func eventSource(e *corev1.Event) string {
	switch {
	case e.Source.Component != "" && e.Source.Host != "":
		return e.Source.Component + ", " + e.Source.Host
	case e.Source.Component != "":
		return e.Source.Component
	case e.ReportingController != "":
		return e.ReportingController
	}
	return "<unknown>"
}

// workload describes the kinds that run pods from a template; false for
// other kinds.
func (d *describer) workload(obj runtime.Object) bool {
	lines, tmpl, ok := workloadSummary(obj, d.now)
	if !ok {
		return false
	}
	for _, l := range lines {
		d.kv(0, l[0], l[1])
	}
	if tmpl != nil {
		d.head(0, "Pod Template")
		d.list(1, "Labels", sortedPairs(tmpl.Labels, "="))
		d.containers(1, "Containers", tmpl.Spec.Containers, nil)
	}
	return true
}
