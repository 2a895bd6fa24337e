//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

func (d *describer) pod(p *corev1.Pod) {
	d.kv(0, "Node", orNone(p.Spec.NodeName))
	d.kv(0, "IP", orNone(p.Status.PodIP))
	d.kv(0, "Status", podStatus(p))
	if p.Status.Reason != "" {
		d.kv(0, "Reason", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.kv(0, "Message", p.Status.Message)
	}
	if p.Status.StartTime != nil {
		d.kv(0, "Started", d.when(*p.Status.StartTime))
	}
	if len(p.Spec.InitContainers) > 0 {
		d.containers(0, "Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	d.containers(0, "Containers", p.Spec.Containers, statusesOrEmpty(p.Status.ContainerStatuses))
	if len(p.Status.Conditions) > 0 {
		d.head(0, "Conditions")
		d.row(1, "Type", "Status")
		for _, c := range p.Status.Conditions {
			d.row(1, string(c.Type), string(c.Status))
		}
	}
	if len(p.Spec.NodeSelector) > 0 {
		d.kv(0, "Node-Selectors", labels.FormatLabels(p.Spec.NodeSelector))
	}
}

// statusesOrEmpty makes a pod without container statuses still show a
// State line per container, unlike a pod template.
func statusesOrEmpty(s []corev1.ContainerStatus) []corev1.ContainerStatus {
	if s == nil {
		return []corev1.ContainerStatus{}
	}
	return s
}

// containers describes containers; statuses is nil for pod templates,
// which have no state to show.
func (d *describer) containers(level int, title string, cs []corev1.Container, statuses []corev1.ContainerStatus) {
	if len(cs) == 0 {
		d.kv(level, title, "<none>")
		return
	}
	d.head(level, title)
	byName := map[string]*corev1.ContainerStatus{}
	for i := range statuses {
		byName[statuses[i].Name] = &statuses[i]
	}
	for _, c := range cs {
		d.head(level+1, c.Name)
		l := level + 2
		d.kv(l, "Image", c.Image)
		var ports []string
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, proto))
		}
		d.kv(l, "Ports", orNone(strings.Join(ports, ", ")))
		if len(c.Command) > 0 {
			d.list(l, "Command", c.Command)
		}
		if len(c.Args) > 0 {
			d.list(l, "Args", c.Args)
		}
		if statuses != nil {
			st := byName[c.Name]
			if st == nil {
				d.kv(l, "State", "Waiting")
			} else {
				d.containerState(l, "State", st.State)
				if st.LastTerminationState != (corev1.ContainerState{}) {
					d.containerState(l, "Last State", st.LastTerminationState)
				}
				d.kv(l, "Ready", conditionWord(st.Ready))
				d.kv(l, "Restart Count", strconv.Itoa(int(st.RestartCount)))
			}
		}
		d.describeProbes(l, &c)
		var env []string
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil:
				env = append(env, e.Name+" (set from "+envSource(e.ValueFrom)+")")
			default:
				env = append(env, e.Name+"="+e.Value)
			}
		}
		if len(env) > 0 {
			d.list(l, "Environment", env)
		}
	}
}

func envSource(s *corev1.EnvVarSource) string {
	switch {
	case s.SecretKeyRef != nil:
		return fmt.Sprintf("secret %s key %s", s.SecretKeyRef.Name, s.SecretKeyRef.Key)
	case s.ConfigMapKeyRef != nil:
		return fmt.Sprintf("configmap %s key %s", s.ConfigMapKeyRef.Name, s.ConfigMapKeyRef.Key)
	case s.FieldRef != nil:
		return "field " + s.FieldRef.FieldPath
	case s.ResourceFieldRef != nil:
		return "resource " + s.ResourceFieldRef.Resource
	}
	return "a source"
}

