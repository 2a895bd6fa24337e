// Package prober runs a container's health probes and lifecycle hooks for
// the node agent, with the kubelet's semantics.
//
// A Runner executes one probe or hook handler: httpGet (to the pod's IP by
// default, any status from 200 to 399 passes, redirects are followed to the
// same host only, HTTPS without certificate verification), tcpSocket (a
// connection opens), exec (a command run in the container through the
// runtime exits 0) and grpc (grpc.health.v1 Health/Check answers SERVING).
// The agent's host reaches a pod's network namespace through the pod IP, so
// network probes need no help from the container.
//
// A Machine is the per-container state: it decides which probe is due,
// counts consecutive results against the success and failure thresholds,
// holds liveness and readiness back until the startup probe has passed, and
// reports each change of the container's started and ready flags once, as
// well as the decision to kill the container when its liveness or startup
// probe fails. It is a pure value driven by the times it is given, so the
// rules are tested without goroutines or sleeps.
//
// A Manager runs one goroutine per probed container around a Machine,
// waking when the next probe is due, and tells the agent through callbacks
// when something changed; the agent then reads the container's Status and
// writes only changes to the API.
//
// PostStart and PreStop run lifecycle hooks; PreStop returns the part of the
// grace period the hook left for stopping the container.
package prober
