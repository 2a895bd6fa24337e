package podnet

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Hairpin: a pod that reaches itself through a Service address sends its
// packet to the bridge; once DNATed back to the pod, the bridge (with
// br_netfilter) forwards the frame out of the port it came in on, which a
// bridge only does for ports in hairpin mode. Docker turns hairpin mode on
// only without its userland proxy, so the pod network turns it on for
// every port of a bridge that carries a pod subnet: at each sync, and as
// soon as a new port joins such a bridge.

// podBridges are the indexes of the bridges with an address in the
// cluster CIDR.
func (n *PodNetwork) podBridges() (map[int]bool, error) {
	links, err := n.routes.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("podnet: list links: %w", err)
	}
	out := map[int]bool{}
	for _, l := range links {
		if l.Type() != "bridge" {
			continue
		}
		if n.isPodBridge(l) {
			out[l.Attrs().Index] = true
		}
	}
	return out, nil
}

func (n *PodNetwork) isPodBridge(l netlink.Link) bool {
	addrs, err := n.routes.h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && n.deps.ClusterCIDR.Contains(ip) {
			return true
		}
	}
	return false
}

// syncHairpin turns hairpin mode on for every port of the pod bridges.
func (n *PodNetwork) syncHairpin() error {
	bridges, err := n.podBridges()
	if err != nil {
		return err
	}
	links, err := n.routes.h.LinkList()
	if err != nil {
		return fmt.Errorf("podnet: list links: %w", err)
	}
	for _, l := range links {
		if bridges[l.Attrs().MasterIndex] && l.Type() != "bridge" {
			if err := n.routes.h.LinkSetHairpin(l, true); err != nil {
				return fmt.Errorf("podnet: hairpin mode on %s: %w", l.Attrs().Name, err)
			}
		}
	}
	return nil
}

// watchHairpin sets hairpin mode on ports as they join a pod bridge, until
// ctx ends.
func (n *PodNetwork) watchHairpin(ctx context.Context, ns *netns.NsHandle) {
	ch := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{
		Namespace:     ns,
		ErrorCallback: func(err error) { n.log.Debug("link updates", "err", err) },
	}); err != nil {
		n.log.Warn("no link updates; hairpin mode is set at each resync only", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			master := u.Link.Attrs().MasterIndex
			if master == 0 || u.Link.Type() == "bridge" {
				continue
			}
			br, err := n.routes.h.LinkByIndex(master)
			if err != nil || br.Type() != "bridge" || !n.isPodBridge(br) {
				continue
			}
			if err := n.routes.h.LinkSetHairpin(u.Link, true); err != nil {
				n.log.Debug("hairpin mode", "link", u.Link.Attrs().Name, "err", err)
			}
		}
	}
}
