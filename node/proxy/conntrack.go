package proxy

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkConntrack deletes conntrack entries over netlink.
type netlinkConntrack struct{}

func (netlinkConntrack) ClearUDPEndpoint(ep netip.AddrPort) error {
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, replyFrom(ep))
	return err
}

func (netlinkConntrack) ClearUDPService(vip netip.Addr, port uint16) error {
	f := &netlink.ConntrackFilter{}
	if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
		return err
	}
	if err := f.AddIP(netlink.ConntrackOrigDstIP, net.IP(vip.AsSlice())); err != nil {
		return err
	}
	if err := f.AddPort(netlink.ConntrackOrigDstPort, port); err != nil {
		return err
	}
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	return err
}

// replyFrom matches the UDP flows whose replies come from an endpoint:
// those DNATed to it.
type replyFrom netip.AddrPort

func (r replyFrom) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	ep := netip.AddrPort(r)
	return flow.Forward.Protocol == unix.IPPROTO_UDP && flow.Reverse.SrcPort == ep.Port() &&
		flow.Reverse.SrcIP.Equal(net.IP(ep.Addr().AsSlice()))
}
