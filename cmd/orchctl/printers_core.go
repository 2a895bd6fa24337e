//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func podRow(p *corev1.Pod, now time.Time) (cells, wide []string) {
	ready := 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			ready++
		}
	}
	cells = []string{
		fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)),
		podStatus(p),
		podRestarts(p, now),
		age(p.CreationTimestamp, now),
	}
	return cells, []string{orNone(p.Status.PodIP), orNone(p.Spec.NodeName)}
}

// podStatus is the one word a person scanning `get pods` needs, chosen by
// kubectl's rules: a pod being deleted is Terminating; a pod still running
// init containers shows Init:<reason> or Init:<done>/<total>; otherwise the
// first container with a waiting or terminated reason (CrashLoopBackOff,
// ErrImagePull, Completed, ...) names it; otherwise the pod's phase.
func podStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for i, cs := range p.Status.InitContainerStatuses {
		st := cs.State
		switch {
		case st.Terminated != nil && st.Terminated.ExitCode == 0:
			continue
		case st.Terminated != nil:
			return "Init:" + terminatedReason(st.Terminated)
		case st.Waiting != nil && st.Waiting.Reason != "" && st.Waiting.Reason != "PodInitializing":
			return "Init:" + st.Waiting.Reason
		default:
			return fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
	}
	reason, running := "", false
	for _, cs := range p.Status.ContainerStatuses {
		var r string
		switch st := cs.State; {
		case st.Waiting != nil && st.Waiting.Reason != "":
			r = st.Waiting.Reason
		case st.Terminated != nil:
			r = terminatedReason(st.Terminated)
		case st.Running != nil && cs.Ready:
			running = true
		}
		if reason == "" {
			reason = r
		}
	}
	switch {
	case reason == "Completed" && running:
		// One container finished, others still serve.
		if podReady(p) {
			return "Running"
		}
		return "NotReady"
	case reason != "":
		return reason
	case p.Status.Reason != "":
		return p.Status.Reason
	case p.Status.Phase == "":
		return string(corev1.PodPending)
	}
	return string(p.Status.Phase)
}

func terminatedReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podRestarts counts container restarts, with how long ago the last one
// was when the pod says: "3 (2m ago)".
func podRestarts(p *corev1.Pod, now time.Time) string {
	n := int32(0)
	var last time.Time
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(last) {
			last = t.FinishedAt.Time
		}
	}
	if n == 0 || last.IsZero() {
		return strconv.Itoa(int(n))
	}
	return fmt.Sprintf("%d (%s ago)", n, age(metav1.NewTime(last), now))
}

func serviceRow(s *corev1.Service, now time.Time) (cells, wide []string) {
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	cells = []string{string(typ), orNone(s.Spec.ClusterIP), serviceExternalIP(s), servicePorts(s.Spec.Ports), age(s.CreationTimestamp, now)}
	return cells, []string{labels.FormatLabels(s.Spec.Selector)}
}

// serviceExternalIP is where the service is reachable from outside: its
// external IPs, its load balancer's ingress (<pending> until it has one),
// or its external name.
func serviceExternalIP(s *corev1.Service) string {
	ips := append([]string(nil), s.Spec.ExternalIPs...)
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return orNone(s.Spec.ExternalName)
	case corev1.ServiceTypeLoadBalancer:
		for _, in := range s.Status.LoadBalancer.Ingress {
			switch {
			case in.IP != "":
				ips = append(ips, in.IP)
			case in.Hostname != "":
				ips = append(ips, in.Hostname)
			}
		}
		if len(ips) == 0 {
			return "<pending>"
		}
	}
	return orNone(strings.Join(ips, ","))
}

// servicePorts is the PORT(S) cell: 80:30080/TCP,443/TCP.
func servicePorts(ports []corev1.ServicePort) string {
	var out []string
	for _, p := range ports {
		s := strconv.Itoa(int(p.Port))
		if p.NodePort != 0 {
			s += ":" + strconv.Itoa(int(p.NodePort))
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, s+"/"+string(proto))
	}
	return orNone(strings.Join(out, ","))
}

// maxEndpoints is how many addresses the ENDPOINTS cell lists.
const maxEndpoints = 3

func endpointsRow(e *corev1.Endpoints, now time.Time) (cells, wide []string) {
	return []string{endpointsCell(e), age(e.CreationTimestamp, now)}, nil
}

// endpointsCell lists the first few ready addresses: ip:port,... + N more...
func endpointsCell(e *corev1.Endpoints) string {
	var all []string
	for _, ss := range e.Subsets {
		for _, a := range ss.Addresses {
			if len(ss.Ports) == 0 {
				all = append(all, a.IP)
				continue
			}
			for _, p := range ss.Ports {
				all = append(all, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	cell := strings.Join(all, ",")
	if len(all) > maxEndpoints {
		cell = strings.Join(all[:maxEndpoints], ",") + fmt.Sprintf(" + %d more...", len(all)-maxEndpoints)
	}
	return orNone(cell)
}

func configMapRow(c *corev1.ConfigMap, now time.Time) (cells, wide []string) {
	return []string{strconv.Itoa(len(c.Data) + len(c.BinaryData)), age(c.CreationTimestamp, now)}, nil
}

func secretRow(s *corev1.Secret, now time.Time) (cells, wide []string) {
	n := len(s.Data)
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			n++
		}
	}
	return []string{string(s.Type), strconv.Itoa(n), age(s.CreationTimestamp, now)}, nil
}

func namespaceRow(n *corev1.Namespace, now time.Time) (cells, wide []string) {
	phase := n.Status.Phase
	if phase == "" {
		phase = corev1.NamespaceActive
	}
	return []string{string(phase), age(n.CreationTimestamp, now)}, nil
}

func nodeRow(n *corev1.Node, now time.Time) (cells, wide []string) {
	info := n.Status.NodeInfo
	cells = []string{nodeStatus(n), nodeRoles(n), age(n.CreationTimestamp, now), orNone(info.KubeletVersion),
		orNone(nodeAddress(n, corev1.NodeInternalIP))}
	wide = []string{orNone(nodeAddress(n, corev1.NodeExternalIP)), unknownIfEmpty(info.OSImage),
		unknownIfEmpty(info.KernelVersion), unknownIfEmpty(info.ContainerRuntimeVersion)}
	return cells, wide
}

// nodeAddress is the node's first address of a type, "" without one.
func nodeAddress(n *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return ""
}

func unknownIfEmpty(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// nodeStatus is Ready, NotReady or Unknown from the Ready condition, plus
// SchedulingDisabled for a cordoned node.
func nodeStatus(n *corev1.Node) string {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			status = "Ready"
		case corev1.ConditionFalse:
			status = "NotReady"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// nodeRoles reads the node-role.kubernetes.io/<role> labels.
func nodeRoles(n *corev1.Node) string {
	const prefix = "node-role.kubernetes.io/"
	var roles []string
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, prefix) && len(k) > len(prefix):
			roles = append(roles, strings.TrimPrefix(k, prefix))
		case k == "kubernetes.io/role" && v != "":
			roles = append(roles, v)
		}
	}
	sort.Strings(roles)
	return orNone(strings.Join(roles, ","))
}

func eventRow(e *corev1.Event, now time.Time) (cells, wide []string) {
	obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
	return []string{eventLastSeen(e, now), e.Type, e.Reason, obj, strings.TrimSpace(e.Message)}, nil
}

func eventLastSeen(e *corev1.Event, now time.Time) string {
	return age(metav1.NewTime(lastSeen(e)), now)
}
