// Package dns is orch's built-in DNS server: it answers the names of the
// Kubernetes DNS-Based Service Discovery specification for the cluster
// zone (cluster.local by default) and forwards every other name to the
// node's upstream resolvers.
//
// The model has three layers. An Index holds slim projections of
// Services, Endpoints and Pods (names, IPs, named ports, endpoint
// hostnames), fed by informer events (NewIndexFromInformers) or directly
// through its Upsert and Delete methods. Each change is pushed at once into
// the record table of every Server attached to the index: the records of
// the one Service or Pod that changed are recomputed, and for each name
// they touch the table keeps the records by type together with the
// complete responses packed and ready to send. Empty non-terminals
// (<ns>.svc.<zone>, _tcp.<svc>.<ns>.svc.<zone>) exist while a name below
// them does, so a name that exists with other types gets NODATA and only a
// name that does not exist gets NXDOMAIN.
//
// The Server reads UDP queries and answers the common one (one question of
// class IN, optionally with a plain EDNS0 record) straight from the table:
// copy the packed response, patch the ID, flags and the question's letter
// case. Everything else, TCP included, goes through the general handler on
// miekg/dns messages, which also truncates UDP answers to the client's
// buffer, chases ExternalName CNAMEs and forwards names outside the zone
// through a small cache that respects TTLs. Both paths give the same
// answer for any query; the fuzz test checks that.
//
// A name that ends in the zone is always answered locally, so the
// search-path expansions a resolver with ndots:5 tries
// (hello.default.svc.cluster.local.default.svc.cluster.local) get NXDOMAIN
// at once instead of a trip upstream.
package dns