func (d *describer) containerState(level int, key string, st corev1.ContainerState) {
	switch {
	case st.Running != nil:
		d.kv(level, key, "Running")
		d.kv(level+1, "Started", d.when(st.Running.StartedAt))
	case st.Waiting != nil:
		d.kv(level, key, "Waiting")
		if st.Waiting.Reason != "" {
			d.kv(level+1, "Reason", st.Waiting.Reason)
		}
		if st.Waiting.Message != "" {
			d.kv(level+1, "Message", st.Waiting.Message)
		}
	case st.Terminated != nil:
		t := st.Terminated
		d.kv(level, key, "Terminated")
		d.kv(level+1, "Reason", terminatedReason(t))
		d.kv(level+1, "Exit Code", strconv.Itoa(int(t.ExitCode)))
		if !t.StartedAt.IsZero() {
			d.kv(level+1, "Started", d.when(t.StartedAt))
		}
		if !t.FinishedAt.IsZero() {
			d.kv(level+1, "Finished", d.when(t.FinishedAt))
		}
	default:
		d.kv(level, key, "Waiting")
	}
}

func (d *describer) service(s *corev1.Service, ep *corev1.Endpoints) {
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	d.kv(0, "Type", string(typ))
	d.kv(0, "IP", orNone(s.Spec.ClusterIP))
	if ext := serviceExternalIP(s); ext != "<none>" {
		d.kv(0, "External", ext)
	}
	for _, p := range s.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		d.kv(0, "Port", strings.TrimSpace(fmt.Sprintf("%s %d/%s", p.Name, p.Port, proto)))
		target := p.TargetPort.String()
		if target == "0" || target == "" {
			target = strconv.Itoa(int(p.Port))
		}
		d.kv(0, "TargetPort", target+"/"+string(proto))
		if p.NodePort != 0 {
			d.kv(0, "NodePort", fmt.Sprintf("%d/%s", p.NodePort, proto))
		}
	}
	d.kv(0, "Selector", labels.FormatLabels(s.Spec.Selector))
	endpoints := "<none>"
	if ep != nil {
		endpoints = endpointsCell(ep)
	}
	d.kv(0, "Endpoints", endpoints)
	if s.Spec.SessionAffinity != "" {
		d.kv(0, "Session Affinity", string(s.Spec.SessionAffinity))
	}
}

func (d *describer) secret(s *corev1.Secret) {
	d.kv(0, "Type", string(s.Type))
	if len(s.Data) == 0 {
		d.kv(0, "Data", "<none>")
		return
	}
	d.head(0, "Data")
	for _, k := range sortedKeys(s.Data) {
		d.kv(1, k, fmt.Sprintf("%d bytes", len(s.Data[k])))
	}
}

func (d *describer) configMap(c *corev1.ConfigMap) {
	if len(c.Data) == 0 && len(c.BinaryData) == 0 {
		d.kv(0, "Data", "<none>")
		return
	}
	d.head(0, "Data")
	for _, k := range sortedKeys(c.Data) {
		d.head(1, k)
		d.text(2, c.Data[k])
	}
	for _, k := range sortedKeys(c.BinaryData) {
		d.kv(1, k, fmt.Sprintf("%d bytes of binary data", len(c.BinaryData[k])))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (d *describer) node(n *corev1.Node) {
	d.kv(0, "Roles", nodeRoles(n))
	d.kv(0, "Status", nodeStatus(n))
	d.kv(0, "Unschedulable", strconv.FormatBool(n.Spec.Unschedulable))
	var taints []string
	for _, t := range n.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		taints = append(taints, s+":"+string(t.Effect))
	}
	d.list(0, "Taints", taints)
	if len(n.Status.Conditions) > 0 {
		d.head(0, "Conditions")
		d.row(1, "Type", "Status", "Last Heartbeat", "Reason", "Message")
		for _, c := range n.Status.Conditions {
			d.row(1, string(c.Type), string(c.Status), age(c.LastHeartbeatTime, d.now), c.Reason, c.Message)
		}
	}
	var addrs []string
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, string(a.Type)+": "+a.Address)
	}
	d.list(0, "Addresses", addrs)
	info := n.Status.NodeInfo
	d.head(0, "System Info")
	d.kv(1, "OS Image", unknownIfEmpty(info.OSImage))
	d.kv(1, "Kernel Version", unknownIfEmpty(info.KernelVersion))
	d.kv(1, "Architecture", unknownIfEmpty(info.Architecture))
	d.kv(1, "Container Runtime", unknownIfEmpty(info.ContainerRuntimeVersion))
	d.kv(1, "Kubelet Version", unknownIfEmpty(info.KubeletVersion))
	d.kv(0, "PodCIDR", orNone(n.Spec.PodCIDR))
}

