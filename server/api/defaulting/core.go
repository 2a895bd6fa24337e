package defaulting

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func defaultNamespace(ns *corev1.Namespace) {
	// A namespace without a phase is new: updates carry the stored status.
	// Only a new namespace gets the "kubernetes" finalizer, which makes the
	// namespace controller empty it before it disappears; re-adding it on
	// update would undo the controller removing it through /finalize, and
	// the namespace would never go away.
	if ns.Status.Phase == "" {
		if len(ns.Spec.Finalizers) == 0 {
			ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		}
		ns.Status.Phase = corev1.NamespaceActive
	}
	// The label lets namespace selectors pick a namespace by name. It is
	// always reset, not only when missing, so it can never disagree with
	// the name. A namespace without a name yet (generateName) gets it
	// later, when the server defaults again after naming it.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
}

func defaultNode(node *corev1.Node) {
	// A node that reports capacity but not allocatable can offer all of it.
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = node.Status.Capacity.DeepCopy()
	}
	defaultResourceList(node.Status.Capacity)
	defaultResourceList(node.Status.Allocatable)
}

func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		// A timeout means nothing without affinity; dropping it keeps the
		// stored object free of settings that have no effect.
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		if spec.SessionAffinityConfig == nil || spec.SessionAffinityConfig.ClientIP == nil ||
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{
					TimeoutSeconds: ptrTo(corev1.DefaultClientIPServiceAffinitySeconds),
				},
			}
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		// An unset targetPort means "the same number on the pod".
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	externallyReachable := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	if externallyReachable && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != corev1.ServiceTypeExternalName {
		spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = ptrTo(true)
	}
}

func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	// stringData is a write-only convenience: it is merged into data, where
	// it wins over an entry of the same key, and never stored itself, so
	// reads return exactly one copy of every value.
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func defaultReplicationController(rc *corev1.ReplicationController) {
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptrTo[int32](1)
	}
	if rc.Spec.Template == nil {
		return
	}
	// An RC without a selector selects the pods it makes, and an RC without
	// labels is labelled like them, as in Kubernetes. The maps are copied so
	// that editing one of them later does not silently edit the other.
	if labels := rc.Spec.Template.Labels; labels != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = maps.Clone(labels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = maps.Clone(labels)
		}
	}
	defaultPodTemplate(rc.Spec.Template, templateOptions)
}
