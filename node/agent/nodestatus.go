package agent

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"orch.dev/orch/internal/version"
	rt "orch.dev/orch/node/runtime"
)

// Well-known node labels the agent sets.
const (
	labelHostname = "kubernetes.io/hostname"
	labelOS       = "kubernetes.io/os"
	labelArch     = "kubernetes.io/arch"
)

func (a *Agent) nodeLabels(info rt.Info) map[string]string {
	l := map[string]string{labelHostname: a.cfg.Name, labelOS: runtime.GOOS, labelArch: info.Architecture}
	if l[labelArch] == "" {
		l[labelArch] = runtime.GOARCH
	}
	maps.Copy(l, a.cfg.Labels)
	return l
}

func (a *Agent) endpointPort() int32 {
	_, p, err := net.SplitHostPort(a.cfg.EndpointAddr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// nodeStatus is the status the agent reports, keeping the transition time
// of a Ready condition that did not change.
func (a *Agent) nodeStatus(info rt.Info, old corev1.NodeStatus) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(info.CPUs), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(info.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
	}
	now := metav1.NewTime(a.now())
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "orch agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	for _, c := range old.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Conditions:  []corev1.NodeCondition{ready},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.Name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.endpointPort()}},
		NodeInfo: corev1.NodeSystemInfo{
			KernelVersion: info.Kernel, OSImage: info.OSImage, ContainerRuntimeVersion: info.RuntimeVersion,
			KubeletVersion: version.GitVersion(), OperatingSystem: runtime.GOOS, Architecture: info.Architecture,
		},
	}
}

// register creates the Node, or brings an existing one's labels and
// status up to date. Taints are set only when the Node is created, as
// --register-with-taints does in Kubernetes: later changes belong to the
// cluster's operators.
func (a *Agent) register(ctx context.Context, info rt.Info) error {
	nodes := a.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Labels: a.nodeLabels(info)},
			Spec:       corev1.NodeSpec{Taints: a.cfg.Taints},
			Status:     a.nodeStatus(info, corev1.NodeStatus{}),
		}
		_, err = nodes.Create(ctx, node, metav1.CreateOptions{})
		if err == nil {
			a.log.Info("registered the node")
		}
		return err
	}
	if err != nil {
		return err
	}
	want := a.nodeLabels(info)
	changed := false
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for k, v := range want {
		if node.Labels[k] != v {
			node.Labels[k] = v
			changed = true
		}
	}
	if changed {
		if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return a.updateNodeStatus(ctx, info, node)
}

func (a *Agent) updateNodeStatus(ctx context.Context, info rt.Info, node *corev1.Node) error {
	if node == nil {
		var err error
		if node, err = a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
	node.Status = a.nodeStatus(info, node.Status)
	_, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// statusLoop keeps the Node's status current: every StatusInterval, and
// at once (at most every second) when the Node stops saying Ready while
// this agent runs, as when the leader marked it Unknown during a gossip
// hiccup or before it saw the agent rejoin.
func (a *Agent) statusLoop(ctx context.Context, info rt.Info) {
	notReady := make(chan struct{}, 1)
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + a.cfg.Name
	}))
	check := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && !nodeReady(n) {
			select {
			case notReady <- struct{}{}:
			default:
			}
		}
	}
	_, _ = factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{ // the registration handle is not needed
		AddFunc: check, UpdateFunc: func(_, o any) { check(o) },
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	t := time.NewTicker(a.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notReady:
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		if err := a.updateNodeStatus(ctx, info, nil); err != nil {
			if apierrors.IsNotFound(err) {
				// Deleted by an operator: register again.
				err = a.register(ctx, info)
			}
			if err != nil {
				a.log.Warn("update node status", "err", err)
			}
		}
	}
}

// waitPodCIDR waits for the leader to give this node its pod subnet, then
// makes the engine network for it.
func (a *Agent) waitPodCIDR(ctx context.Context) error {
	for {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			a.podCIDR = node.Spec.PodCIDR
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no pod subnet assigned to this node: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	gw, err := gatewayOf(a.podCIDR)
	if err != nil {
		return fmt.Errorf("pod subnet %s: %w", a.podCIDR, err)
	}
	a.network = "orch-" + a.cfg.Name
	if err := a.rt.EnsureNetwork(ctx, a.network, a.podCIDR, gw); err != nil {
		return err
	}
	a.log.Info("pod network ready", "network", a.network, "subnet", a.podCIDR)
	return nil
}

// gatewayOf is a subnet's first host address, the bridge's by convention.
func gatewayOf(subnet string) (string, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return "", err
	}
	return p.Masked().Addr().Next().String(), nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
