// Package servicerepair keeps the Service allocation keys of the store
// (package ipalloc) in step with the Services. The API server takes and
// gives back a Service's cluster IP and node ports in the same transaction
// that writes the Service, so the two agree unless something went wrong:
// a bug, a store restored by hand, keys from an older version. On the
// leader this loop reads the Services and the allocation keys at one
// revision and
//
//   - re-creates the key of a value a Service holds but nobody has
//     allocated (guarded by "key absent" and "Service unchanged"), so no
//     other Service can be handed that value;
//   - releases a key no Service holds once it has stayed so, unchanged, for
//     a grace period (guarded by the key's revision);
//   - reports values two Services hold as an Event on both, and leaves them
//     for a person to resolve.
package servicerepair

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/controller"
	"orch.dev/orch/server/ipalloc"
)

// Deps are what the loop needs.
type Deps struct {
	// Store is the replicated store (the leader's replica).
	Store raftstore.Store
	// Client writes Events on Services; nil only logs.
	Client kubernetes.Interface
	Logger *slog.Logger
	Clock  clock.Clock
	// Interval is the time between passes; default 1m. The first pass runs
	// at once.
	Interval time.Duration
	// Grace is how long a key no Service holds stays before it is
	// released; default 1m.
	Grace time.Duration
	// ServiceCIDR is the configured service range; cluster IPs outside it
	// (the range changed) are kept and logged. Default 10.43.0.0/16.
	ServiceCIDR netip.Prefix
}

// Controller is the Service allocation repair loop.
type Controller struct {
	deps     Deps
	recorder record.EventRecorder
	// orphans are keys no Service held, by key, with the revision they had
	// and when that was first seen.
	orphans map[string]orphan
}

type orphan struct {
	modRevision int64
	since       time.Time
}

// New builds the loop.
func New(deps Deps) *Controller {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Interval <= 0 {
		deps.Interval = time.Minute
	}
	if deps.Grace <= 0 {
		deps.Grace = time.Minute
	}
	if !deps.ServiceCIDR.IsValid() {
		deps.ServiceCIDR = ipalloc.DefaultServiceCIDR
	}
	return &Controller{deps: deps, orphans: map[string]orphan{}}
}

// Run repairs every Interval until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.deps.Client != nil {
		rec, stop := controller.NewRecorder(c.deps.Client, "servicerepair-controller")
		defer stop()
		c.recorder = rec
	}
	for {
		if _, err := c.Repair(ctx); err != nil && ctx.Err() == nil {
			c.deps.Logger.Warn("service allocation repair failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.deps.Clock.After(c.deps.Interval):
		}
	}
}

// Result counts what one pass did.
type Result struct {
	Recreated int // keys written for values Services held without one
	Released  int // keys no Service held, deleted after the grace period
	Pending   int // keys no Service holds, waiting out the grace period
	Conflicts int // values held by more than one Service
}

// holder is a Service holding an allocation.
type holder struct {
	svc    *corev1.Service
	key    string // the Service's store key
	modRev int64
}

