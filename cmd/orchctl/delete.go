package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/urfave/cli/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// deletePollInterval is how often --wait checks whether a deleted object
// is gone.
const deletePollInterval = 200 * time.Millisecond

func (s *session) deleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete objects by name, by manifest or by label",
		ArgsUsage: "KIND NAME... | KIND/NAME... | KIND -l SELECTOR | KIND --all | -f FILE",
		Flags: append(selectorFlags(),
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "delete the objects in manifest `FILE`, a directory, or - for stdin"},
			&cli.BoolFlag{Name: "all", Usage: "delete every object of the kind in the namespace"},
			&cli.IntFlag{Name: "grace-period", Value: -1, Usage: "`SECONDS` a pod gets to stop; -1 keeps the object's own"},
			&cli.BoolFlag{Name: "force", Usage: "delete at once, without a grace period (--grace-period 0)"},
			&cli.BoolFlag{Name: "ignore-not-found", Usage: "an object that does not exist is not an error"},
			&cli.BoolFlag{Name: "wait", Usage: "wait until the objects are gone"},
			&cli.DurationFlag{Name: "timeout", Usage: "with --wait, give up after `DURATION` (0: no limit)"},
		),
		BashComplete: completeKinds,
		Action:       s.delete,
	}
}

// victim is one object to delete, and where it was named for messages.
type victim struct {
	mapping *meta.RESTMapping
	ns      string
	name    string
	where   string
}

func deleteOptions(c *cli.Context) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	grace := c.Int("grace-period")
	switch {
	case grace < -1:
		return opts, fmt.Errorf("--grace-period %d: want -1 (the object's own) or 0 and up", grace)
	case c.Bool("force") && grace > 0:
		return opts, fmt.Errorf("--force deletes without a grace period; it contradicts --grace-period %d", grace)
	case c.Bool("force"):
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	case grace >= 0:
		g := int64(grace)
		opts.GracePeriodSeconds = &g
	}
	if t := c.Duration("timeout"); t < 0 {
		return opts, fmt.Errorf("--timeout %v: want a positive duration, or 0 for no limit", t)
	}
	return opts, nil
}

func (s *session) delete(c *cli.Context) error {
	opts, err := deleteOptions(c)
	if err != nil {
		return err
	}
	sel := c.String("selector")
	if _, err := labels.Parse(sel); err != nil {
		return fmt.Errorf("--selector %q: %w", sel, err)
	}
	files := c.StringSlice("filename")
	switch {
	case len(files) > 0 && c.NArg() > 0:
		return errors.New("pass either -f or KIND and names, not both")
	case len(files) == 0 && c.NArg() == 0:
		return errors.New("say what to delete: KIND NAME..., KIND -l SELECTOR, KIND --all, or -f FILE")
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	ignoreNotFound := c.Bool("ignore-not-found")
	failed := false
	var victims []victim
	if len(files) > 0 {
		for _, m := range readManifests(files, s.stdin) {
			v, err := s.manifestVictim(ctx, cn, m)
			if err != nil {
				fmt.Fprintf(s.stderr, "error: %s: %s\n", m.where(), s.explain(err))
				failed = true
				continue
			}
			victims = append(victims, v)
		}
		// Objects inside namespaces go before the namespaces themselves:
		// deleting a namespace deletes its content, and the explicit delete
		// of that content would then race it and fail as not found.
		sort.SliceStable(victims, func(i, j int) bool {
			return namespaced(victims[i]) && !namespaced(victims[j])
		})
	} else {
		victims, err = s.argVictims(c, cn)
		if err != nil {
			return err
		}
	}

	var deleted []victim
	for _, v := range victims {
		err := cn.resourceClient(v.mapping, v.ns).Delete(ctx, v.name, opts)
		switch {
		case err == nil:
			fmt.Fprintln(s.stdout, objectName(v.mapping.GroupVersionKind, v.name)+" deleted")
			deleted = append(deleted, v)
		case apierrors.IsNotFound(err) && ignoreNotFound:
		default:
			if _, down := unreachable(err); down || apierrors.IsUnauthorized(err) {
				return err
			}
			msg := s.explain(err)
			if v.where != "" {
				msg = v.where + ": " + msg
			}
			fmt.Fprintln(s.stderr, "error: "+msg)
			failed = true
		}
	}
	if c.Bool("wait") {
		if err := s.waitGone(ctx, cn, deleted, c.Duration("timeout")); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

func (s *session) manifestVictim(ctx context.Context, cn *connection, m *manifest) (victim, error) {
	if m.err != nil {
		return victim{}, m.err
	}
	mapping, err := s.mappingFor(ctx, cn, m.obj.GroupVersionKind())
	if err != nil {
		return victim{}, err
	}
	if err := cn.setNamespace(mapping, m.obj); err != nil {
		return victim{}, err
	}
	if m.obj.GetName() == "" {
		return victim{}, errors.New("metadata.name is not set")
	}
	return victim{mapping: mapping, ns: m.obj.GetNamespace(), name: m.obj.GetName(), where: m.where()}, nil
}

// argVictims finds the objects named by KIND NAME..., KIND/NAME..., or by
// KIND with -l or --all.
func (s *session) argVictims(c *cli.Context, cn *connection) ([]victim, error) {
	ctx := c.Context
	targets, err := s.resolveTargets(ctx, cn, c.Args().Slice())
	if err != nil {
		return nil, err
	}
	sel, all, allNS := c.String("selector"), c.Bool("all"), c.Bool("all-namespaces")
	var out []victim
	for _, t := range targets {
		if len(t.names) > 0 {
			if sel != "" || all || allNS {
				return nil, errors.New("names cannot be combined with --selector, --all or --all-namespaces")
			}
			for _, n := range t.names {
				out = append(out, victim{mapping: t.mapping, ns: cn.namespace, name: n})
			}
			continue
		}
		if sel == "" && !all {
			return nil, fmt.Errorf("say which %s to delete: names, -l SELECTOR, or --all", t.mapping.Resource.Resource)
		}
		ns := cn.namespace
		if allNS {
			ns = ""
		}
		list, err := cn.resourceClient(t.mapping, ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
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

// waitGone polls until every deleted object is gone (graceful deletion
// keeps pods around while they stop), or the timeout passes.
func (s *session) waitGone(ctx context.Context, cn *connection, victims []victim, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tick := time.NewTicker(deletePollInterval)
	defer tick.Stop()
	for _, v := range victims {
		for {
			_, err := cn.resourceClient(v.mapping, v.ns).Get(ctx, v.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if err != nil && ctx.Err() == nil {
				return err
			}
			select {
			case <-ctx.Done():
				if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("%s is still there after --timeout %v", objectName(v.mapping.GroupVersionKind, v.name), timeout)
				}
				return fmt.Errorf("waiting for %s to go: %w", objectName(v.mapping.GroupVersionKind, v.name), ctx.Err())
			case <-tick.C:
			}
		}
	}
	return nil
}

func namespaced(v victim) bool {
	return v.mapping.Scope != nil && v.mapping.Scope.Name() == meta.RESTScopeNameNamespace
}
