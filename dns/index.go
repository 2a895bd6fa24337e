//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the API orch serves and the DNS index reads.

package dns

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// Index is the read-only view of the cluster that DNS answers from: slim
// projections of Services, Endpoints and Pods, fed by informer events.
// Every change is pushed at once into the record tables of the servers
// attached to it, so a query never walks API objects.
type Index struct {
	mu        sync.Mutex // serialises writers; readers use the tables
	services  map[string]*serviceInfo
	endpoints map[string]*endpointsInfo
	pods      map[string]podInfo
	tables    []*table

	hasSynced func() bool // nil: always synced
	synced    atomic.Bool
}

// serviceInfo is what DNS needs of a Service.
type serviceInfo struct {
	namespace, name string
	headless        bool
	externalName    string // set for type ExternalName
	ips             []netip.Addr
	ports           []portInfo // named ports only
	publishNotReady bool
}

type portInfo struct {
	name, proto string // lowercase
	port        uint16
}

// endpointsInfo is what DNS needs of an Endpoints object.
type endpointsInfo struct {
	subsets []subsetInfo
}

type subsetInfo struct {
	addrs []addrInfo
	ports []portInfo // named ports only
}

type addrInfo struct {
	ip       netip.Addr
	hostname string
	ready    bool
}

// podInfo is what DNS needs of a Pod: its namespace and IPs.
type podInfo struct {
	namespace string
	ips       []netip.Addr
}

// NewIndex returns an empty index. Feed it with the Upsert and Delete
// methods, or use NewIndexFromInformers.
func NewIndex() *Index {
	return &Index{
		services:  map[string]*serviceInfo{},
		endpoints: map[string]*endpointsInfo{},
		pods:      map[string]podInfo{},
	}
}

// Synced reports whether the index holds the cluster's state (its informers
// have delivered their initial lists). Until then the server answers names
// in the cluster zone with SERVFAIL rather than a cacheable NXDOMAIN.
func (x *Index) Synced() bool {
	if x.synced.Load() {
		return true
	}
	if x.hasSynced == nil || x.hasSynced() {
		x.synced.Store(true)
		return true
	}
	return false
}

func key(namespace, name string) string { return namespace + "/" + name }

// UpsertService adds or replaces a Service.
func (x *Index) UpsertService(svc *corev1.Service) {
	if svc == nil {
		return
	}
	info := sliceService(svc)
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(svc.Namespace, svc.Name)
	x.services[k] = info
	x.rebuildServiceLocked(k)
}

// DeleteService removes a Service and its records.
func (x *Index) DeleteService(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(namespace, name)
	delete(x.services, k)
	x.rebuildServiceLocked(k)
}

// UpsertEndpoints adds or replaces the Endpoints of a Service.
func (x *Index) UpsertEndpoints(ep *corev1.Endpoints) {
	if ep == nil {
		return
	}
	info := sliceEndpoints(ep)
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(ep.Namespace, ep.Name)
	x.endpoints[k] = info
	x.rebuildServiceLocked(k)
}

// DeleteEndpoints removes the Endpoints of a Service.
func (x *Index) DeleteEndpoints(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(namespace, name)
	delete(x.endpoints, k)
	x.rebuildServiceLocked(k)
}

// UpsertPod adds or replaces a Pod (its <a-b-c-d>.<ns>.pod.<zone> records).
// Pods that have finished or have no IP yet have no records.
func (x *Index) UpsertPod(pod *corev1.Pod) {
	if pod == nil {
		return
	}
	info := slicePod(pod)
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(pod.Namespace, pod.Name)
	if len(info.ips) == 0 {
		delete(x.pods, k)
	} else {
		x.pods[k] = info
	}
	x.rebuildPodLocked(k)
}

// DeletePod removes a Pod.
func (x *Index) DeletePod(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(namespace, name)
	delete(x.pods, k)
	x.rebuildPodLocked(k)
}

func (x *Index) rebuildServiceLocked(k string) {
	svc, ep := x.services[k], x.endpoints[k]
	for _, t := range x.tables {
		t.setOwner("svc/"+k, t.serviceItems(svc, ep))
	}
}

func (x *Index) rebuildPodLocked(k string) {
	pod, ok := x.pods[k]
	for _, t := range x.tables {
		if ok {
			t.setOwner("pod/"+k, t.podItems(pod))
		} else {
			t.setOwner("pod/"+k, nil)
		}
	}
}

// attach registers a table and fills it with the current contents.
func (x *Index) attach(t *table) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tables = append(x.tables, t)
	for k, svc := range x.services {
		t.setOwner("svc/"+k, t.serviceItems(svc, x.endpoints[k]))
	}
	for k, pod := range x.pods {
		t.setOwner("pod/"+k, t.podItems(pod))
	}
}

// detach unregisters a table.
func (x *Index) detach(t *table) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, o := range x.tables {
		if o == t {
			x.tables = append(x.tables[:i], x.tables[i+1:]...)
			return
		}
	}
}

func sliceService(svc *corev1.Service) *serviceInfo {
	info := &serviceInfo{
		namespace:       svc.Namespace,
		name:            svc.Name,
		publishNotReady: svc.Spec.PublishNotReadyAddresses,
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		info.externalName = svc.Spec.ExternalName
		return info
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if s == corev1.ClusterIPNone {
			info.headless = true
			continue
		}
		if ip, err := netip.ParseAddr(s); err == nil {
			info.ips = append(info.ips, ip.Unmap())
		}
	}
	for _, p := range svc.Spec.Ports {
		if pi, ok := slicePort(p.Name, p.Protocol, p.Port); ok {
			info.ports = append(info.ports, pi)
		}
	}
	return info
}

func slicePort(name string, proto corev1.Protocol, port int32) (portInfo, bool) {
	if name == "" || port <= 0 || port > 65535 {
		return portInfo{}, false
	}
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return portInfo{name: strings.ToLower(name), proto: strings.ToLower(string(proto)), port: uint16(port)}, true
}

func sliceEndpoints(ep *corev1.Endpoints) *endpointsInfo {
	info := &endpointsInfo{}
	for _, ss := range ep.Subsets {
		var si subsetInfo
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil {
					continue
				}
				si.addrs = append(si.addrs, addrInfo{ip: ip.Unmap(), hostname: strings.ToLower(a.Hostname), ready: ready})
			}
		}
		add(ss.Addresses, true)
		add(ss.NotReadyAddresses, false)
		for _, p := range ss.Ports {
			if pi, ok := slicePort(p.Name, p.Protocol, p.Port); ok {
				si.ports = append(si.ports, pi)
			}
		}
		sort.Slice(si.addrs, func(i, j int) bool { return si.addrs[i].ip.Less(si.addrs[j].ip) })
		info.subsets = append(info.subsets, si)
	}
	return info
}

func slicePod(pod *corev1.Pod) podInfo {
	info := podInfo{namespace: pod.Namespace}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return info
	}
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, p := range ips {
		if ip, err := netip.ParseAddr(p.IP); err == nil {
			info.ips = append(info.ips, ip.Unmap())
		}
	}
	return info
}
