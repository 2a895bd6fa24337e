package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// lastAppliedAnnotation holds the configuration apply last sent, so the
// next apply can tell a field the user removed from one someone else set.
// It is kubectl's annotation, so kubectl and orchctl apply interoperate.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

func (s *session) applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "create or update objects from manifests",
		ArgsUsage: "-f FILE|DIR|- ...",
		Description: "Client-side apply, as kubectl does it: an object that does not exist is created; one that does\n" +
			"is patched with a three-way strategic merge of the configuration applied last time, the manifest and\n" +
			"the live object, so fields removed from the manifest are removed from the object and fields set by\n" +
			"others are kept. Every document is applied even when one fails; the exit code says if any did.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "manifest `FILE`, a directory of them, or - for stdin (repeatable)"},
			&cli.StringFlag{Name: "validate", Value: "strict", Usage: "`MODE` for unknown fields in manifests: strict (rejected), warn or ignore"},
		},
		Action: s.apply,
	}
}

func (s *session) apply(c *cli.Context) error {
	files := c.StringSlice("filename")
	if c.NArg() > 0 {
		return fmt.Errorf("apply takes no arguments (got %q); pass manifests with -f", c.Args().Slice())
	}
	if len(files) == 0 {
		return errors.New("--filename/-f is required: a manifest file, a directory, or - for stdin")
	}
	fv, err := fieldValidation(c.String("validate"))
	if err != nil {
		return err
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	failed := false
	for _, m := range readManifests(files, s.stdin) {
		if m.err == nil {
			var result string
			result, m.err = s.applyObject(c.Context, cn, m.obj, fv)
			if m.err == nil {
				fmt.Fprintln(s.stdout, result)
				continue
			}
		}
		if _, down := unreachable(m.err); down || apierrors.IsUnauthorized(m.err) {
			return m.err // every other document would fail the same way
		}
		fmt.Fprintf(s.stderr, "error: %s: %s\n", m.where(), s.explain(m.err))
		failed = true
	}
	if failed {
		return errReported
	}
	return nil
}

// fieldValidation maps --validate to the API's fieldValidation parameter.
func fieldValidation(v string) (string, error) {
	switch strings.ToLower(v) {
	case "strict", "true":
		return metav1.FieldValidationStrict, nil
	case "warn":
		return metav1.FieldValidationWarn, nil
	case "ignore", "false":
		return metav1.FieldValidationIgnore, nil
	}
	return "", fmt.Errorf("--validate %q: want strict, warn or ignore", v)
}

// applyObject applies one manifest and says what happened, as kubectl
// does: "deployment.apps/web created", "... configured", "... unchanged".
func (s *session) applyObject(ctx context.Context, cn *connection, obj *unstructured.Unstructured, fv string) (string, error) {
	gvk := obj.GroupVersionKind()
	m, err := s.mappingFor(ctx, cn, gvk)
	if err != nil {
		return "", err
	}
	if err := cn.setNamespace(m, obj); err != nil {
		return "", err
	}
	name := obj.GetName()
	if name == "" {
		return "", errors.New("metadata.name is not set; apply needs it to find the object again")
	}
	stripServerFields(obj)
	annotations := obj.GetAnnotations()
	_, exported := annotations[lastAppliedAnnotation]
	delete(annotations, lastAppliedAnnotation)
	setAnnotations(obj, annotations)
	applied, err := obj.MarshalJSON()
	if err != nil {
		return "", err
	}
	annotations = obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[lastAppliedAnnotation] = string(applied)
	obj.SetAnnotations(annotations)
	modified, err := obj.MarshalJSON()
	if err != nil {
		return "", err
	}

	rc := cn.resourceClient(m, obj.GetNamespace())
	live, err := rc.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := rc.Create(ctx, obj, metav1.CreateOptions{FieldValidation: fv}); err != nil {
			return "", err
		}
		return objectName(gvk, name) + " created", nil
	}
	if err != nil {
		return "", err
	}
	original, err := lastApplied(live)
	if err != nil {
		return "", err
	}
	// A manifest that carries the annotation was exported from the server
	// (orchctl get -o yaml). Applied back as it is, it asks for exactly
	// the live object: nothing to do, and the record of what the user
	// applied stays the user's, not a copy of every defaulted field.
	if exported && len(original) > 0 {
		same, err := sameAsLive(applied, live)
		if err != nil {
			return "", err
		}
		if same {
			return objectName(gvk, name) + " unchanged", nil
		}
	}
	current, err := live.MarshalJSON()
	if err != nil {
		return "", err
	}
	patch, pt, err := threeWayPatch(gvk, original, modified, current)
	if err != nil {
		return "", fmt.Errorf("computing the patch: %w", err)
	}
	if string(patch) == "{}" {
		return objectName(gvk, name) + " unchanged", nil
	}
	if _, err := rc.Patch(ctx, name, pt, patch, metav1.PatchOptions{FieldValidation: fv}); err != nil {
		return "", err
	}
	return objectName(gvk, name) + " configured", nil
}

