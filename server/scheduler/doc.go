// Package scheduler is the control loop that assigns pending pods to
// nodes, as Kubernetes' default scheduler does, with the same filters,
// two scores and the same FailedScheduling wording.
//
// Informers feed two structures. The cache keeps one account per node
// (allocatable, the requests of the pods placed there, host ports in use,
// pods per controller owner), updated pod by pod, so a decision costs one
// pass over the nodes and never a sum over pods. The scheduling queue
// holds the pods to place, by priority, and those backing off after a
// failed attempt.
//
// One loop takes a pod at a time: the filters (Ready, cordon, taints,
// node selector and affinity, host ports, resources) keep the feasible
// nodes; least-requested plus owner spread scores them; equal best nodes
// are chosen at random. The pod is then assumed on the node in the cache,
// so the next decision already counts it, and a pool of binders writes
// the binding through pods/binding while the loop goes on: throughput is
// not one API round trip per pod. A failed binding takes the assumption
// back and queues the pod again; a Conflict means someone else bound it.
//
// A pod that fits nowhere gets a FailedScheduling event and
// PodScheduled=False, and backs off (1 s doubling to 60 s). Cluster
// changes that may cure its failure (a node added, Ready, uncordoned,
// relabelled, untainted or grown; a pod gone or finished) bring it back as
// soon as a second has passed since its last attempt.
//
// Filters and scores are pure functions over a pod and a node account,
// table-tested without an API server; the clock is injected.
package scheduler
