// Package defaulting fills in the fields that a Kubernetes API server fills in
// when an object is written, so that what orch stores and returns looks like
// what kubectl, client-go and GitOps tools expect from a real cluster.
//
// The API server calls [Default] once per create and update, after decoding
// the request body and before validation. Defaulting only ever sets fields
// that are empty (nil pointers, empty strings, zero numbers where zero means
// "unset"); it never overwrites a value the user chose, so defaulting an
// already defaulted object changes nothing. The deliberate exceptions are
// the ones Kubernetes also makes: a Secret's stringData is folded into data,
// and a Namespace always carries the kubernetes.io/metadata.name label.
//
// Default cannot tell a create from an update, and the API server calls it
// for both, including status and /finalize writes. A default that must only
// apply to new objects therefore keys on state that only a new object
// lacks: a Namespace gets the "kubernetes" finalizer only while it has no
// status phase, so the namespace controller can remove it for good.
//
// The rules follow the Kubernetes defaulting functions for core/v1, apps/v1
// and batch/v1, with orch's own choices written next to the code where they
// differ: restartPolicy is not defaulted in Job and CronJob pod templates
// (the user must choose OnFailure or Never), enableServiceLinks is set in pod
// templates as well as in pods, and a CronJob's jobTemplate gets the Job spec
// defaults up front instead of when its Jobs are created.
//
// Defaulting is not allocation: cluster IPs, node ports and a Job's generated
// selector need cluster state or the object's UID and are assigned by the API
// server elsewhere.
//
// Default is a pure function of its argument. It is safe on any input,
// including half-empty objects decoded from arbitrary JSON, and must never
// panic; the fuzz test in package validation runs it on random input.
package defaulting
