package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"orch.dev/orch/node/internal/nft"
)

// NftablesUsable finds out whether the nftables data path works here: the
// nft binary is present and the kernel accepts a table like the proxy's.
// It writes a throwaway table ("orch-probe-<pid>") with the proxy's fixed
// chains and two sample service ports, and deletes it in the same
// transaction, so nothing stays behind and no packet ever sees it; the
// kernel still has to know every expression the proxy uses (NAT, fib,
// numgen, reject, sets with timeouts). r applies the script; nil means the
// nft binary. The error says what is missing, with nft's own message.
func NftablesUsable(ctx context.Context, r Applier) error {
	if r == nil {
		r = &nft.Runner{}
	}
	cfg := renderConfig{
		table:              fmt.Sprintf("orch-probe-%d", os.Getpid()),
		clusterCIDR:        netip.MustParsePrefix("10.0.0.0/8"),
		localhostNodePorts: true,
	}
	ep := func(ip string, local bool) endpoint {
		return endpoint{ip: netip.MustParseAddr(ip), port: 8080, local: local}
	}
	samples := []servicePort{
		{key: "probe/spread/tcp/80", proto: "tcp", clusterIP: netip.MustParseAddr("10.0.0.1"), port: 80,
			endpoints: []endpoint{ep("10.0.1.1", true), ep("10.0.1.2", false)}},
		{key: "probe/sticky/udp/53", proto: "udp", clusterIP: netip.MustParseAddr("10.0.0.2"), port: 53, nodePort: 30053,
			extLocal: true, affinity: 60, endpoints: []endpoint{ep("10.0.1.1", true), ep("10.0.1.2", false)}},
	}
	units := map[string]*unit{}
	for i := range samples {
		units[samples[i].key] = renderUnit(&cfg, &samples[i])
	}
	script := renderFull(&cfg, units) + "delete table ip " + cfg.table + "\n"
	switch err := r.Apply(ctx, script); {
	case err == nil:
		return nil
	case errors.Is(err, nft.ErrNotFound):
		return fmt.Errorf("proxy: nftables is not usable: %w", err)
	case ctx.Err() != nil:
		return fmt.Errorf("proxy: probing nftables: %w", ctx.Err())
	default:
		return fmt.Errorf("proxy: nftables is not usable: the kernel refused a table of the proxy's rules: %w", err)
	}
}
