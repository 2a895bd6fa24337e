// Package proxy is the service proxy of a node: it programs the kernel so
// that connections to a Service's addresses reach the Service's ready
// endpoints, spread at random.
//
// The data path is an nftables table of the proxy's own (family ip),
// written with the nft binary in transactions. Dispatch maps send a
// packet by destination address, protocol and port (cluster IPs, external
// IPs, LoadBalancer ingress IPs) or by protocol and port on any local
// address (NodePorts) to a chain per service port, which DNATs to an
// endpoint picked by `numgen random`. Connections that need it are
// masqueraded: from outside the pod network to a cluster IP, to NodePorts
// and external addresses (policy Cluster), and a pod reaching itself.
// Session affinity ClientIP keeps a timed set of clients per endpoint.
// Services without endpoints are refused (ICMP port unreachable).
//
// The first sync, every FullSyncInterval and any sync after a failure
// replace the whole table in one transaction; other syncs write only the
// chains and map elements of the service ports that changed, so an
// endpoint change costs one small transaction however many Services
// there are. Changes within MinSyncInterval are written together.
// Removing a UDP endpoint clears its conntrack entries.
package proxy
