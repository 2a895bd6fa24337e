package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/ipalloc"
)

// Service allocations: a Service's cluster IP and node ports are keys in
// the store (package ipalloc), taken in the same transaction that writes
// the Service, each guarded by an "absent" compare, and deleted in the
// transaction that removes the Service or stops it needing them. Whichever
// server handles the request, two Services can never hold the same IP or
// node port: the second transaction's compare fails, and the server picks
// again (or, for a value the client asked for, answers 422).

// serviceRanges is the Server's lazily checked service IP range.
type serviceRanges struct {
	once sync.Once
	ips  *ipalloc.ServiceIPRange
	err  error
}

func (s *Server) serviceIPRange() (*ipalloc.ServiceIPRange, error) {
	s.svcRanges.once.Do(func() {
		cidr := s.cfg.ServiceCIDR
		if !cidr.IsValid() {
			cidr = ipalloc.DefaultServiceCIDR
		}
		s.svcRanges.ips, s.svcRanges.err = ipalloc.NewServiceIPRange(cidr)
	})
	return s.svcRanges.ips, s.svcRanges.err
}

// randomTries is how many random candidates a pick looks at before it
// lists every allocation and scans for a free one.
const randomTries = 16

// serviceAlloc is what one Service write adds to its transaction.
type serviceAlloc struct {
	name     string
	owner    []byte
	takes    []allocTake
	releases []string
	base     int      // index of the first allocation compare in the txn
	undo     []func() // clear the values the server picked
}

// maxAllocAttempts bounds how often a create picks again after other
// writes took the values it picked.
const maxAllocAttempts = 20

// resetPicks clears the values the server picked, for another try.
func (a *serviceAlloc) resetPicks() {
	if a == nil {
		return
	}
	for _, u := range a.undo {
		u()
	}
}

// allocTake is one allocation key a write takes.
type allocTake struct {
	key    string
	path   *field.Path
	value  any
	picked bool // chosen by the server, not asked for by the client
}

// addTo appends the allocation compares and writes to txn.
func (a *serviceAlloc) addTo(txn *raftstore.Txn) {
	if a == nil {
		return
	}
	a.base = len(txn.Compares)
	for _, t := range a.takes {
		txn.Compares = append(txn.Compares, raftstore.Compare{Key: t.key, ModRevision: raftstore.Absent})
		txn.Ops = append(txn.Ops, raftstore.Op{Type: raftstore.OpPut, Key: t.key, Value: a.owner})
	}
	for _, k := range a.releases {
		txn.Ops = append(txn.Ops, raftstore.Op{Type: raftstore.OpDelete, Key: k})
	}
}

// failed explains a failed compare of a transaction built with addTo. It
// reports whether the failed compare was an allocation; when it was one the
// client asked for, err is the 422 to answer, else the server may pick again.
func (a *serviceAlloc) failed(idx int) (isAlloc bool, err error) {
	if a == nil || idx < a.base || idx >= a.base+len(a.takes) {
		return false, nil
	}
	t := a.takes[idx-a.base]
	if t.picked {
		return true, nil
	}
	what := "provided port is already allocated"
	if _, ok := t.value.(string); ok {
		what = "provided IP is already allocated"
	}
	return true, apierrors.NewInvalid(schemaGK("", "Service"), a.name, field.ErrorList{field.Invalid(t.path, t.value, what)})
}

// releaseService is the allocation change of removing svc.
func releaseService(svc *corev1.Service) *serviceAlloc {
	keys := ipalloc.Keys(svc)
	if len(keys) == 0 {
		return nil
	}
	return &serviceAlloc{name: svc.Name, releases: keys}
}

// allocationsFor is the allocation change of a write of obj over cur (nil
// for a create): nil for other kinds. When the write removes the object
// (finalized), everything cur holds is released.
func (s *Server) allocationsFor(ctx context.Context, obj, cur object, removes bool) (*serviceAlloc, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var old *corev1.Service
	if cur != nil {
		old = cur.(*corev1.Service)
	}
	if removes {
		return releaseService(old), nil
	}
	if old != nil && apiequality.Semantic.DeepEqual(svc.Spec, old.Spec) {
		// A status or metadata update: the allocations stay as they are.
		return nil, nil
	}
	return s.allocateService(ctx, svc, old)
}

