package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The node port range orch allocates from, the Kubernetes default.
const (
	minNodePort = 30000
	maxNodePort = 32767
)

// maxClientIPAffinitySeconds caps session affinity at a day, as Kubernetes
// does, so the proxy's affinity table cannot grow without bound.
const maxClientIPAffinitySeconds int32 = 86400

var (
	serviceTypes = []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName,
	}
	sessionAffinities       = []corev1.ServiceAffinity{corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP}
	externalTrafficPolicies = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	internalTrafficPolicies = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	ipFamilyPolicies        = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
	ipFamilies              = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
)

// validateServiceCreate checks a Service. Its name is a DNS-1035 label
// because it becomes a DNS name and an environment variable prefix.
func validateServiceCreate(svc *corev1.Service) field.ErrorList {
	errs := validateMetaCreate(&svc.ObjectMeta, true, nameIs1035Label)
	return append(errs, validateServiceSpec(&svc.Spec)...)
}

// validateServiceUpdate keeps an allocated cluster IP: clients and DNS
// caches hold on to it. Switching to ExternalName releases it.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	if !changed(svc.Spec, old.Spec) {
		return errs
	}
	errs = append(errs, validateServiceSpec(&svc.Spec)...)
	if old.Spec.ClusterIP != "" && svc.Spec.ClusterIP != old.Spec.ClusterIP && svc.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Invalid(specPath.Child("clusterIP"), svc.Spec.ClusterIP, fmt.Sprintf("field is immutable: keep %q, or delete and recreate the Service", old.Spec.ClusterIP)))
	}
	return errs
}

func validateServiceSpec(spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, oneOf(spec.Type, specPath.Child("type"), serviceTypes...)...)
	headless := spec.ClusterIP == corev1.ClusterIPNone
	externalName := spec.Type == corev1.ServiceTypeExternalName
	external := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer

	if len(spec.Ports) == 0 && !headless && !externalName {
		errs = append(errs, field.Required(specPath.Child("ports"), "at least one port; only headless (clusterIP: None) and ExternalName services may have none"))
	}
	errs = append(errs, validateServicePorts(spec.Ports, external, spec.Type)...)

	cp := specPath.Child("clusterIP")
	switch {
	case externalName && spec.ClusterIP != "":
		errs = append(errs, field.Forbidden(cp, "may not be set for ExternalName services"))
	case spec.ClusterIP != "" && !headless:
		errs = append(errs, validateIP(spec.ClusterIP, cp)...)
	case headless && external:
		errs = append(errs, field.Invalid(cp, spec.ClusterIP, "may not be 'None' for NodePort or LoadBalancer services"))
	}
	if len(spec.ClusterIPs) > 0 {
		ipsp := specPath.Child("clusterIPs")
		if externalName {
			errs = append(errs, field.Forbidden(ipsp, "may not be set for ExternalName services"))
		}
		if spec.ClusterIP != "" && spec.ClusterIPs[0] != spec.ClusterIP {
			errs = append(errs, field.Invalid(ipsp.Index(0), spec.ClusterIPs[0], "must match spec.clusterIP"))
		}
		if len(spec.ClusterIPs) > 2 {
			errs = append(errs, field.TooMany(ipsp, len(spec.ClusterIPs), 2))
		}
		for i, ip := range spec.ClusterIPs {
			if i == 0 && ip == corev1.ClusterIPNone {
				continue
			}
			errs = append(errs, validateIP(ip, ipsp.Index(i))...)
		}
	}

	if externalName {
		ep := specPath.Child("externalName")
		// A trailing dot marks the name as fully qualified.
		name := strings.TrimSuffix(spec.ExternalName, ".")
		if name == "" {
			errs = append(errs, field.Required(ep, "the DNS name this Service is an alias for, such as db.example.com"))
		} else {
			errs = append(errs, invalidEach(ep, spec.ExternalName, utilvalidation.IsDNS1123Subdomain(name))...)
		}
	}

	errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)

	errs = append(errs, oneOf(spec.SessionAffinity, specPath.Child("sessionAffinity"), sessionAffinities...)...)
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		tp := specPath.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds")
		if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(tp, t, fmt.Sprintf("must be greater than 0 and at most %d (a day)", maxClientIPAffinitySeconds)))
		}
	}

	if etp := spec.ExternalTrafficPolicy; etp != "" {
		ep := specPath.Child("externalTrafficPolicy")
		errs = append(errs, oneOf(etp, ep, externalTrafficPolicies...)...)
		if etp == corev1.ServiceExternalTrafficPolicyLocal && !external {
			errs = append(errs, field.Invalid(ep, etp, "may only be Local when type is NodePort or LoadBalancer"))
		}
	}
	if itp := spec.InternalTrafficPolicy; itp != nil {
		errs = append(errs, oneOf(*itp, specPath.Child("internalTrafficPolicy"), internalTrafficPolicies...)...)
	}
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, validateIP(ip, specPath.Child("externalIPs").Index(i))...)
	}
	if pol := spec.IPFamilyPolicy; pol != nil {
		errs = append(errs, oneOf(*pol, specPath.Child("ipFamilyPolicy"), ipFamilyPolicies...)...)
	}
	fp := specPath.Child("ipFamilies")
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.TooMany(fp, len(spec.IPFamilies), 2))
	}
	seenFamilies := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		errs = append(errs, oneOf(f, fp.Index(i), ipFamilies...)...)
		if seenFamilies[f] {
			errs = append(errs, field.Duplicate(fp.Index(i), f))
		}
		seenFamilies[f] = true
	}
	for i, cidr := range spec.LoadBalancerSourceRanges {
		errs = append(errs, validateCIDR(strings.TrimSpace(cidr), specPath.Child("loadBalancerSourceRanges").Index(i))...)
	}
	return errs
}