// Repair makes one pass.
func (c *Controller) Repair(ctx context.Context) (Result, error) {
	var res Result
	svcKVs, rev, err := listAll(ctx, c.deps.Store, ipalloc.ServicesPrefix, raftstore.ListOptions{ReadOptions: raftstore.ReadOptions{Linearizable: true}})
	if err != nil {
		return res, fmt.Errorf("list services: %w", err)
	}
	allocKVs, _, err := listAll(ctx, c.deps.Store, ipalloc.Prefix, raftstore.ListOptions{Revision: rev})
	if err != nil {
		return res, fmt.Errorf("list allocations: %w", err)
	}
	holders := map[string][]holder{}
	for _, kv := range svcKVs {
		svc := &corev1.Service{}
		if err := json.Unmarshal(kv.Value, svc); err != nil {
			c.deps.Logger.Warn("stored service does not decode; its allocations are left alone", "key", kv.Key, "err", err)
			continue
		}
		for _, k := range ipalloc.Keys(svc) {
			holders[k] = append(holders[k], holder{svc: svc, key: kv.Key, modRev: kv.ModRevision})
		}
	}
	allocated := map[string]*raftstore.KeyValue{}
	for _, kv := range allocKVs {
		allocated[kv.Key] = kv
	}

	keys := make([]string, 0, len(holders))
	for k := range holders {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hs := holders[k]
		if len(hs) > 1 {
			res.Conflicts++
			c.conflict(k, hs)
			continue
		}
		h := hs[0]
		if ip, _, _, ok := ipalloc.ParseKey(k); ok && ip.IsValid() && !c.deps.ServiceCIDR.Contains(ip) {
			c.deps.Logger.Warn("service cluster IP is outside the service CIDR; it keeps working but a new Service could not be given it",
				"ns", h.svc.Namespace, "service", h.svc.Name, "ip", ip, "cidr", c.deps.ServiceCIDR)
		}
		if allocated[k] != nil {
			continue
		}
		out, err := c.deps.Store.Txn(ctx, &raftstore.Txn{
			Compares: []raftstore.Compare{{Key: k, ModRevision: raftstore.Absent}, {Key: h.key, ModRevision: h.modRev}},
			Ops:      []raftstore.Op{{Type: raftstore.OpPut, Key: k, Value: ipalloc.OwnerOf(h.svc)}},
		})
		if err != nil {
			return res, fmt.Errorf("re-create %s: %w", k, err)
		}
		if !out.Succeeded {
			continue // changed since the read: the next pass looks again
		}
		res.Recreated++
		c.deps.Logger.Warn("re-created a missing service allocation", "ns", h.svc.Namespace, "service", h.svc.Name, "key", k)
		c.event(h.svc, corev1.EventTypeWarning, notAllocatedReason(k), fmt.Sprintf("%s was not recorded as allocated; the record was re-created", describe(k)))
	}

	now := c.deps.Clock.Now()
	seen := map[string]bool{}
	for _, kv := range allocKVs {
		if len(holders[kv.Key]) > 0 {
			continue
		}
		seen[kv.Key] = true
		o, ok := c.orphans[kv.Key]
		if !ok || o.modRevision != kv.ModRevision {
			c.orphans[kv.Key] = orphan{modRevision: kv.ModRevision, since: now}
			res.Pending++
			continue
		}
		if now.Sub(o.since) < c.deps.Grace {
			res.Pending++
			continue
		}
		out, err := c.deps.Store.Txn(ctx, &raftstore.Txn{
			Compares: []raftstore.Compare{{Key: kv.Key, ModRevision: kv.ModRevision}},
			Ops:      []raftstore.Op{{Type: raftstore.OpDelete, Key: kv.Key}},
		})
		if err != nil {
			return res, fmt.Errorf("release %s: %w", kv.Key, err)
		}
		delete(c.orphans, kv.Key)
		if out.Succeeded {
			res.Released++
			owner, _ := ipalloc.DecodeOwner(kv.Value) // only for the log line
			c.deps.Logger.Warn("released a service allocation no Service holds", "key", kv.Key, "ns", owner.Namespace, "service", owner.Name)
		}
	}
	for k := range c.orphans {
		if !seen[k] {
			delete(c.orphans, k)
		}
	}
	return res, nil
}

// conflict reports a value more than one Service holds.
func (c *Controller) conflict(key string, hs []holder) {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.svc.Namespace + "/" + h.svc.Name
	}
	c.deps.Logger.Error("a service allocation is held by more than one Service; delete or change all but one", "key", key, "services", names)
	for _, h := range hs {
		c.event(h.svc, corev1.EventTypeWarning, alreadyAllocatedReason(key), fmt.Sprintf("%s is also held by %v; change or recreate all but one of them", describe(key), names))
	}
}

func (c *Controller) event(svc *corev1.Service, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(svc, typ, reason, msg)
	}
}

// Event reasons, as Kubernetes' repair loops name them.
func notAllocatedReason(key string) string {
	if ip, _, _, _ := ipalloc.ParseKey(key); ip.IsValid() {
		return "ClusterIPNotAllocated"
	}
	return "PortNotAllocated"
}

func alreadyAllocatedReason(key string) string {
	if ip, _, _, _ := ipalloc.ParseKey(key); ip.IsValid() {
		return "ClusterIPAlreadyAllocated"
	}
	return "PortAlreadyAllocated"
}

// describe names an allocation for a person.
func describe(key string) string {
	ip, port, proto, ok := ipalloc.ParseKey(key)
	switch {
	case !ok:
		return key
	case ip.IsValid():
		return "cluster IP " + ip.String()
	}
	return fmt.Sprintf("node port %d/%s", port, proto)
}

// listAll lists every key under prefix, in pages, at one revision.
func listAll(ctx context.Context, s raftstore.Store, prefix string, opts raftstore.ListOptions) ([]*raftstore.KeyValue, int64, error) {
	var out []*raftstore.KeyValue
	opts.Limit = 1000
	for {
		kvs, rev, more, err := s.List(ctx, prefix, opts)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, kvs...)
		if !more || len(kvs) == 0 {
			return out, rev, nil
		}
		opts.ReadOptions = raftstore.ReadOptions{}
		opts.Revision, opts.StartKey = rev, kvs[len(kvs)-1].Key+"\x00"
	}
}