// lastApplied is the configuration the previous apply recorded on the
// live object, without server-owned fields: a record written by another
// client (kubectl applying an exported object) may hold them, and the
// patch must not try to delete them.
func lastApplied(live *unstructured.Unstructured) ([]byte, error) {
	text := live.GetAnnotations()[lastAppliedAnnotation]
	if text == "" {
		return nil, nil
	}
	var rec unstructured.Unstructured
	if err := rec.UnmarshalJSON([]byte(text)); err != nil {
		return nil, fmt.Errorf("the live object's %s annotation is not a valid object: %w", lastAppliedAnnotation, err)
	}
	stripServerFields(&rec)
	return rec.MarshalJSON()
}

// setNamespace puts a namespaced object in the manifest's namespace, else
// the one from -n or the client config. Namespaces on cluster-scoped
// objects mean nothing and are dropped.
func (cn *connection) setNamespace(m *meta.RESTMapping, obj *unstructured.Unstructured) error {
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		obj.SetNamespace("")
		return nil
	}
	ns := obj.GetNamespace()
	switch {
	case ns == "":
		obj.SetNamespace(cn.namespace)
	case cn.nsFlag && ns != cn.namespace:
		return fmt.Errorf("the manifest says namespace %q but --namespace says %q; drop one of them", ns, cn.namespace)
	}
	return nil
}

// serverFields are the metadata fields the server owns. They are dropped
// from manifests so exported objects apply cleanly and never end up in the
// last-applied record, where a later apply would try to delete them.
var serverFields = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink",
}

// stripServerFields removes the server-owned metadata and the status,
// which apply never changes (the API ignores it on the main resource).
func stripServerFields(obj *unstructured.Unstructured) {
	for _, f := range serverFields {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(obj.Object, "status")
}

func setAnnotations(obj *unstructured.Unstructured, a map[string]string) {
	if len(a) == 0 {
		obj.SetAnnotations(nil)
		return
	}
	obj.SetAnnotations(a)
}

// sameAsLive says whether an applied configuration is the live object,
// server-owned fields and the last-applied record aside.
func sameAsLive(applied []byte, live *unstructured.Unstructured) (bool, error) {
	l := live.DeepCopy()
	stripServerFields(l)
	a := l.GetAnnotations()
	delete(a, lastAppliedAnnotation)
	setAnnotations(l, a)
	liveJSON, err := l.MarshalJSON()
	if err != nil {
		return false, err
	}
	var x, y any
	if err := json.Unmarshal(applied, &x); err != nil {
		return false, err
	}
	if err := json.Unmarshal(liveJSON, &y); err != nil {
		return false, err
	}
	return reflect.DeepEqual(x, y), nil
}

// threeWayPatch computes the patch from the live object (current) to the
// manifest (modified) that also deletes what the previous apply (original)
// set and the manifest no longer has. Kinds with a Go type get a strategic
// merge patch, which merges lists such as containers by their keys; others
// a JSON merge patch.
func threeWayPatch(gvk schema.GroupVersionKind, original, modified, current []byte) ([]byte, types.PatchType, error) {
	typed, err := scheme.Scheme.New(gvk)
	switch {
	case err == nil:
		schemaMeta, err := strategicpatch.NewPatchMetaFromStruct(typed)
		if err != nil {
			return nil, "", err
		}
		patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, schemaMeta, true)
		return patch, types.StrategicMergePatchType, err
	case runtime.IsNotRegisteredError(err):
		patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current)
		return patch, types.MergePatchType, err
	default:
		return nil, "", err
	}
}
