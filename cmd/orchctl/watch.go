package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"
)

// errWatchExpired means the watch fell behind the server's history and
// has to start over from a fresh list.
var errWatchExpired = errors.New("watch expired")

// rewatchDelay spaces out new watches when the server keeps ending them
// at once, so a broken server is not hammered.
const rewatchDelay = time.Second

// watch prints the target's objects, then every change to them as it
// happens, until ctx ends (Ctrl-C), which is a normal exit.
func (s *session) watch(ctx context.Context, cn *connection, t *target, o getOptions) error {
	list, err := listForWatch(ctx, cn, t, o)
	if err != nil {
		return err
	}
	p := printerFor(t.mapping.GroupVersionKind)
	opts := tableOptions{wide: o.output == "wide", withNamespace: o.allNamespaces && t.namespaced()}
	tw := &tableWriter{w: s.stdout}
	headerDone := false
	emit := func(items ...unstructured.Unstructured) error {
		if len(items) == 0 {
			return nil
		}
		if o.output != "" && o.output != "wide" {
			for _, u := range items {
				if err := s.writeWatched(o.output, &u); err != nil {
					return err
				}
			}
			return nil
		}
		var rows [][]string
		if !headerDone {
			rows = append(rows, p.header(opts))
		}
		for i := range items {
			row, err := p.rowFor(&items[i], opts, s.now())
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		headerDone = true
		return tw.write(rows...)
	}
	sortForTable(t.mapping.GroupVersionKind, list.Items)
	if len(list.Items) == 0 {
		fmt.Fprintln(s.stderr, o.noResources(cn, []fetched{{t: t}}))
	} else if err := emit(list.Items...); err != nil {
		return err
	}

	opts2, err := watchOptions(t, o)
	if err != nil {
		return err
	}
	rc := cn.resourceClient(t.mapping, o.namespace(cn))
	rv := list.GetResourceVersion()
	for ctx.Err() == nil {
		opts2.ResourceVersion = rv
		w, err := rc.Watch(ctx, opts2)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var events int
		rv, events, err = consumeWatch(ctx, w, rv, emit)
		w.Stop()
		switch {
		case errors.Is(err, errWatchExpired):
			fresh, err := listForWatch(ctx, cn, t, o)
			if err != nil {
				return err
			}
			rv = fresh.GetResourceVersion()
			if err := emit(fresh.Items...); err != nil {
				return err
			}
		case err != nil:
			return err
		case events == 0:
			select {
			case <-ctx.Done():
			case <-time.After(rewatchDelay):
			}
		}
	}
	return nil
}

// consumeWatch prints the events of one watch until it ends, and returns
// the resource version to resume from and how many events it saw.
func consumeWatch(ctx context.Context, w watch.Interface, rv string, emit func(...unstructured.Unstructured) error) (string, int, error) {
	n := 0
	for {
		select {
		case <-ctx.Done():
			return rv, n, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, n, nil
			}
			n++
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return rv, n, errWatchExpired
				}
				return rv, n, err
			}
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				return rv, n, fmt.Errorf("watch sent %T, want an object", ev.Object)
			}
			rv = u.GetResourceVersion()
			if ev.Type == watch.Bookmark {
				continue
			}
			if err := emit(*u); err != nil {
				return rv, n, err
			}
		}
	}
}

// writeWatched prints one changed object for -o name, yaml or json.
func (s *session) writeWatched(format string, u *unstructured.Unstructured) error {
	switch format {
	case "name":
		_, err := fmt.Fprintln(s.stdout, objectName(u.GroupVersionKind(), u.GetName()))
		return err
	case "yaml":
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.stdout, "---\n%s", data)
		return err
	}
	return writeObject(s.stdout, format, u.Object)
}

// watchOptions are the list options of the target's listing and watch:
// the selectors, and one name as a metadata.name field selector.
func watchOptions(t *target, o getOptions) (metav1.ListOptions, error) {
	opts := metav1.ListOptions{LabelSelector: o.labelSelector, FieldSelector: o.fieldSelector, AllowWatchBookmarks: true}
	if len(t.names) == 1 {
		sel := fields.OneTermEqualSelector("metadata.name", t.names[0])
		if o.fieldSelector != "" {
			more, err := fields.ParseSelector(o.fieldSelector)
			if err != nil {
				return opts, fmt.Errorf("--field-selector %q: %w", o.fieldSelector, err)
			}
			sel = fields.AndSelectors(sel, more)
		}
		opts.FieldSelector = sel.String()
	}
	return opts, nil
}

// listForWatch lists what a watch starts from.
func listForWatch(ctx context.Context, cn *connection, t *target, o getOptions) (*unstructured.UnstructuredList, error) {
	opts, err := watchOptions(t, o)
	if err != nil {
		return nil, err
	}
	opts.AllowWatchBookmarks = false
	return cn.resourceClient(t.mapping, o.namespace(cn)).List(ctx, opts)
}
