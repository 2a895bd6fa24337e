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
//
// Where nftables cannot be used (NftablesUsable says why), UserspaceProxy
// serves the same model with sockets instead, and warns that it does: it
// is slower, and endpoints see the node's address rather than the
// client's. Cluster, external and LoadBalancer IPs are put as /32
// addresses on an interface of the proxy's own ("orch-svc0" by default: a
// dummy, or a bridge without ports on kernels without the dummy driver),
// so that traffic from pods and from the node is delivered
// locally; a listener on each address and port, and on 0.0.0.0 for each
// NodePort, relays every TCP connection or UDP session (per client,
// ended after 30s idle) to an endpoint picked at random, honouring the
// Local traffic policies and ClientIP affinity. A Service without an
// endpoint resets connections. A sync opens and closes only the
// listeners that changed; endpoint changes swap lists in place. SCTP is
// not served. Serving stops when Run returns; the addresses stay until
// Cleanup removes the interface.
package proxy
