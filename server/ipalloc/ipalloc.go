// Package ipalloc is the layout of the Service allocations in the store:
// one key per allocated cluster IP and per allocated node port, written in
// the same transaction as the Service that holds it. A key guarded by an
// "absent" compare is what makes an allocation unique across all API
// servers; the API server (server/api) writes and deletes the keys, and a
// leader-side repair loop (server/controller/servicerepair) reconciles them
// with the Services after a restart or a bug.
package ipalloc

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Store key prefixes.
const (
	// Prefix holds every allocation.
	Prefix = "/orch/ipalloc/"
	// ServiceIPPrefix holds one key per allocated cluster IP:
	// /orch/ipalloc/services/10.43.0.17.
	ServiceIPPrefix = Prefix + "services/"
	// NodePortPrefix holds one key per allocated node port and protocol:
	// /orch/ipalloc/nodeports/30080/TCP.
	NodePortPrefix = Prefix + "nodeports/"
	// ServicesPrefix is where the API keeps Service objects (the core
	// group's services resource); a test in server/api keeps it true.
	ServicesPrefix = "/core/services/"
)

// DefaultServiceCIDR is the range cluster IPs come from unless configured.
var DefaultServiceCIDR = netip.MustParsePrefix("10.43.0.0/16")

// The node port range, the Kubernetes default.
const (
	MinNodePort int32 = 30000
	MaxNodePort int32 = 32767
)

// ServiceIPKey is the key of an allocated cluster IP.
func ServiceIPKey(ip netip.Addr) string { return ServiceIPPrefix + ip.Unmap().String() }

// NodePortKey is the key of an allocated node port.
func NodePortKey(port int32, proto corev1.Protocol) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return NodePortPrefix + strconv.Itoa(int(port)) + "/" + string(proto)
}

// ParseKey reads an allocation key back: the IP of a cluster IP key, or the
// port and protocol of a node port key.
func ParseKey(key string) (ip netip.Addr, port int32, proto corev1.Protocol, ok bool) {
	switch {
	case strings.HasPrefix(key, ServiceIPPrefix):
		a, err := netip.ParseAddr(strings.TrimPrefix(key, ServiceIPPrefix))
		return a, 0, "", err == nil
	case strings.HasPrefix(key, NodePortPrefix):
		p, pr, found := strings.Cut(strings.TrimPrefix(key, NodePortPrefix), "/")
		n, err := strconv.ParseInt(p, 10, 32)
		return netip.Addr{}, int32(n), corev1.Protocol(pr), found && err == nil && pr != ""
	}
	return netip.Addr{}, 0, "", false
}

// Owner is the value of an allocation key: the Service holding it, so an
// operator reading the store (and the repair loop's logs) can tell whose it is.
type Owner struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid,omitempty"`
}

// OwnerOf is the Owner value of svc's keys.
func OwnerOf(svc *corev1.Service) []byte {
	b, _ := json.Marshal(Owner{Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID}) // three strings always encode
	return b
}

// DecodeOwner reads an allocation key's value.
func DecodeOwner(b []byte) (Owner, error) {
	var o Owner
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("ipalloc: decode owner: %w", err)
	}
	return o, nil
}

// Keys are the allocation keys svc holds, from its spec: its cluster IPs
// (not None, not for ExternalName), the node ports of its ports and its
// health check node port.
func Keys(svc *corev1.Service) []string {
	var out []string
	if svc.Spec.Type != corev1.ServiceTypeExternalName {
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, s := range ips {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, ServiceIPKey(a))
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			out = append(out, NodePortKey(p.NodePort, p.Protocol))
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		out = append(out, NodePortKey(svc.Spec.HealthCheckNodePort, corev1.ProtocolTCP))
	}
	return dedupe(out)
}

func dedupe(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := keys[:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// ServiceIPRange is the addresses of cidr that may be handed out: all but
// the network address and, for IPv4, the broadcast address.
type ServiceIPRange struct {
	cidr  netip.Prefix
	first netip.Addr
	size  uint64 // number of usable addresses, capped for huge IPv6 ranges
}

// NewServiceIPRange checks cidr and returns its usable range.
func NewServiceIPRange(cidr netip.Prefix) (*ServiceIPRange, error) {
	if !cidr.IsValid() {
		return nil, fmt.Errorf("ipalloc: invalid service CIDR")
	}
	cidr = cidr.Masked()
	hostBits := cidr.Addr().BitLen() - cidr.Bits()
	if hostBits < 2 {
		return nil, fmt.Errorf("ipalloc: service CIDR %s is too small: it needs at least 2 host bits", cidr)
	}
	var size uint64
	if hostBits >= 63 {
		size = 1 << 62
	} else {
		size = uint64(1)<<hostBits - 1 // without the network address
		if cidr.Addr().Is4() {
			size-- // and the broadcast address
		}
	}
	return &ServiceIPRange{cidr: cidr, first: cidr.Addr().Next(), size: size}, nil
}

// CIDR is the range's prefix.
func (r *ServiceIPRange) CIDR() netip.Prefix { return r.cidr }

// Size is the number of usable addresses.
func (r *ServiceIPRange) Size() uint64 { return r.size }

// Contains reports whether ip may be handed out.
func (r *ServiceIPRange) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !r.cidr.Contains(ip) || ip == r.cidr.Addr() {
		return false
	}
	_, ok := r.Offset(ip)
	return ok
}

// Offset is ip's index among the usable addresses.
func (r *ServiceIPRange) Offset(ip netip.Addr) (uint64, bool) {
	ip = ip.Unmap()
	if !r.cidr.Contains(ip) {
		return 0, false
	}
	a, b := r.first.As16(), ip.As16()
	if [8]byte(a[:8]) != [8]byte(b[:8]) {
		return 0, false
	}
	la, lb := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if lb < la {
		return 0, false
	}
	n := lb - la
	return n, n < r.size
}

// At is the usable address at offset n (n < Size()).
func (r *ServiceIPRange) At(n uint64) netip.Addr {
	b := r.first.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+n)
	a := netip.AddrFrom16(b)
	if r.first.Is4() {
		a = a.Unmap()
	}
	return a
}

// StaticBand is how many addresses at the start of the range random
// allocation avoids while others are free, so that addresses chosen by
// hand (a DNS service at .10) are likely still free: Kubernetes' rule,
// size/16 clamped to [16, 256].
func (r *ServiceIPRange) StaticBand() uint64 {
	b := r.size / 16
	b = max(b, 16)
	b = min(b, 256)
	if b >= r.size {
		return 0
	}
	return b
}
