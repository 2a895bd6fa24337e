package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"orch.dev/orch/node/internal/nft"
)

// Names of the table's fixed objects.
const (
	mapServiceIPs         = "service-ips"
	mapServiceNodePorts   = "service-nodeports"
	mapNoEndpointServices = "no-endpoint-services"
	mapNoEndpointNodePort = "no-endpoint-nodeports"
	chainMark             = "mark-for-masquerade"
	chainServices         = "services"
	chainReject           = "reject-chain"
	// masqueradeMark is the packet mark bit asking for masquerade in
	// postrouting.
	masqueradeMark = "0x4000"
)

// renderConfig is what rendering needs besides the Services.
type renderConfig struct {
	table       string
	clusterCIDR netip.Prefix
	// localhostNodePorts makes NodePorts answer on 127.0.0.0/8 too.
	localhostNodePorts bool
}

// unit is the part of the ruleset one service port owns: its chains, its
// affinity sets and its elements in the shared maps. Units are compared
// between syncs so that only what changed is written.
type unit struct {
	chains map[string][]string // chain → rules
	order  []string            // chain names in the order they were made
	sets   map[string]string   // set → declaration
	elems  map[elemKey]string  // element → verdict
}

type elemKey struct{ m, key string }

func newUnit() *unit {
	return &unit{chains: map[string][]string{}, sets: map[string]string{}, elems: map[elemKey]string{}}
}

func (u *unit) chain(name string, rules ...string) {
	if _, ok := u.chains[name]; !ok {
		u.order = append(u.order, name)
	}
	u.chains[name] = append(u.chains[name], rules...)
}

