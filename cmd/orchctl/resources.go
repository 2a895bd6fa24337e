package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
)

// target is one kind a command works on, with the names it was given for
// it (none means all objects of the kind).
type target struct {
	mapping *meta.RESTMapping
	names   []string
}

func (t *target) namespaced() bool { return t.mapping.Scope.Name() == meta.RESTScopeNameNamespace }

// resolveTargets reads the KIND[,KIND...] [NAME...] or KIND/NAME...
// arguments of get, describe and delete. Kinds are matched through
// discovery: plural, singular, short name, Kind, kind.group, and
// categories such as "all".
func (s *session) resolveTargets(ctx context.Context, cn *connection, args []string) ([]*target, error) {
	if len(args) == 0 {
		return nil, errors.New("say which kind of object, e.g. `pods`, `deploy/web` or `all`")
	}
	if strings.Contains(args[0], "/") {
		var out []*target
		byKind := map[string]*target{}
		for _, a := range args {
			kind, name, ok := strings.Cut(a, "/")
			if !ok || kind == "" || name == "" {
				return nil, fmt.Errorf("argument %q: with KIND/NAME arguments, every argument must be KIND/NAME", a)
			}
			t := byKind[kind]
			if t == nil {
				m, err := s.resolveKind(ctx, cn, kind)
				if err != nil {
					return nil, err
				}
				t = &target{mapping: m}
				byKind[kind] = t
				out = append(out, t)
			}
			t.names = append(t.names, name)
		}
		return out, nil
	}
	names := args[1:]
	var out []*target
	seen := map[schema.GroupVersionResource]bool{}
	for _, kind := range strings.Split(args[0], ",") {
		if kind == "" {
			return nil, fmt.Errorf("kind list %q has an empty entry", args[0])
		}
		mappings, err := s.resolveKindOrCategory(ctx, cn, kind)
		if err != nil {
			return nil, err
		}
		if len(mappings) > 1 && len(names) > 0 {
			return nil, fmt.Errorf("%q is a category of several kinds; names can only go with a single kind", kind)
		}
		for _, m := range mappings {
			if seen[m.Resource] {
				continue
			}
			seen[m.Resource] = true
			out = append(out, &target{mapping: m, names: names})
		}
	}
	return out, nil
}

// resolveKindOrCategory resolves a kind, or expands a category ("all").
func (s *session) resolveKindOrCategory(ctx context.Context, cn *connection, arg string) ([]*meta.RESTMapping, error) {
	m, err := s.resolveKind(ctx, cn, arg)
	if err == nil {
		return []*meta.RESTMapping{m}, nil
	}
	var unknown *unknownKindError
	if !errors.As(err, &unknown) {
		return nil, err
	}
	grs, ok := restmapper.NewDiscoveryCategoryExpanderWithContext(cn.discovery).ExpandWithContext(ctx, strings.ToLower(arg))
	if !ok || len(grs) == 0 {
		return nil, err
	}
	var out []*meta.RESTMapping
	for _, gr := range grs {
		m, err := s.resolveKind(ctx, cn, gr.Resource+"."+gr.Group)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// resolveKind finds the API resource a user means by arg: "pods", "pod",
// "po", "Pod", "deployments.apps", "deployment.v1.apps".
func (s *session) resolveKind(ctx context.Context, cn *connection, arg string) (*meta.RESTMapping, error) {
	mapper, err := cn.restMapper(ctx, func(msg string) { fmt.Fprintln(s.stderr, "Warning: "+msg) })
	if err != nil {
		return nil, err
	}
	lower := strings.ToLower(strings.TrimSuffix(arg, "."))
	fullGVR, gr := schema.ParseResourceArg(lower)
	var gvr schema.GroupVersionResource
	if fullGVR != nil {
		if r, err := mapper.ResourceForWithContext(ctx, *fullGVR); err == nil {
			gvr = r
		}
	}
	if gvr.Empty() {
		r, err := mapper.ResourceForWithContext(ctx, gr.WithVersion(""))
		if err != nil {
			if meta.IsNoMatchError(err) {
				return nil, &unknownKindError{name: arg}
			}
			return nil, fmt.Errorf("kind %q: %w", arg, err)
		}
		gvr = r
	}
	gvk, err := mapper.KindForWithContext(ctx, gvr)
	if err != nil {
		return nil, fmt.Errorf("kind %q: %w", arg, err)
	}
	m, err := mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("kind %q: %w", arg, err)
	}
	return m, nil
}

// mappingFor finds the API resource of a manifest's apiVersion and kind.
func (s *session) mappingFor(ctx context.Context, cn *connection, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	if gvk.Kind == "" {
		return nil, errors.New("kind is not set")
	}
	mapper, err := cn.restMapper(ctx, func(msg string) { fmt.Fprintln(s.stderr, "Warning: "+msg) })
	if err != nil {
		return nil, err
	}
	m, err := mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the server doesn't have a resource type for kind %q in apiVersion %q", gvk.Kind, gvk.GroupVersion().String())
		}
		return nil, err
	}
	return m, nil
}

// resourceClient is the dynamic client for a mapping in a namespace; ns is
// ignored for cluster-scoped resources, and "" means all namespaces.
func (cn *connection) resourceClient(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return cn.dynamic.Resource(m.Resource).Namespace(ns)
	}
	return cn.dynamic.Resource(m.Resource)
}

// kindName is how kubectl names a kind in output: the lowercase Kind, with
// the group for kinds outside the core group ("deployment.apps").
func kindName(gvk schema.GroupVersionKind) string {
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k
}

// objectName is kind/name, as `-o name` and apply print it.
func objectName(gvk schema.GroupVersionKind, name string) string {
	return kindName(gvk) + "/" + name
}

// toTyped converts an object to its Go type from k8s.io/api, which the
// printers and describers read. ok is false for kinds client-go does not
// know; they are shown generically.
func toTyped(u *unstructured.Unstructured) (obj runtime.Object, ok bool, err error) {
	obj, err = scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return obj, true, nil
}
