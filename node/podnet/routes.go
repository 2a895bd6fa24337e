package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the pod network owns (`ip route` shows
// "proto 79"), so routes that others made are never touched.
const RouteProtocol = 79

// route is an IPv4 route of the main table.
type route struct {
	dst netip.Prefix
	gw  netip.Addr // invalid for a directly connected route
	// ours says the route carries RouteProtocol.
	ours bool
}

// routeTable is the kernel's routing table over netlink.
type routeTable struct{ h *netlink.Handle }

func (r routeTable) list() ([]route, error) {
	rs, err := r.h.RouteList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("podnet: list routes: %w", err)
	}
	var out []route
	for _, x := range rs {
		if x.Dst == nil || x.Table != unix.RT_TABLE_MAIN {
			continue
		}
		ones, _ := x.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(x.Dst.IP.To4())
		if !ok {
			continue
		}
		rt := route{dst: netip.PrefixFrom(a, ones), ours: x.Protocol == RouteProtocol}
		if gw, ok := netip.AddrFromSlice(x.Gw.To4()); ok && x.Gw != nil {
			rt.gw = gw
		}
		out = append(out, rt)
	}
	return out, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

func (r routeTable) replace(dst netip.Prefix, gw netip.Addr) error {
	err := r.h.RouteReplace(&netlink.Route{Dst: ipNet(dst), Gw: net.IP(gw.AsSlice()), Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN})
	if err != nil {
		return fmt.Errorf("podnet: route %s via %s: %w", dst, gw, err)
	}
	return nil
}

func (r routeTable) delete(dst netip.Prefix) error {
	err := r.h.RouteDel(&netlink.Route{Dst: ipNet(dst), Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("podnet: delete route %s: %w", dst, err)
	}
	return nil
}

// localAddrs are the host's own IPv4 addresses.
func (r routeTable) localAddrs() (map[netip.Addr]bool, error) {
	as, err := r.h.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("podnet: list addresses: %w", err)
	}
	out := map[netip.Addr]bool{}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			out[ip] = true
		}
	}
	return out, nil
}