func hash8(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// objectName makes a chain or set name: a kind, a hash of the full key
// (so names stay unique even if a long key is cut), then the readable key.
func objectName(kind, key string) string {
	name := kind + "-" + hash8(key) + "-" + nft.Identifier(key)
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

func epKey(sp *servicePort, e endpoint) string { return sp.key + "__" + e.String() }

// renderUnit computes what one service port needs in the kernel.
func renderUnit(cfg *renderConfig, sp *servicePort) *unit {
	u := newUnit()
	svcChain := objectName("svc", sp.key)
	extChain := objectName("ext", sp.key)
	ilcChain := objectName("ilc", sp.key)
	cluster := cfg.clusterCIDR.String()
	local := sp.localEndpoints()
	epChain := func(e endpoint) string { return objectName("sep", epKey(sp, e)) }
	affSet := func(e endpoint) string { return objectName("aff", fmt.Sprintf("%s/%d", epKey(sp, e), sp.affinity)) }
	// pick spreads connections over eps. Without session affinity the
	// DNAT picks the endpoint itself; a pod that reaches itself (hairpin)
	// must be masqueraded, and as the pick happens in the same statement,
	// connections from any of the endpoints are. With affinity each
	// endpoint has a chain that remembers the client.
	pick := func(eps []endpoint) []string {
		var rules []string
		if sp.affinity > 0 {
			for _, e := range eps {
				rules = append(rules, "ip saddr @"+affSet(e)+" goto "+epChain(e))
			}
			if len(eps) == 1 {
				return append(rules, "goto "+epChain(eps[0]))
			}
			var arms []string
			for i, e := range eps {
				arms = append(arms, fmt.Sprintf("%d : goto %s", i, epChain(e)))
			}
			return append(rules, fmt.Sprintf("numgen random mod %d vmap { %s }", len(eps), strings.Join(arms, ", ")))
		}
		var ips []string
		for _, e := range eps {
			if ip := e.ip.String(); !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
		if len(ips) == 1 {
			rules = append(rules, "ip saddr "+ips[0]+" jump "+chainMark)
		} else {
			rules = append(rules, "ip saddr { "+strings.Join(ips, ", ")+" } jump "+chainMark)
		}
		if len(eps) == 1 {
			return append(rules, fmt.Sprintf("meta l4proto %s dnat ip to %s", sp.proto, eps[0]))
		}
		var arms []string
		for i, e := range eps {
			arms = append(arms, fmt.Sprintf("%d : %s . %d", i, e.ip, e.port))
		}
		return append(rules, fmt.Sprintf("meta l4proto %s dnat ip to numgen random mod %d map { %s }", sp.proto, len(eps), strings.Join(arms, ", ")))
	}

	// With session affinity one chain per endpoint does the DNAT,
	// masquerading a pod that reaches itself (hairpin) and remembering
	// the client.
	for _, e := range sp.endpoints {
		if sp.affinity == 0 {
			break
		}
		u.sets[affSet(e)] = fmt.Sprintf("{ type ipv4_addr ; flags dynamic,timeout ; timeout %ds ; }", sp.affinity)
		u.chain(epChain(e),
			"ip saddr "+e.ip.String()+" jump "+chainMark,
			"update @"+affSet(e)+" { ip saddr }",
			fmt.Sprintf("meta l4proto %s dnat ip to %s", sp.proto, e))
	}
	// The service chain spreads over every endpoint; traffic from outside
	// the pod network (the node itself) is masqueraded so replies come
	// back through this node.
	if len(sp.endpoints) > 0 {
		u.chain(svcChain, append([]string{"ip saddr != " + cluster + " jump " + chainMark}, pick(sp.endpoints)...)...)
	}

	key := func(ip netip.Addr) string { return fmt.Sprintf("%s . %s . %d", ip, sp.proto, sp.port) }
	if sp.clusterIP.IsValid() {
		switch {
		case sp.intLocal && len(local) > 0:
			u.chain(ilcChain, append([]string{"ip saddr != " + cluster + " jump " + chainMark}, pick(local)...)...)
			u.elems[elemKey{mapServiceIPs, key(sp.clusterIP)}] = "goto " + ilcChain
		case !sp.intLocal && len(sp.endpoints) > 0:
			u.elems[elemKey{mapServiceIPs, key(sp.clusterIP)}] = "goto " + svcChain
		default:
			u.elems[elemKey{mapNoEndpointServices, key(sp.clusterIP)}] = "goto " + chainReject
		}
	}

	if sp.nodePort == 0 && len(sp.external) == 0 {
		return u
	}
	// NodePorts and external addresses: with the Cluster policy every
	// endpoint serves, behind masquerade; with Local only this node's
	// endpoints serve and the client's address is kept, except for pods
	// and the node itself, which reach every endpoint as through the
	// cluster IP.
	if len(sp.endpoints) == 0 {
		if sp.nodePort != 0 {
			u.elems[elemKey{mapNoEndpointNodePort, fmt.Sprintf("%s . %d", sp.proto, sp.nodePort)}] = "goto " + chainReject
		}
		for _, ip := range sp.external {
			u.elems[elemKey{mapNoEndpointServices, key(ip)}] = "goto " + chainReject
		}
		return u
	}
	if !sp.extLocal {
		u.chain(extChain, "jump "+chainMark, "goto "+svcChain)
	} else {
		rules := []string{
			"ip saddr " + cluster + " goto " + svcChain,
			"fib saddr type local jump " + chainMark,
			"fib saddr type local goto " + svcChain,
		}
		if len(local) > 0 {
			rules = append(rules, pick(local)...)
		} else {
			rules = append(rules, "drop")
		}
		u.chain(extChain, rules...)
	}
	if sp.nodePort != 0 {
		u.elems[elemKey{mapServiceNodePorts, fmt.Sprintf("%s . %d", sp.proto, sp.nodePort)}] = "goto " + extChain
	}
	for _, ip := range sp.external {
		u.elems[elemKey{mapServiceIPs, key(ip)}] = "goto " + extChain
	}
	return u
}

// renderBase writes the table's fixed objects: the dispatch maps, the hook
// chains and the helpers every service uses.
func renderBase(b *strings.Builder, cfg *renderConfig) {
	t := "ip " + cfg.table
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	for _, m := range []string{mapServiceIPs, mapNoEndpointServices} {
		w("add map %s %s { type ipv4_addr . inet_proto . inet_service : verdict ; }", t, m)
	}
	for _, m := range []string{mapServiceNodePorts, mapNoEndpointNodePort} {
		w("add map %s %s { type inet_proto . inet_service : verdict ; }", t, m)
	}
	w("add chain %s %s", t, chainMark)
	w("add rule %s %s meta mark set meta mark | %s", t, chainMark, masqueradeMark)
	w("add chain %s %s", t, chainReject)
	w("add rule %s %s reject", t, chainReject)

	w("add chain %s %s", t, chainServices)
	w("add rule %s %s ip daddr . meta l4proto . th dport vmap @%s", t, chainServices, mapServiceIPs)
	notLoopback := ""
	if !cfg.localhostNodePorts {
		notLoopback = "ip daddr != 127.0.0.0/8 "
	}
	w("add rule %s %s fib daddr type local %smeta l4proto . th dport vmap @%s", t, chainServices, notLoopback, mapServiceNodePorts)

	w("add chain %s nat-prerouting { type nat hook prerouting priority dstnat ; policy accept ; }", t)
	w("add rule %s nat-prerouting jump %s", t, chainServices)
	w("add chain %s nat-output { type nat hook output priority -100 ; policy accept ; }", t)
	w("add rule %s nat-output jump %s", t, chainServices)
	// Before the engine's own masquerade (srcnat) and the pod network's
	// rules (srcnat - 5): the first NAT decision for a connection wins.
	w("add chain %s nat-postrouting { type nat hook postrouting priority srcnat - 10 ; policy accept ; }", t)
	w("add rule %s nat-postrouting meta mark & %s == 0 return", t, masqueradeMark)
	w("add rule %s nat-postrouting meta mark set meta mark ^ %s", t, masqueradeMark)
	w("add rule %s nat-postrouting masquerade fully-random", t)

	// Services without endpoints refuse connections rather than letting
	// them time out.
	w("add chain %s filter-input { type filter hook input priority -110 ; policy accept ; }", t)
	w("add rule %s filter-input ct state new ip daddr . meta l4proto . th dport vmap @%s", t, mapNoEndpointServices)
	w("add rule %s filter-input ct state new fib daddr type local %smeta l4proto . th dport vmap @%s", t, notLoopback, mapNoEndpointNodePort)
	if cfg.localhostNodePorts {
		// route_localnet lets 127.0.0.1 be NATed; never accept packets
		// for 127.0.0.0/8 that did not come from the host itself.
		w("add rule %s filter-input iifname != \"lo\" ip daddr 127.0.0.0/8 ct state new ct status & dnat == 0 drop", t)
	}
	w("add chain %s filter-forward { type filter hook forward priority -110 ; policy accept ; }", t)
	w("add rule %s filter-forward ct state new ip daddr . meta l4proto . th dport vmap @%s", t, mapNoEndpointServices)
	w("add chain %s filter-output { type filter hook output priority -110 ; policy accept ; }", t)
	w("add rule %s filter-output ct state new ip daddr . meta l4proto . th dport vmap @%s", t, mapNoEndpointServices)
}

// renderFull replaces the whole table in one transaction.
func renderFull(cfg *renderConfig, units map[string]*unit) string {
	var b strings.Builder
	t := "ip " + cfg.table
	fmt.Fprintf(&b, "add table %s\ndelete table %s\nadd table %s\n", t, t, t)
	renderBase(&b, cfg)
	keys := slices.Sorted(maps.Keys(units))
	for _, k := range keys {
		u := units[k]
		for _, s := range slices.Sorted(maps.Keys(u.sets)) {
			fmt.Fprintf(&b, "add set %s %s %s\n", t, s, u.sets[s])
		}
		for _, c := range u.order {
			fmt.Fprintf(&b, "add chain %s %s\n", t, c)
		}
	}
	for _, k := range keys {
		u := units[k]
		for _, c := range u.order {
			for _, r := range u.chains[c] {
				fmt.Fprintf(&b, "add rule %s %s %s\n", t, c, r)
			}
		}
	}
	for _, k := range keys {
		writeElems(&b, t, "add", units[k].elems, nil)
	}
	return b.String()
}

// writeElems writes an add (or delete) element command for each element of
// elems that skip does not hold with the same verdict.
func writeElems(b *strings.Builder, t, verb string, elems, skip map[elemKey]string) {
	keys := slices.SortedFunc(maps.Keys(elems), func(a, b elemKey) int {
		return strings.Compare(a.m+" "+a.key, b.m+" "+b.key)
	})
	for _, k := range keys {
		v := elems[k]
		if sv, ok := skip[k]; ok && sv == v {
			continue
		}
		if verb == "add" {
			fmt.Fprintf(b, "add element %s %s { %s : %s }\n", t, k.m, k.key, v)
		} else {
			fmt.Fprintf(b, "delete element %s %s { %s }\n", t, k.m, k.key)
		}
	}
}

// renderDiff writes the commands that turn the table from old into new,
// touching only the units that differ and, inside them, only the chains
// whose rules changed. It returns "" when nothing changed.
func renderDiff(cfg *renderConfig, old, new map[string]*unit) string {
	var decl, rules, delElems, addElems, stale strings.Builder
	t := "ip " + cfg.table
	var staleChains, staleSets []string
	empty := newUnit()
	keys := slices.Sorted(maps.Keys(new))
	for k := range old {
		if _, ok := new[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		o, n := old[k], new[k]
		if o == n {
			continue
		}
		if o == nil {
			o = empty
		}
		if n == nil {
			n = empty
		}
		for _, s := range slices.Sorted(maps.Keys(n.sets)) {
			if _, ok := o.sets[s]; !ok {
				fmt.Fprintf(&decl, "add set %s %s %s\n", t, s, n.sets[s])
			}
		}
		for _, c := range n.order {
			or, existed := o.chains[c]
			if existed && slices.Equal(or, n.chains[c]) {
				continue
			}
			if existed {
				fmt.Fprintf(&rules, "flush chain %s %s\n", t, c)
			} else {
				fmt.Fprintf(&decl, "add chain %s %s\n", t, c)
			}
			for _, r := range n.chains[c] {
				fmt.Fprintf(&rules, "add rule %s %s %s\n", t, c, r)
			}
		}
		writeElems(&delElems, t, "delete", o.elems, n.elems)
		writeElems(&addElems, t, "add", n.elems, o.elems)
		for _, c := range o.order {
			if _, ok := n.chains[c]; !ok {
				staleChains = append(staleChains, c)
			}
		}
		for _, s := range slices.Sorted(maps.Keys(o.sets)) {
			if _, ok := n.sets[s]; !ok {
				staleSets = append(staleSets, s)
			}
		}
	}
	// Stale chains are emptied first, so none still jumps to another when
	// it is deleted; sets go after the rules that used them.
	for _, c := range staleChains {
		fmt.Fprintf(&stale, "flush chain %s %s\n", t, c)
	}
	for _, c := range staleChains {
		fmt.Fprintf(&stale, "delete chain %s %s\n", t, c)
	}
	for _, s := range staleSets {
		fmt.Fprintf(&stale, "delete set %s %s\n", t, s)
	}
	return decl.String() + rules.String() + delElems.String() + addElems.String() + stale.String()
}
