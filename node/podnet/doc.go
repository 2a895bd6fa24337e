// Package podnet connects the pods of different nodes by pod IP, without
// NAT.
//
// Each node's pods live on a Docker bridge network with the node's pod
// subnet. Nodes on one L2 segment reach each other's pods through routes
// (host-gw): for every other Node, its spec.podCIDR via its InternalIP.
// Routes carry protocol RouteProtocol so that only ours are ever changed;
// subnets already directly connected on this host (several agents sharing
// one host and Docker Engine, as in tests) get none.
//
// Docker drops forwarded traffic between its bridge networks and from
// other hosts into them, and masquerades whatever leaves a bridge. A rule at
// the top of the DOCKER-USER chain accepts traffic to the cluster CIDR, and
// an nftables table of the package's own exempts pod-to-pod traffic from
// NAT (see PodNetwork.natScript). Traffic from pods to the outside world is
// still masqueraded by Docker.
package podnet
