//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the object orch's service proxy reads.

// Package servicelb is the load balancer of sites without a cloud, like
// k3s's ServiceLB: a LoadBalancer Service is reachable on its port at the
// addresses of the cluster's nodes, where the node's service proxy exposes
// it, and this loop publishes those addresses as the Service's
// status.loadBalancer.ingress. The addresses are the InternalIPs of the
// Ready nodes, leaving out nodes labelled
// node.kubernetes.io/exclude-from-external-load-balancers; with
// externalTrafficPolicy Local only the nodes running a ready endpoint of
// the Service, since the others would drop the traffic. Services with a
// loadBalancerClass belong to another implementation and are left alone.
package servicelb

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/server/controller"
)

// excludeLabel keeps a node out of every load balancer, as in Kubernetes.
const excludeLabel = corev1.LabelNodeExcludeBalancers

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// Workers is the number of Services synced at once (default 2).
	Workers int
}

// Controller publishes node addresses as LoadBalancer ingress.
type Controller struct {
	deps      Deps
	services  corelisters.ServiceLister
	nodes     corelisters.NodeLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
}

// New builds the controller and registers its informers on deps.Informers.
func New(deps Deps) *Controller {
	if deps.Logger == nil {
		deps.Logger = logging.Discard
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Workers <= 0 {
		deps.Workers = 2
	}
	svcInf := deps.Informers.Core().V1().Services()
	nodeInf := deps.Informers.Core().V1().Nodes()
	epInf := deps.Informers.Core().V1().Endpoints()
	c := &Controller{
		deps:      deps,
		services:  svcInf.Lister(),
		nodes:     nodeInf.Lister(),
		endpoints: epInf.Lister(),
		synced:    []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced, epInf.Informer().HasSynced},
		queue:     controller.NewQueue("servicelb"),
	}
	enqueue := func(obj any) {
		if key, ok := controller.KeyOf(obj); ok {
			c.queue.Add(key)
		}
	}
	// Handlers only enqueue; sync decides from the listers.
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // registration handles are not needed
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	_, _ = epInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, ""))
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			if nodeIP(o) != nodeIP(n) || eligible(o) != eligible(n) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "servicelb-controller")
	defer stop()
	c.recorder = rec
	loop := &controller.Loop{Name: "servicelb", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	return loop.Run(ctx, c.synced...)
}

// enqueueAll queues every LoadBalancer Service: the set of nodes changed.
func (c *Controller) enqueueAll() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
		return nil
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	var local map[string]bool
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		local = map[string]bool{}
		ep, err := c.endpoints.Endpoints(ns).Get(name)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if ep != nil {
			for _, ss := range ep.Subsets {
				for _, a := range ss.Addresses {
					if a.NodeName != nil {
						local[*a.NodeName] = true
					}
				}
			}
		}
	}
	ingress := Ingress(nodes, local)
	if apiequality.Semantic.DeepEqual(svc.Status.LoadBalancer.Ingress, ingress) {
		return nil
	}
	err = controller.UpdateStatus(ctx, c.deps.Client.CoreV1().Services(ns), svc.DeepCopy(), func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = ingress
	})
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "SyncLoadBalancerFailed", "Error publishing the node addresses of load balancer %s: %v", key, err)
		return err
	}
	ips := make([]string, len(ingress))
	for i, in := range ingress {
		ips[i] = in.IP
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, "EnsuredLoadBalancer", "Load balancer on node addresses %v", ips)
	return nil
}

// Ingress is the load balancer ingress of the given nodes: the InternalIP
// of each eligible one, in address order. With local non-nil only the
// nodes it names count.
func Ingress(nodes []*corev1.Node, local map[string]bool) []corev1.LoadBalancerIngress {
	var ips []netip.Addr
	for _, n := range nodes {
		if !eligible(n) || (local != nil && !local[n.Name]) {
			continue
		}
		if a, err := netip.ParseAddr(nodeIP(n)); err == nil && !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	var out []corev1.LoadBalancerIngress
	for _, a := range ips {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String()})
	}
	return out
}

// eligible reports whether a node may carry load balancer traffic.
func eligible(n *corev1.Node) bool {
	if n.DeletionTimestamp != nil {
		return false
	}
	if _, excluded := n.Labels[excludeLabel]; excluded {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeIP is a node's InternalIP, "" without one.
func nodeIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}
