package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// printer turns objects of one kind into table rows.
type printer struct {
	columns []string // the columns after NAME
	wide    []string // the columns -o wide adds at the end
	noName  bool     // the table has no NAME column (events)
	// row returns the cells of columns and of wide for one object, which
	// is of the kind's Go type, or unstructured for the generic printer.
	row func(obj runtime.Object, now time.Time) (cells, wide []string, err error)
}

// rowFunc adapts a row function over one Go type to a printer's row.
func rowFunc[T runtime.Object](f func(T, time.Time) (cells, wide []string)) func(runtime.Object, time.Time) ([]string, []string, error) {
	return func(obj runtime.Object, now time.Time) ([]string, []string, error) {
		t, ok := obj.(T)
		if !ok {
			return nil, nil, fmt.Errorf("printer: got %T", obj)
		}
		cells, wide := f(t, now)
		return cells, wide, nil
	}
}

var (
	podsGVK     = corev1.SchemeGroupVersion.WithKind("Pod")
	eventsGVK   = corev1.SchemeGroupVersion.WithKind("Event")
	servicesGVK = corev1.SchemeGroupVersion.WithKind("Service")
)

// printers has the tables of the kinds orch serves; others get NAME AGE.
var printers = map[schema.GroupVersionKind]*printer{
	podsGVK: {columns: []string{"READY", "STATUS", "RESTARTS", "AGE"}, wide: []string{"IP", "NODE"}, row: rowFunc(podRow)},
	servicesGVK: {columns: []string{"TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}, wide: []string{"SELECTOR"},
		row: rowFunc(serviceRow)},
	corev1.SchemeGroupVersion.WithKind("Endpoints"): {columns: []string{"ENDPOINTS", "AGE"}, row: rowFunc(endpointsRow)},
	corev1.SchemeGroupVersion.WithKind("ConfigMap"): {columns: []string{"DATA", "AGE"}, row: rowFunc(configMapRow)},
	corev1.SchemeGroupVersion.WithKind("Secret"):    {columns: []string{"TYPE", "DATA", "AGE"}, row: rowFunc(secretRow)},
	corev1.SchemeGroupVersion.WithKind("Namespace"): {columns: []string{"STATUS", "AGE"}, row: rowFunc(namespaceRow)},
	corev1.SchemeGroupVersion.WithKind("Node"): {columns: []string{"STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"},
		wide: []string{"EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"}, row: rowFunc(nodeRow)},
	eventsGVK: {columns: []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}, noName: true, row: rowFunc(eventRow)},
	corev1.SchemeGroupVersion.WithKind("ReplicationController"): {columns: []string{"DESIRED", "CURRENT", "READY", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(replicationControllerRow)},
	appsv1.SchemeGroupVersion.WithKind("Deployment"): {columns: []string{"READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(deploymentRow)},
	appsv1.SchemeGroupVersion.WithKind("ReplicaSet"): {columns: []string{"DESIRED", "CURRENT", "READY", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(replicaSetRow)},
	appsv1.SchemeGroupVersion.WithKind("DaemonSet"): {columns: []string{"DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(daemonSetRow)},
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"): {columns: []string{"READY", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES"}, row: rowFunc(statefulSetRow)},
	batchv1.SchemeGroupVersion.WithKind("Job"): {columns: []string{"STATUS", "COMPLETIONS", "DURATION", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(jobRow)},
	batchv1.SchemeGroupVersion.WithKind("CronJob"): {columns: []string{"SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"}, row: rowFunc(cronJobRow)},
}

// genericPrinter shows kinds without a table of their own.
var genericPrinter = &printer{columns: []string{"AGE"}, row: func(obj runtime.Object, now time.Time) ([]string, []string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return []string{age(m.GetCreationTimestamp(), now)}, nil, nil
}}

func printerFor(gvk schema.GroupVersionKind) *printer {
	if p, ok := printers[gvk]; ok {
		return p
	}
	return genericPrinter
}

// tableOptions are the choices that shape every table of one get.
type tableOptions struct {
	wide          bool
	withNamespace bool // -A: a NAMESPACE column first
	kindPrefix    bool // several kinds: names as kind/name
}

func (p *printer) header(o tableOptions) []string {
	var h []string
	if o.withNamespace {
		h = append(h, "NAMESPACE")
	}
	if !p.noName {
		h = append(h, "NAME")
	}
	h = append(h, p.columns...)
	if o.wide {
		h = append(h, p.wide...)
	}
	return h
}

func (p *printer) rowFor(u *unstructured.Unstructured, o tableOptions, now time.Time) ([]string, error) {
	var obj runtime.Object = u
	if p != genericPrinter {
		typed, ok, err := toTyped(u)
		if err != nil {
			return nil, err
		}
		if ok {
			obj = typed
		}
	}
	cells, wide, err := p.row(obj, now)
	if err != nil {
		return nil, err
	}
	var r []string
	if o.withNamespace {
		r = append(r, u.GetNamespace())
	}
	if !p.noName {
		name := u.GetName()
		if o.kindPrefix {
			name = objectName(u.GroupVersionKind(), name)
		}
		name += defaultClassSuffix(u)
		r = append(r, name)
	}
	r = append(r, cells...)
	if o.wide {
		r = append(r, wide...)
	}
	return r, nil
}

// sortForTable orders rows as people read them: events by when they last
// happened, everything else as the server listed it (by name).
func sortForTable(gvk schema.GroupVersionKind, items []unstructured.Unstructured) {
	if gvk != eventsGVK {
		return
	}
	sort.SliceStable(items, func(i, j int) bool {
		return eventTime(&items[i]).Before(eventTime(&items[j]))
	})
}

func eventTime(u *unstructured.Unstructured) time.Time {
	for _, path := range [][]string{{"lastTimestamp"}, {"eventTime"}, {"firstTimestamp"}, {"metadata", "creationTimestamp"}} {
		s, _, _ := unstructured.NestedString(u.Object, path...) // absent or not a string: try the next
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// podTemplateColumns are the CONTAINERS and IMAGES cells of workloads.
func podTemplateColumns(spec *corev1.PodSpec) (containers, images string) {
	var names, imgs []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
		imgs = append(imgs, c.Image)
	}
	return orNone(strings.Join(names, ",")), orNone(strings.Join(imgs, ","))
}