// validateServicePorts checks the ports. With more than one port each needs
// a name, because Endpoints and SRV records tell them apart by name.
func validateServicePorts(ports []corev1.ServicePort, external bool, svcType corev1.ServiceType) field.ErrorList {
	var errs field.ErrorList
	requireName := len(ports) > 1
	names := map[string]bool{}
	portProtocols := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, port := range ports {
		pp := specPath.Child("ports").Index(i)
		switch {
		case port.Name == "" && requireName:
			errs = append(errs, field.Required(pp.Child("name"), "every port needs a name when a Service has more than one"))
		case port.Name != "":
			errs = append(errs, invalidEach(pp.Child("name"), port.Name, utilvalidation.IsDNS1123Label(port.Name))...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		errs = append(errs, portNumber(port.Port, pp.Child("port"))...)
		errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
		key := fmt.Sprintf("%d/%s", port.Port, port.Protocol)
		if portProtocols[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		portProtocols[key] = true
		// A targetPort defaulted from port is checked as port already.
		if port.TargetPort != intstr.FromInt32(port.Port) {
			errs = append(errs, portNumberOrName(port.TargetPort, pp.Child("targetPort"))...)
		}

		if port.NodePort != 0 {
			np := pp.Child("nodePort")
			switch {
			case !external:
				errs = append(errs, field.Forbidden(np, fmt.Sprintf("may not be used when `type` is '%s'; only NodePort and LoadBalancer services have node ports", svcType)))
			case port.NodePort < minNodePort || port.NodePort > maxNodePort:
				errs = append(errs, field.Invalid(np, port.NodePort, fmt.Sprintf("must be in the node port range %d-%d, or be left out to have one allocated", minNodePort, maxNodePort)))
			}
			key := fmt.Sprintf("%d/%s", port.NodePort, port.Protocol)
			if nodePorts[key] {
				errs = append(errs, field.Duplicate(np, key))
			}
			nodePorts[key] = true
		}
	}
	return errs
}