// allocateService fills in svc's cluster IP, IP family fields and node
// ports, and returns the allocation keys to take and to give back compared
// with old (nil for a create). Values the client asked for are honoured
// when they are in range; whether they are free the transaction decides.
func (s *Server) allocateService(ctx context.Context, svc, old *corev1.Service) (*serviceAlloc, error) {
	ipRange, err := s.serviceIPRange()
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("the service CIDR is misconfigured: %w", err))
	}
	held := map[string]bool{}
	if old != nil {
		for _, k := range ipalloc.Keys(old) {
			held[k] = true
		}
	}
	a := &serviceAlloc{name: svc.Name, owner: ipalloc.OwnerOf(svc)}
	taking := map[string]bool{}
	take := func(key string, path *field.Path, value any, picked bool) {
		if held[key] || taking[key] {
			return
		}
		taking[key] = true
		a.takes = append(a.takes, allocTake{key: key, path: path, value: value, picked: picked})
	}
	spec := &svc.Spec
	sp := field.NewPath("spec")
	var errs field.ErrorList

	if spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, s.defaultIPFamilies(svc, ipRange)...)
		switch {
		case len(errs) > 0:
		case spec.ClusterIP == corev1.ClusterIPNone:
			spec.ClusterIPs = []string{corev1.ClusterIPNone}
		case spec.ClusterIP == "":
			ip, err := s.pickServiceIP(ctx, ipRange, taking)
			if err != nil {
				return nil, err
			}
			spec.ClusterIP, spec.ClusterIPs = ip.String(), []string{ip.String()}
			a.undo = append(a.undo, func() { spec.ClusterIP, spec.ClusterIPs = "", nil })
			take(ipalloc.ServiceIPKey(ip), sp.Child("clusterIP"), spec.ClusterIP, true)
		default:
			ip, perr := netip.ParseAddr(spec.ClusterIP)
			if perr != nil || !ipRange.Contains(ip) {
				errs = append(errs, field.Invalid(sp.Child("clusterIP"), spec.ClusterIP,
					fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", spec.ClusterIP, ipRange.CIDR())))
				break
			}
			spec.ClusterIPs = []string{spec.ClusterIP}
			take(ipalloc.ServiceIPKey(ip), sp.Child("clusterIP"), spec.ClusterIP, false)
		}
	}

	nodePorts := spec.Type == corev1.ServiceTypeNodePort ||
		(spec.Type == corev1.ServiceTypeLoadBalancer && (spec.AllocateLoadBalancerNodePorts == nil || *spec.AllocateLoadBalancerNodePorts))
	for i := range spec.Ports {
		p := &spec.Ports[i]
		pp := sp.Child("ports").Index(i).Child("nodePort")
		switch {
		case p.NodePort != 0:
			take(ipalloc.NodePortKey(p.NodePort, p.Protocol), pp, p.NodePort, false)
		case nodePorts:
			port, err := s.pickNodePort(ctx, p.Protocol, taking)
			if err != nil {
				return nil, err
			}
			p.NodePort = port
			a.undo = append(a.undo, func() { p.NodePort = 0 })
			take(ipalloc.NodePortKey(port, p.Protocol), pp, port, true)
		}
	}

	hp := sp.Child("healthCheckNodePort")
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	switch {
	case !needsHealthCheck && spec.HealthCheckNodePort != 0:
		errs = append(errs, field.Invalid(hp, spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	case !needsHealthCheck:
	case spec.HealthCheckNodePort == 0:
		port, err := s.pickNodePort(ctx, corev1.ProtocolTCP, taking)
		if err != nil {
			return nil, err
		}
		spec.HealthCheckNodePort = port
		a.undo = append(a.undo, func() { spec.HealthCheckNodePort = 0 })
		take(ipalloc.NodePortKey(port, corev1.ProtocolTCP), hp, port, true)
	case spec.HealthCheckNodePort < ipalloc.MinNodePort || spec.HealthCheckNodePort > ipalloc.MaxNodePort:
		errs = append(errs, field.Invalid(hp, spec.HealthCheckNodePort, fmt.Sprintf("must be in the node port range %d-%d, or be left out to have one allocated", ipalloc.MinNodePort, ipalloc.MaxNodePort)))
	default:
		take(ipalloc.NodePortKey(spec.HealthCheckNodePort, corev1.ProtocolTCP), hp, spec.HealthCheckNodePort, false)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schemaGK("", "Service"), svc.Name, errs)
	}

	keep := map[string]bool{}
	for _, k := range ipalloc.Keys(svc) {
		keep[k] = true
	}
	for _, k := range sortedKeys(held) {
		if !keep[k] {
			a.releases = append(a.releases, k)
		}
	}
	if len(a.takes) == 0 && len(a.releases) == 0 {
		return nil, nil
	}
	return a, nil
}

// defaultIPFamilies sets clusterIPs, ipFamilies and ipFamilyPolicy as
// Kubernetes does in a single-stack cluster, and refuses what asks for a
// second family.
func (s *Server) defaultIPFamilies(svc *corev1.Service, ipRange *ipalloc.ServiceIPRange) field.ErrorList {
	spec := &svc.Spec
	sp := field.NewPath("spec")
	family := corev1.IPv4Protocol
	if ipRange.CIDR().Addr().Is6() {
		family = corev1.IPv6Protocol
	}
	var errs field.ErrorList
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if len(spec.ClusterIPs) > 1 {
		errs = append(errs, field.Invalid(sp.Child("clusterIPs"), spec.ClusterIPs, fmt.Sprintf("this cluster is single-stack (%s): a Service has one cluster IP", family)))
	}
	// A headless Service without a selector has its endpoints made by
	// hand, possibly of every family: Kubernetes makes it RequireDualStack.
	headlessManual := spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0
	if spec.IPFamilyPolicy == nil {
		pol := corev1.IPFamilyPolicySingleStack
		if headlessManual {
			pol = corev1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &pol
	} else if *spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack && !headlessManual {
		errs = append(errs, field.Invalid(sp.Child("ipFamilyPolicy"), *spec.IPFamilyPolicy, "this cluster is not configured for dual-stack services"))
	}
	for i, f := range spec.IPFamilies {
		if f != family {
			errs = append(errs, field.Invalid(sp.Child("ipFamilies").Index(i), f, "not configured on this cluster"))
		}
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{family}
	}
	return errs
}

// pickServiceIP chooses a free cluster IP: random addresses above the
// static band first, then a scan of everything allocated.
func (s *Server) pickServiceIP(ctx context.Context, r *ipalloc.ServiceIPRange, taking map[string]bool) (netip.Addr, error) {
	band := r.StaticBand()
	dynamic := r.Size() - band
	for range randomTries {
		ip := r.At(band + rand.Uint64N(dynamic))
		free, err := s.allocFree(ctx, ipalloc.ServiceIPKey(ip), taking)
		if err != nil {
			return netip.Addr{}, err
		}
		if free {
			return ip, nil
		}
	}
	used, err := s.allocated(ctx, ipalloc.ServiceIPPrefix)
	if err != nil {
		return netip.Addr{}, err
	}
	// Scan the dynamic part from a random start, then the static band.
	start := rand.Uint64N(dynamic)
	for i := range dynamic {
		ip := r.At(band + (start+i)%dynamic)
		if k := ipalloc.ServiceIPKey(ip); !used[k] && !taking[k] {
			return ip, nil
		}
	}
	for i := range band {
		ip := r.At(i)
		if k := ipalloc.ServiceIPKey(ip); !used[k] && !taking[k] {
			return ip, nil
		}
	}
	return netip.Addr{}, apierrors.NewInternalError(fmt.Errorf("failed to allocate a cluster IP: the service range %s is full", r.CIDR()))
}

// pickNodePort chooses a free node port for proto.
func (s *Server) pickNodePort(ctx context.Context, proto corev1.Protocol, taking map[string]bool) (int32, error) {
	n := ipalloc.MaxNodePort - ipalloc.MinNodePort + 1
	for range randomTries {
		port := ipalloc.MinNodePort + rand.Int32N(n)
		free, err := s.allocFree(ctx, ipalloc.NodePortKey(port, proto), taking)
		if err != nil {
			return 0, err
		}
		if free {
			return port, nil
		}
	}
	used, err := s.allocated(ctx, ipalloc.NodePortPrefix)
	if err != nil {
		return 0, err
	}
	start := rand.Int32N(n)
	for i := range n {
		port := ipalloc.MinNodePort + (start+i)%n
		if k := ipalloc.NodePortKey(port, proto); !used[k] && !taking[k] {
			return port, nil
		}
	}
	return 0, apierrors.NewInternalError(fmt.Errorf("failed to allocate a node port: every %s port in %d-%d is taken", proto, ipalloc.MinNodePort, ipalloc.MaxNodePort))
}

// allocFree reports whether key looks free on this replica. A replica that
// is behind may say so wrongly; the transaction's compare catches that.
func (s *Server) allocFree(ctx context.Context, key string, taking map[string]bool) (bool, error) {
	if taking[key] {
		return false, nil
	}
	kv, _, err := s.store.Get(ctx, key, raftstore.ReadOptions{})
	if err != nil {
		return false, storeError(err)
	}
	return kv == nil, nil
}

// allocated is the set of allocation keys under prefix on this replica.
func (s *Server) allocated(ctx context.Context, prefix string) (map[string]bool, error) {
	used := map[string]bool{}
	opts := raftstore.ListOptions{Limit: 10000}
	for {
		kvs, rev, more, err := s.store.List(ctx, prefix, opts)
		if err != nil {
			return nil, storeError(err)
		}
		for _, kv := range kvs {
			used[kv.Key] = true
		}
		if !more || len(kvs) == 0 {
			return used, nil
		}
		opts.Revision, opts.StartKey = rev, kvs[len(kvs)-1].Key+"\x00"
	}
}

// dropTypeDependentFields clears, on an update that changes a Service's
// type, the allocated values the new type has no use for, when the client
// sent them back unchanged (as a client editing the whole object does).
// This is Kubernetes' rule; the allocations are released in the same write.
func dropTypeDependentFields(svc, old *corev1.Service) {
	needsClusterIP := func(s *corev1.Service) bool { return s.Spec.Type != corev1.ServiceTypeExternalName }
	needsNodePorts := func(s *corev1.Service) bool {
		return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
	}
	needsHealthCheck := func(s *corev1.Service) bool {
		return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	}
	if needsClusterIP(old) && !needsClusterIP(svc) {
		if svc.Spec.ClusterIP == old.Spec.ClusterIP || svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		}
		if sameFamilies(svc.Spec.IPFamilies, old.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if svc.Spec.IPFamilyPolicy == nil || (old.Spec.IPFamilyPolicy != nil && *svc.Spec.IPFamilyPolicy == *old.Spec.IPFamilyPolicy) {
			svc.Spec.IPFamilyPolicy = nil
		}
	}
	if needsNodePorts(old) && !needsNodePorts(svc) && sameNodePorts(svc, old) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheck(old) && !needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if a, b := svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts; a != nil && b != nil && *a == *b {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		// The load balancer status describes a type the Service left.
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
	if needsNodePorts(old) && !needsNodePorts(svc) && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
}

func sameFamilies(a, b []corev1.IPFamily) bool {
	if len(a) == 0 {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameNodePorts reports whether every node port svc names is one old had.
func sameNodePorts(svc, old *corev1.Service) bool {
	had := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		had[p.NodePort] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !had[p.NodePort] {
			return false
		}
	}
	return true
}

// orTCP is a port's protocol, which defaulting makes TCP when unset.
func orTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
