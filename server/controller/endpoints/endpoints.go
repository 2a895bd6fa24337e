//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the object orch's service proxy and DNS read.

// Package endpoints keeps an Endpoints object for every Service with a
// selector: the same name, listing the pods the selector matches that have
// an IP. Ready pods are in addresses, the others (running but not ready,
// or still starting with an IP) in notReadyAddresses, unless the Service
// publishes not-ready addresses, when all are in addresses. Each address
// names its pod (targetRef), node and, when the pod asks for it with
// hostname and a subdomain equal to the Service name, its hostname. A
// named targetPort is resolved in each pod's own container ports, so pods
// that give a port name different numbers end up in different subsets:
// addresses are grouped by the set of ports they serve, as Kubernetes
// does. Services without a selector keep the Endpoints their users write.
// Endpoints are written only when they change, and deleted with their
// Service.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// headlessLabel marks the Endpoints of a headless Service, as Kubernetes
// does, so readers can tell them apart without the Service.
const headlessLabel = corev1.IsHeadlessService

// Deps are what the controller needs.
type Deps struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.Clock
	// Workers is the number of Services synced at once (default 5).
	Workers int
}

// Controller is the Endpoints control loop.
type Controller struct {
	deps      Deps
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
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
		deps.Workers = 5
	}
	svcInf := deps.Informers.Core().V1().Services()
	podInf := deps.Informers.Core().V1().Pods()
	epInf := deps.Informers.Core().V1().Endpoints()
	c := &Controller{
		deps:      deps,
		services:  svcInf.Lister(),
		pods:      podInf.Lister(),
		endpoints: epInf.Lister(),
		synced:    []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced},
		queue:     controller.NewQueue("endpoints"),
	}
	enqueue := func(obj any) {
		if key, ok := controller.KeyOf(obj); ok {
			c.queue.Add(key)
		}
	}
	// Handlers only enqueue; sync decides from the listers.
	_, _ = svcInf.Informer().AddEventHandler(controller.EnqueueHandler(c.queue, "")) // registration handles are not needed
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePodServices(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			c.enqueuePodServices(newObj)
			if o, n := oldObj.(*corev1.Pod), newObj.(*corev1.Pod); !maps.Equal(o.Labels, n.Labels) {
				c.enqueuePodServices(oldObj)
			}
		},
		DeleteFunc: func(obj any) { c.enqueuePodServices(obj) },
	})
	// An Endpoints deleted by someone else is made again.
	_, _ = epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: enqueue})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rec, stop := controller.NewRecorder(c.deps.Client, "endpoint-controller")
	defer stop()
	c.recorder = rec
	loop := &controller.Loop{Name: "endpoints", Queue: c.queue, Sync: c.sync, Workers: c.deps.Workers, Log: c.deps.Logger}
	go c.enqueueLeftovers(ctx)
	return loop.Run(ctx, c.synced...)
}

// enqueueLeftovers queues the Endpoints whose Service is gone, once the
// caches have synced, so those deleted while no leader ran go too.
func (c *Controller) enqueueLeftovers(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	eps, err := c.endpoints.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ep := range eps {
		if _, err := c.services.Services(ep.Namespace).Get(ep.Name); apierrors.IsNotFound(err) {
			c.queue.Add(ep.Namespace + "/" + ep.Name)
		}
	}
}

// enqueuePodServices queues the Services whose selector matches the pod.
func (c *Controller) enqueuePodServices(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	svcs, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	set := labels.Set(pod.Labels)
	for _, svc := range svcs {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(set) {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

// sync makes the Endpoints of one Service what its pods say.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this loop made; nothing to retry
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteEndpoints(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// The user (or nobody) keeps these Endpoints.
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	subsets := Subsets(svc, pods)

	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: endpointsLabels(svc)}, Subsets: subsets}
	if cur == nil {
		if _, err := c.deps.Client.CoreV1().Endpoints(ns).Create(ctx, want, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create endpoints %s: the cache is behind: %w", key, err)
			}
			if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) && !apierrors.IsNotFound(err) {
				c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToCreateEndpoint", "Failed to create endpoint for service %s: %v", key, err)
			}
			return fmt.Errorf("create endpoints %s: %w", key, err)
		}
		return nil
	}
	if apiequality.Semantic.DeepEqual(cur.Subsets, subsets) && maps.Equal(cur.Labels, want.Labels) {
		return nil
	}
	next := cur.DeepCopy()
	next.Subsets, next.Labels = subsets, want.Labels
	if _, err := c.deps.Client.CoreV1().Endpoints(ns).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %s: %v", key, err)
		}
		return fmt.Errorf("update endpoints %s: %w", key, err)
	}
	return nil
}

