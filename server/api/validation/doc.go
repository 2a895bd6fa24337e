// Package validation decides whether an object may be stored, and says
// which of its fields orch stores without acting on them. The API server
// calls it for every create and update, after package defaulting has run.
//
// [ValidateCreate] and [ValidateUpdate] return a field.ErrorList that the API
// server turns into a 422 Invalid status, exactly as Kubernetes does, so
// kubectl and client-go print the errors users know. Every error names the
// JSON path of the offending field (spec.template.spec.containers[0].image,
// metadata.name) and its message says what would be accepted. Validation is
// not exhaustive: it covers what keeps an object from working (a selector
// that misses its own pods, a mount of a volume that does not exist, a
// schedule that never parses) and the names and formats other components
// rely on, following the Kubernetes rules so that manifests valid there are
// valid here.
//
// Updates are checked for what may change: pods are immutable except for
// images, tolerations (additions), activeDeadlineSeconds (lowering) and the
// grace period; selectors of apps/v1 controllers and Jobs never change; a
// Service keeps its cluster IP; immutable ConfigMaps and Secrets keep their
// data. The new object is also checked like a new one, except that a spec
// (or data) equal to the stored one is not checked again, so objects stored
// under older rules can still get status, label and finalizer writes.
//
// [Unsupported] is the other half of the rule that no field is silently
// ignored: fields orch stores but does not implement (pod anti-affinity,
// topology spread constraints, NFS volumes, Job pod failure policies, ...)
// are accepted, and each is reported as a warning naming its path, which
// the API server sends as a Warning header. The checks are allowlists of
// the fields orch implements, so fields added by newer Kubernetes versions
// are reported until someone implements them and adds them to the list.
//
// All three functions are pure and must never panic, whatever was decoded
// from the request: FuzzValidate feeds them arbitrary JSON for every kind.
package validation