// workloadSummary gives the lines that matter for a kind that runs pods,
// and its pod template; ok is false for other kinds.
func workloadSummary(obj runtime.Object, now time.Time) (lines [][2]string, tmpl *corev1.PodTemplateSpec, ok bool) {
	add := func(k, v string) { lines = append(lines, [2]string{k, v}) }
	switch o := obj.(type) {
	case *appsv1.Deployment:
		st := o.Status
		add("Selector", selectorCell(o.Spec.Selector))
		add("Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
			replicas(o.Spec.Replicas), st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas))
		add("Strategy", orNone(string(o.Spec.Strategy.Type)))
		return lines, &o.Spec.Template, true
	case *appsv1.ReplicaSet:
		add("Selector", selectorCell(o.Spec.Selector))
		add("Replicas", fmt.Sprintf("%d current / %d desired", o.Status.Replicas, replicas(o.Spec.Replicas)))
		add("Ready", itoa(o.Status.ReadyReplicas))
		return lines, &o.Spec.Template, true
	case *corev1.ReplicationController:
		add("Selector", labels.FormatLabels(o.Spec.Selector))
		add("Replicas", fmt.Sprintf("%d current / %d desired", o.Status.Replicas, replicas(o.Spec.Replicas)))
		add("Ready", itoa(o.Status.ReadyReplicas))
		return lines, o.Spec.Template, true
	case *appsv1.DaemonSet:
		st := o.Status
		add("Selector", selectorCell(o.Spec.Selector))
		add("Node-Selector", labels.FormatLabels(o.Spec.Template.Spec.NodeSelector))
		add("Nodes", fmt.Sprintf("%d desired | %d current | %d ready | %d up-to-date | %d available | %d misscheduled",
			st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady, st.UpdatedNumberScheduled, st.NumberAvailable, st.NumberMisscheduled))
		return lines, &o.Spec.Template, true
	case *appsv1.StatefulSet:
		add("Selector", selectorCell(o.Spec.Selector))
		add("Service Name", orNone(o.Spec.ServiceName))
		add("Replicas", fmt.Sprintf("%d desired | %d total | %d ready", replicas(o.Spec.Replicas), o.Status.Replicas, o.Status.ReadyReplicas))
		add("Update Strategy", orNone(string(o.Spec.UpdateStrategy.Type)))
		return lines, &o.Spec.Template, true
	case *batchv1.Job:
		add("Selector", selectorCell(o.Spec.Selector))
		add("Parallelism", intPtr(o.Spec.Parallelism))
		add("Completions", intPtr(o.Spec.Completions))
		add("Status", jobStatus(o))
		if o.Status.StartTime != nil {
			add("Start Time", o.Status.StartTime.Format(time.RFC1123Z))
		}
		if o.Status.CompletionTime != nil {
			add("Completed At", o.Status.CompletionTime.Format(time.RFC1123Z))
		}
		if d := jobDuration(o, now); d != "" {
			add("Duration", d)
		}
		add("Pods Statuses", fmt.Sprintf("%d Active / %d Succeeded / %d Failed", o.Status.Active, o.Status.Succeeded, o.Status.Failed))
		return lines, &o.Spec.Template, true
	case *batchv1.CronJob:
		row, _ := cronJobRow(o, now)
		add("Schedule", o.Spec.Schedule)
		add("Time Zone", row[1])
		add("Concurrency Policy", orNone(string(o.Spec.ConcurrencyPolicy)))
		add("Suspend", row[2])
		last := "<unset>"
		if t := o.Status.LastScheduleTime; t != nil {
			last = fmt.Sprintf("%s (%s ago)", t.Format(time.RFC1123Z), duration.HumanDuration(now.Sub(t.Time)))
		}
		add("Last Schedule Time", last)
		var active []string
		for _, a := range o.Status.Active {
			active = append(active, a.Name)
		}
		add("Active Jobs", orNone(strings.Join(active, ", ")))
		return lines, &o.Spec.JobTemplate.Spec.Template, true
	}
	return nil, nil, false
}

func intPtr(p *int32) string {
	if p == nil {
		return "<unset>"
	}
	return itoa(*p)
}

// conditionWord spells a boolean as conditions do: True or False.
func conditionWord(b bool) string {
	if b {
		return string(corev1.ConditionTrue)
	}
	return string(corev1.ConditionFalse)
}
