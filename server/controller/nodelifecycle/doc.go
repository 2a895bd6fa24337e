// Package nodelifecycle is the leader's control loop for nodes that fail,
// the part of Kubernetes' node lifecycle controller, taint eviction
// controller and pod garbage collector that orch needs.
//
// Readiness from gossip: when a node's agent leaves the gossip pool
// (stopped, crashed, cut off), the leader sets the Node's Ready condition to
// Unknown within seconds, instead of waiting for status updates to stop
// arriving. The agent sets Ready back to True when it is heard from again.
//
// What follows from readiness: while a Node's Ready condition is False or
// Unknown, every pod bound to it is marked not Ready (its Ready and
// ContainersReady conditions False, reason NodeNotReady), so Services stop
// sending traffic to it, and the Node carries the NoExecute taint
// node.kubernetes.io/not-ready (Ready False) or node.kubernetes.io/unreachable
// (Ready Unknown), with the time it was added. The taint goes when Ready is
// True again; the pods' Ready conditions are then the agent's to set. A Node
// without a Ready condition (its agent never reported) is left alone.
//
// Eviction: a pod on a node with a NoExecute taint is deleted (a normal
// graceful delete, so its controller makes a replacement at once) when its
// toleration of the taint runs out, counted from the taint's timeAdded: a
// matching NoExecute toleration with tolerationSeconds allows that long
// (0 or less: not at all), one without tolerationSeconds forever (DaemonSet
// pods carry those). A pod with no toleration for not-ready or unreachable
// gets Deps.DefaultTolerationSeconds (30 s unless set), the default that
// Kubernetes adds to every pod by admission (DefaultTolerationSeconds,
// 300 s there); orch applies it here instead, and leaves the pod's spec
// as it was written. A pod that tolerates none of some other NoExecute taint
// (one an operator set with orchctl taint) goes at once. Each eviction is
// recorded as a Warning event, reason Evicted, on the pod. The loop is
// woken at the next deadline rather than polling.
//
// Garbage: pods bound to a Node that no longer exists are force-deleted
// (grace period 0), once a read from the API confirms the Node is gone. A pod
// being deleted on a node that is unreachable is never force-deleted: its
// containers may still run there, and a StatefulSet pod must never run
// twice. It goes when the node's agent is back and stops it, when an
// operator force-deletes it, or when the Node is deleted.
package nodelifecycle
