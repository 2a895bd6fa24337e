package proxy

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// syncAddresses makes the interface hold exactly vips, each as a /32.
// p.mu is held.
func (p *UserspaceProxy) syncAddresses(vips map[netip.Addr]bool) error {
	h, err := p.netlink()
	if err != nil {
		return err
	}
	link, err := p.ensureLink(h)
	if err != nil {
		return err
	}
	have, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("proxy: list the addresses of %s: %w", p.deps.Interface, err)
	}
	missing := maps.Clone(vips)
	var errs []error
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, bits := a.Mask.Size()
		if ok && ones == 32 && bits == 32 && missing[ip.Unmap()] {
			delete(missing, ip.Unmap())
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			errs = append(errs, fmt.Errorf("proxy: remove %s from %s: %w", a.IPNet, p.deps.Interface, err))
		}
	}
	for _, ip := range slices.SortedFunc(maps.Keys(missing), netip.Addr.Compare) {
		// Host scope: the node never picks a Service address as the
		// source of its own connections.
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: unix.RT_SCOPE_HOST}
		if err := h.AddrAdd(link, a); err != nil {
			errs = append(errs, fmt.Errorf("proxy: add %s to %s: %w", ip, p.deps.Interface, err))
		}
	}
	return errors.Join(errs...)
}

// ensureLink finds or creates the interface and brings it up. It is a
// dummy; where the kernel has no dummy driver, a bridge without ports.
func (p *UserspaceProxy) ensureLink(h *netlink.Handle) (netlink.Link, error) {
	name := p.deps.Interface
	link, err := h.LinkByName(name)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		attrs := netlink.LinkAttrs{Name: name}
		err = h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
		if errors.Is(err, unix.EOPNOTSUPP) {
			p.log.Info("the kernel has no dummy interfaces; the Service addresses go on a bridge without ports", "interface", name)
			err = h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: create the interface %s: %w", name, err)
		}
		link, err = h.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy: interface %s: %w", name, err)
	}
	if err := ownLink(h, link); err != nil {
		return nil, err
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("proxy: bring %s up: %w", name, err)
		}
	}
	return link, nil
}

// ownLink checks that link can be the proxy's: a dummy, or a bridge
// without ports. Any other interface of that name is someone else's, and
// the proxy neither changes its addresses nor deletes it.
func ownLink(h *netlink.Handle, link netlink.Link) error {
	name := link.Attrs().Name
	switch link.Type() {
	case "dummy":
		return nil
	case "bridge":
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("proxy: list interfaces: %w", err)
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == link.Attrs().Index {
				return fmt.Errorf("proxy: interface %s is a bridge with ports (%s); it is not the proxy's", name, l.Attrs().Name)
			}
		}
		return nil
	}
	return fmt.Errorf("proxy: interface %s is a %s, not a dummy; it is not the proxy's", name, link.Type())
}

// netlink returns the proxy's netlink handle, made on first use in the
// namespace served.
func (p *UserspaceProxy) netlink() (*netlink.Handle, error) {
	p.nlMu.Lock()
	defer p.nlMu.Unlock()
	if p.nl != nil {
		return p.nl, nil
	}
	var err error
	if p.ns.IsOpen() {
		p.nl, err = netlink.NewHandleAt(p.ns)
	} else {
		p.nl, err = netlink.NewHandle()
	}
	if err != nil {
		p.nl = nil
		return nil, fmt.Errorf("proxy: netlink: %w", err)
	}
	return p.nl, nil
}

// inNetns runs f, which makes sockets, in the namespace served: a socket
// belongs to the namespace of the thread that makes it.
func (p *UserspaceProxy) inNetns(f func() error) error {
	if !p.ns.IsOpen() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("proxy: the thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(p.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("proxy: enter network namespace %s: %w", p.deps.Netns, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked, so the runtime ends it with
		// this goroutine instead of reusing it in the wrong namespace.
		errc <- ferr
	}()
	return <-errc
}
