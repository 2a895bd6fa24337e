//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package validation

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateEndpointsCreate(ep *corev1.Endpoints) field.ErrorList {
	errs := validateMetaCreate(&ep.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateEndpointSubsets(ep.Subsets)...)
}

func validateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	errs := validateMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta)
	if changed(ep.Subsets, old.Subsets) {
		errs = append(errs, validateEndpointSubsets(ep.Subsets)...)
	}
	return errs
}

func validateEndpointSubsets(subsets []corev1.EndpointSubset) field.ErrorList {
	var errs field.ErrorList
	for i := range subsets {
		ss := &subsets[i]
		sp := field.NewPath("subsets").Index(i)
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], sp.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], sp.Child("notReadyAddresses").Index(j))...)
		}
		requireName := len(ss.Ports) > 1
		names := map[string]bool{}
		for j, port := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			switch {
			case port.Name == "" && requireName:
				errs = append(errs, field.Required(pp.Child("name"), "every port needs a name when there is more than one"))
			case port.Name != "":
				errs = append(errs, invalidEach(pp.Child("name"), port.Name, utilvalidation.IsDNS1123Label(port.Name))...)
				if names[port.Name] {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				names[port.Name] = true
			}
			errs = append(errs, portNumber(port.Port, pp.Child("port"))...)
			errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
		}
	}
	return errs
}

// validateEndpointAddress checks an endpoint. Loopback, link-local,
// multicast and unspecified addresses are refused: the service proxy on a
// node would send traffic for the Service to that node itself.
func validateEndpointAddress(a *corev1.EndpointAddress, p *field.Path) field.ErrorList {
	ipPath := p.Child("ip")
	errs := validateIP(a.IP, ipPath)
	if len(errs) == 0 {
		if addr, err := netip.ParseAddr(a.IP); err == nil {
			addr = addr.Unmap()
			switch {
			case addr.IsUnspecified():
				errs = append(errs, field.Invalid(ipPath, a.IP, "may not be unspecified (0.0.0.0 or ::)"))
			case addr.IsLoopback():
				errs = append(errs, field.Invalid(ipPath, a.IP, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
			case addr.IsLinkLocalUnicast():
				errs = append(errs, field.Invalid(ipPath, a.IP, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
			case addr.IsLinkLocalMulticast(), addr.IsMulticast():
				errs = append(errs, field.Invalid(ipPath, a.IP, "may not be a multicast address"))
			}
		}
	}
	if a.Hostname != "" {
		errs = append(errs, dnsLabel(a.Hostname, p.Child("hostname"))...)
	}
	if a.NodeName != nil && *a.NodeName != "" {
		errs = append(errs, dnsSubdomain(*a.NodeName, p.Child("nodeName"))...)
	}
	return errs
}
