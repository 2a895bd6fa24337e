// Package api is orch's Kubernetes-compatible API server: the REST paths,
// discovery documents, status codes, metav1.Status errors and watch framing
// of Kubernetes, over the replicated store (raftstore).
//
// # Objects in the store
//
// Each object lives at /<group>/<resource>/<namespace>/<name> (the core
// group is "core"; cluster-scoped objects have no namespace segment) as the
// JSON of its k8s.io/api type, with apiVersion and kind and without
// resourceVersion: an object's resourceVersion is the store revision of its
// last write, spliced into the JSON when it is read, so reads and watches
// need not decode what they send.
//
// # Requests
//
// A request is parsed into a requestInfo (group, version, namespace,
// resource, name, subresource, verb) and dispatched by verb. Reads come
// from this server's replica with Kubernetes resourceVersion semantics
// (linearizable when unset). Writes are read-modify-write cycles: decode
// (strictly: unknown fields are errors that name their path), set the
// metadata the server owns, default, validate, then a store transaction
// that compares the object's revision (absence, for a create), retried
// when another writer got there first unless the client gave a
// resourceVersion precondition. The per-kind rules live in resources.go
// (the table of served resources) and strategy.go (what create and update
// may change); defaulting and validation are the sibling packages.
//
// # Watches
//
// A watch reads the store's shared history from its start revision. Each
// store event carries a memo where the first watcher to need it decodes
// the event's selectable fields and encodes its objects once for all the
// others; a watcher with a label or field selector turns objects that
// enter or leave its selection into ADDED or DELETED events.
package api