func (c *Controller) deleteEndpoints(ctx context.Context, ns, name string) error {
	if _, err := c.endpoints.Endpoints(ns).Get(name); apierrors.IsNotFound(err) {
		return nil
	}
	err := c.deps.Client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete endpoints %s/%s: %w", ns, name, err)
	}
	return nil
}

// endpointsLabels are the Service's labels, plus the headless mark.
func endpointsLabels(svc *corev1.Service) map[string]string {
	out := maps.Clone(svc.Labels)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, headlessLabel)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[headlessLabel] = ""
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Subsets computes the endpoint subsets of svc from the pods its selector
// matches, in a stable order so an unchanged set compares equal.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	publishNotReady := svc.Spec.PublishNotReadyAddresses
	// Each address with the ports it serves, keyed by pod.
	type entry struct {
		addr  corev1.EndpointAddress
		ready bool
		ports []corev1.EndpointPort
	}
	var entries []*entry
	for _, pod := range pods {
		if !inEndpoints(pod, publishNotReady) {
			continue
		}
		e := &entry{addr: address(svc, pod), ready: publishNotReady || controller.IsPodReady(pod)}
		if len(svc.Spec.Ports) == 0 {
			// Only a headless Service may have no ports: its addresses
			// are listed without any.
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				continue
			}
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, ok := findPort(pod, sp)
			if !ok {
				continue
			}
			e.ports = append(e.ports, corev1.EndpointPort{Name: sp.Name, Port: num, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
		}
		if len(svc.Spec.Ports) > 0 && len(e.ports) == 0 {
			continue // the pod serves none of the Service's ports
		}
		sortPorts(e.ports)
		entries = append(entries, e)
	}
	// Group addresses by the set of ports they serve.
	bySet := map[string]*corev1.EndpointSubset{}
	var setKeys []string
	for _, e := range entries {
		k := portsKey(e.ports)
		ss, ok := bySet[k]
		if !ok {
			ss = &corev1.EndpointSubset{Ports: e.ports}
			bySet[k] = ss
			setKeys = append(setKeys, k)
		}
		if e.ready {
			ss.Addresses = append(ss.Addresses, e.addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, e.addr)
		}
	}
	sort.Strings(setKeys)
	var out []corev1.EndpointSubset
	for _, k := range setKeys {
		ss := bySet[k]
		sortAddresses(ss.Addresses)
		sortAddresses(ss.NotReadyAddresses)
		out = append(out, *ss)
	}
	return out
}

// inEndpoints reports whether a pod is listed at all: it has an IP, has not
// finished, and is not being deleted (unless the Service publishes
// not-ready addresses, which includes terminating pods).
func inEndpoints(pod *corev1.Pod, publishNotReady bool) bool {
	if pod.Status.PodIP == "" {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.DeletionTimestamp != nil && !publishNotReady {
		return false
	}
	return true
}

func address(svc *corev1.Service, pod *corev1.Pod) corev1.EndpointAddress {
	a := corev1.EndpointAddress{
		IP:        pod.Status.PodIP,
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		node := pod.Spec.NodeName
		a.NodeName = &node
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		a.Hostname = pod.Spec.Hostname
	}
	return a
}

// findPort resolves a Service port's targetPort on one pod: a number is
// used as it is, a name is looked up among the pod's container ports of
// the same protocol.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		proto := orTCP(sp.Protocol)
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && orTCP(p.Protocol) == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	}
	return sp.Port, true
}

func orTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func sortPorts(ps []corev1.EndpointPort) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		if ps[i].Port != ps[j].Port {
			return ps[i].Port < ps[j].Port
		}
		return ps[i].Protocol < ps[j].Protocol
	})
}

func portsKey(ps []corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Name + "=" + strconv.Itoa(int(p.Port)) + "/" + string(p.Protocol) + ";")
	}
	return b.String()
}

func sortAddresses(as []corev1.EndpointAddress) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].IP != as[j].IP {
			return as[i].IP < as[j].IP
		}
		return as[i].TargetRef.UID < as[j].TargetRef.UID
	})
}
