// Package nodeipam gives every node a pod subnet (spec.podCIDR): the
// lowest free /24 (by default) of the cluster CIDR. Only the leader runs
// it, one allocation at a time, and a new leader rebuilds what is taken
// from the Node objects, so no subnet is handed out twice.
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Deps are what the controller needs.
type Deps struct {
	Client      kubernetes.Interface
	ClusterCIDR netip.Prefix
	MaskSize    int // bits of each node's subnet, e.g. 24
	Logger      *slog.Logger
}

// Controller allocates node pod subnets.
type Controller struct {
	deps    Deps
	factory informers.SharedInformerFactory
	lister  corelisters.NodeLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]

	// assigned remembers this controller's own allocations until the
	// informer shows them, so the next node cannot get the same subnet.
	mu       sync.Mutex
	assigned map[string]netip.Prefix
}

// New builds the controller.
func New(deps Deps) (*Controller, error) {
	if !deps.ClusterCIDR.IsValid() || deps.MaskSize <= deps.ClusterCIDR.Bits() || deps.MaskSize > deps.ClusterCIDR.Addr().BitLen() {
		return nil, fmt.Errorf("node subnets of /%d do not fit in the cluster CIDR %s", deps.MaskSize, deps.ClusterCIDR)
	}
	deps.ClusterCIDR = deps.ClusterCIDR.Masked()
	f := informers.NewSharedInformerFactory(deps.Client, 0)
	inf := f.Core().V1().Nodes()
	c := &Controller{deps: deps, factory: f, lister: inf.Lister(), synced: inf.Informer().HasSynced, assigned: map[string]netip.Prefix{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"})}
	enqueue := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && n.Spec.PodCIDR == "" {
			c.queue.Add(n.Name)
		}
	}
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if n, ok := o.(*corev1.Node); ok {
				c.mu.Lock()
				delete(c.assigned, n.Name)
				c.mu.Unlock()
			}
		},
	})
	return c, nil
}

// Run runs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for {
		name, quit := c.queue.Get()
		if quit {
			return nil
		}
		if err := c.sync(ctx, name); err != nil {
			c.deps.Logger.Warn("allocate a pod subnet; retrying", "node", name, "err", err)
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || node.Spec.PodCIDR != "" {
		return err
	}
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		return err
	}
	used := map[netip.Prefix]bool{}
	for _, n := range nodes {
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			used[p.Masked()] = true
		}
	}
	c.mu.Lock()
	if p, ok := c.assigned[name]; ok {
		c.mu.Unlock()
		return c.patch(ctx, name, p) // assigned before, not seen yet: the same again
	}
	for _, p := range c.assigned {
		used[p] = true
	}
	c.mu.Unlock()
	subnet, ok := Next(c.deps.ClusterCIDR, c.deps.MaskSize, used)
	if !ok {
		return fmt.Errorf("the cluster CIDR %s has no free /%d subnet left for node %s", c.deps.ClusterCIDR, c.deps.MaskSize, name)
	}
	c.mu.Lock()
	c.assigned[name] = subnet
	c.mu.Unlock()
	if err := c.patch(ctx, name, subnet); err != nil {
		return err
	}
	c.deps.Logger.Info("assigned a pod subnet", "node", name, "subnet", subnet.String())
	return nil
}

func (c *Controller) patch(ctx context.Context, name string, subnet netip.Prefix) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": subnet.String(), "podCIDRs": []string{subnet.String()}}})
	if err != nil {
		return err
	}
	_, err = c.deps.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.assigned, name)
		c.mu.Unlock()
		return nil
	}
	return err
}

// Next returns the lowest subnet of size /bits in cluster not in used.
func Next(cluster netip.Prefix, bits int, used map[netip.Prefix]bool) (netip.Prefix, bool) {
	addr := cluster.Addr()
	for {
		p := netip.PrefixFrom(addr, bits).Masked()
		if !cluster.Contains(p.Addr()) {
			return netip.Prefix{}, false
		}
		if !used[p] {
			return p, true
		}
		next, ok := afterPrefix(p)
		if !ok {
			return netip.Prefix{}, false
		}
		addr = next
	}
}

// afterPrefix is the first address after p.
func afterPrefix(p netip.Prefix) (netip.Addr, bool) {
	b := p.Addr().AsSlice()
	// Add 1 at the last bit of the prefix.
	bit := p.Bits() - 1
	for bit >= 0 {
		byteIdx, mask := bit/8, byte(1)<<(7-uint(bit%8))
		if b[byteIdx]&mask == 0 {
			b[byteIdx] |= mask
			a, _ := netip.AddrFromSlice(b)
			return a, true
		}
		b[byteIdx] &^= mask
		bit--
	}
	return netip.Addr{}, false
}
