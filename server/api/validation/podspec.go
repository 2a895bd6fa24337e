package validation

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podSpecOptions carries what the owner of a pod spec adds to the rules.
type podSpecOptions struct {
	// restartPolicies are the pod restartPolicy values the owner accepts:
	// Always for long-running controllers, OnFailure or Never for Jobs.
	restartPolicies []corev1.RestartPolicy
	// claimTemplates are volume names a StatefulSet provides through
	// volumeClaimTemplates, which containers may mount without a volume.
	claimTemplates map[string]bool
	// controller is true for templates of long-running controllers, where a
	// pod deadline would make every pod fail after a while, in a loop.
	controller bool
}

var (
	allRestartPolicies       = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	containerRestartPolicies = []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways, corev1.ContainerRestartPolicyOnFailure, corev1.ContainerRestartPolicyNever}
)

// validatePodTemplate checks a controller's pod template: its labels and
// annotations (the pods will carry them) and its spec.
func validatePodTemplate(t *corev1.PodTemplateSpec, p *field.Path, opts podSpecOptions) field.ErrorList {
	var errs field.ErrorList
	mp := p.Child("metadata")
	errs = append(errs, metav1validation.ValidateLabels(t.Labels, mp.Child("labels"))...)
	errs = append(errs, validateAnnotations(t.Annotations, mp.Child("annotations"))...)
	errs = append(errs, validatePodSpec(&t.Spec, p.Child("spec"), opts)...)
	return errs
}

// validatePodSpec checks what users most often get wrong in a pod spec, so
// the mistake surfaces at apply time rather than as a pod that never runs.
func validatePodSpec(spec *corev1.PodSpec, p *field.Path, opts podSpecOptions) field.ErrorList {
	var errs field.ErrorList
	volumes, volErrs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, volErrs...)
	for name := range opts.claimTemplates {
		volumes[name] = true
	}

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), "must have at least one container"))
	}
	names := map[string]bool{}
	// Init containers run one at a time before the others, so their host
	// ports only conflict among themselves.
	initHostPorts, hostPorts := map[string]bool{}, map[string]bool{}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		cp := p.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, cp, names, volumes, spec.HostNetwork)...)
		errs = append(errs, validateHostPortConflicts(c, cp, initHostPorts)...)
		errs = append(errs, validateInitContainerExtras(c, cp)...)
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cp := p.Child("containers").Index(i)
		errs = append(errs, validateContainer(c, cp, names, volumes, spec.HostNetwork)...)
		errs = append(errs, validateHostPortConflicts(c, cp, hostPorts)...)
		errs = append(errs, validateProbe(c.LivenessProbe, cp.Child("livenessProbe"), true)...)
		errs = append(errs, validateProbe(c.ReadinessProbe, cp.Child("readinessProbe"), false)...)
		errs = append(errs, validateProbe(c.StartupProbe, cp.Child("startupProbe"), true)...)
		errs = append(errs, validateLifecycle(c.Lifecycle, cp.Child("lifecycle"))...)
		if c.RestartPolicy != nil {
			errs = append(errs, oneOf(*c.RestartPolicy, cp.Child("restartPolicy"), containerRestartPolicies...)...)
		}
	}

	policies := opts.restartPolicies
	if len(policies) == 0 {
		policies = allRestartPolicies
	}
	errs = append(errs, oneOf(spec.RestartPolicy, p.Child("restartPolicy"), policies...)...)
	errs = append(errs, validateDNS(spec, p)...)
	if spec.TerminationGracePeriodSeconds != nil {
		errs = append(errs, nonNegative(*spec.TerminationGracePeriodSeconds, p.Child("terminationGracePeriodSeconds"))...)
	}
	if opts.controller && spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(p.Child("activeDeadlineSeconds"), "may not be set in the template of a controller that keeps pods running: every pod would be killed after the deadline and replaced, in a loop"))
	} else {
		errs = append(errs, positivePtr64(spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, p.Child("tolerations"))...)
	errs = append(errs, validateAffinity(spec.Affinity, p.Child("affinity"))...)
	if spec.NodeName != "" {
		errs = append(errs, invalidEach(p.Child("nodeName"), spec.NodeName, utilvalidation.IsDNS1123Subdomain(spec.NodeName))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, dnsLabel(spec.Hostname, p.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, dnsLabel(spec.Subdomain, p.Child("subdomain"))...)
	}
	if spec.SchedulerName != "" {
		errs = append(errs, dnsSubdomain(spec.SchedulerName, p.Child("schedulerName"))...)
	}
	if spec.ServiceAccountName != "" {
		errs = append(errs, dnsSubdomain(spec.ServiceAccountName, p.Child("serviceAccountName"))...)
	}
	for i, s := range spec.ImagePullSecrets {
		if s.Name == "" {
			errs = append(errs, field.Required(p.Child("imagePullSecrets").Index(i).Child("name"), "the name of a Secret in the pod's namespace"))
		}
	}
	for i, ha := range spec.HostAliases {
		hp := p.Child("hostAliases").Index(i)
		errs = append(errs, validateIP(ha.IP, hp.Child("ip"))...)
		for j, h := range ha.Hostnames {
			errs = append(errs, dnsSubdomain(h, hp.Child("hostnames").Index(j))...)
		}
	}
	if sc := spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		errs = append(errs, invalidEach(p.Child("securityContext", "runAsUser"), *sc.RunAsUser, utilvalidation.IsValidUserID(*sc.RunAsUser))...)
	}
	return errs
}

// validateContainer checks one container; names collects the container
// names seen so far in the pod, which must be unique across init and
// regular containers because logs, exec and status address them by name.
func validateContainer(c *corev1.Container, p *field.Path, names, volumes map[string]bool, hostNetwork bool) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, dnsLabel(c.Name, p.Child("name"))...)
		if names[c.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names[c.Name] = true
	}
	errs = append(errs, validateImage(c.Image, p.Child("image"))...)
	errs = append(errs, oneOf(c.ImagePullPolicy, p.Child("imagePullPolicy"), corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, oneOf(c.TerminationMessagePolicy, p.Child("terminationMessagePolicy"), corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	errs = append(errs, validateContainerPorts(c.Ports, p.Child("ports"), hostNetwork)...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, p.Child("volumeMounts"), volumes)...)
	errs = append(errs, validateSecurityContext(c.SecurityContext, p.Child("securityContext"))...)
	return errs
}

func validateImage(image string, p *field.Path) field.ErrorList {
	if image == "" {
		return field.ErrorList{field.Required(p, "the image to run, such as \"nginx:1.27\"")}
	}
	if strings.TrimSpace(image) != image {
		return field.ErrorList{field.Invalid(p, image, "must not have leading or trailing whitespace")}
	}
	return nil
}

// validateInitContainerExtras checks what only init containers restrict:
// probes and lifecycle hooks make sense only for sidecars, which keep
// running next to the app (restartPolicy Always).
func validateInitContainerExtras(c *corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.RestartPolicy != nil {
		errs = append(errs, oneOf(*c.RestartPolicy, p.Child("restartPolicy"), containerRestartPolicies...)...)
	}
	sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	probes := []struct {
		name     string
		probe    *corev1.Probe
		liveness bool
	}{
		{"livenessProbe", c.LivenessProbe, true},
		{"readinessProbe", c.ReadinessProbe, false},
		{"startupProbe", c.StartupProbe, true},
	}
	for _, pr := range probes {
		if pr.probe == nil {
			continue
		}
		if !sidecar {
			errs = append(errs, field.Forbidden(p.Child(pr.name), "may not be set for init containers that run to completion; only for sidecars (restartPolicy: Always)"))
			continue
		}
		errs = append(errs, validateProbe(pr.probe, p.Child(pr.name), pr.liveness)...)
	}
	if c.Lifecycle != nil {
		if !sidecar {
			errs = append(errs, field.Forbidden(p.Child("lifecycle"), "may not be set for init containers that run to completion; only for sidecars (restartPolicy: Always)"))
		} else {
			errs = append(errs, validateLifecycle(c.Lifecycle, p.Child("lifecycle"))...)
		}
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, p *field.Path, hostNetwork bool) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		pp := p.Index(i)
		if port.Name != "" {
			errs = append(errs, invalidEach(pp.Child("name"), port.Name, utilvalidation.IsValidPortName(port.Name))...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		errs = append(errs, portNumber(port.ContainerPort, pp.Child("containerPort"))...)
		if port.HostPort != 0 {
			errs = append(errs, invalidEach(pp.Child("hostPort"), port.HostPort, utilvalidation.IsValidPortNum(int(port.HostPort)))...)
			if hostNetwork && port.HostPort != port.ContainerPort {
				errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, "must match containerPort when hostNetwork is true"))
			}
		}
		if port.HostIP != "" {
			errs = append(errs, validateIP(port.HostIP, pp.Child("hostIP"))...)
		}
		errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
	}
	return errs
}

// validateHostPortConflicts reports a host port that two containers of the
// same pod claim: such a pod could never start.
func validateHostPortConflicts(c *corev1.Container, p *field.Path, seen map[string]bool) field.ErrorList {
	var errs field.ErrorList
	for i, port := range c.Ports {
		if port.HostPort == 0 {
			continue
		}
		key := fmt.Sprintf("%s/%s/%d", port.HostIP, port.Protocol, port.HostPort)
		if seen[key] {
			errs = append(errs, field.Duplicate(p.Child("ports").Index(i).Child("hostPort"), fmt.Sprintf("%d/%s", port.HostPort, port.Protocol)))
		}
		seen[key] = true
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ep := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, invalidEach(ep.Child("name"), ev.Name, utilvalidation.IsEnvVarName(ev.Name))...)
		}
		if ev.ValueFrom != nil {
			errs = append(errs, validateEnvVarSource(ev.ValueFrom, ep.Child("valueFrom"))...)
			if ev.Value != "" {
				errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
			}
		}
	}
	return errs
}

// validPodFieldPaths are the pod fields an env var or downward API file can
// expose. metadata.labels and metadata.annotations also take a key, as in
// metadata.labels['app'].
var validPodFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
	"spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

func validateEnvVarSource(s *corev1.EnvVarSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if s.FieldRef != nil {
		n++
		errs = append(errs, validateFieldRef(s.FieldRef, p.Child("fieldRef"))...)
	}
	if s.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldRef(s.ResourceFieldRef, p.Child("resourceFieldRef"))...)
	}
	if s.ConfigMapKeyRef != nil {
		n++
		errs = append(errs, validateKeyRef(s.ConfigMapKeyRef.Name, s.ConfigMapKeyRef.Key, p.Child("configMapKeyRef"))...)
	}
	if s.SecretKeyRef != nil {
		n++
		errs = append(errs, validateKeyRef(s.SecretKeyRef.Name, s.SecretKeyRef.Key, p.Child("secretKeyRef"))...)
	}
	if s.FileKeyRef != nil {
		n++
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	return errs
}

func validateFieldRef(f *corev1.ObjectFieldSelector, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.APIVersion != "" && f.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), f.APIVersion, []string{"v1"}))
	}
	if f.FieldPath == "" {
		return append(errs, field.Required(p.Child("fieldPath"), "such as metadata.name or status.podIP"))
	}
	fp := f.FieldPath
	// metadata.labels['app'] selects one key of the map.
	if i := strings.IndexByte(fp, '['); i >= 0 {
		base, sub := fp[:i], fp[i:]
		if base != "metadata.labels" && base != "metadata.annotations" {
			return append(errs, field.Invalid(p.Child("fieldPath"), fp, "only metadata.labels and metadata.annotations may select a key, as in metadata.labels['app']"))
		}
		if len(sub) < 5 || !strings.HasPrefix(sub, "['") || !strings.HasSuffix(sub, "']") {
			return append(errs, field.Invalid(p.Child("fieldPath"), fp, "a key must be written as ['key']"))
		}
		key := sub[2 : len(sub)-2]
		msgs := content.IsLabelKey(key)
		if base == "metadata.annotations" {
			msgs = content.IsLabelKey(strings.ToLower(key))
		}
		return append(errs, invalidEach(p.Child("fieldPath"), fp, msgs)...)
	}
	for _, ok := range validPodFieldPaths {
		if fp == ok {
			return errs
		}
	}
	return append(errs, field.NotSupported(p.Child("fieldPath"), fp, validPodFieldPaths))
}

var validResourceFieldRefs = []string{
	"limits.cpu", "limits.memory", "limits.ephemeral-storage",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage",
}

func validateResourceFieldRef(r *corev1.ResourceFieldSelector, p *field.Path) field.ErrorList {
	if r.Resource == "" {
		return field.ErrorList{field.Required(p.Child("resource"), "such as limits.memory")}
	}
	for _, ok := range validResourceFieldRefs {
		if r.Resource == ok {
			return nil
		}
	}
	if strings.HasPrefix(r.Resource, "limits.hugepages-") || strings.HasPrefix(r.Resource, "requests.hugepages-") {
		return nil
	}
	return field.ErrorList{field.NotSupported(p.Child("resource"), r.Resource, validResourceFieldRefs)}
}

func validateKeyRef(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		errs = append(errs, invalidEach(p.Child("key"), key, utilvalidation.IsConfigMapKey(key))...)
	}
	return errs
}

func validateEnvFrom(sources []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sources {
		sp := p.Index(i)
		n := 0
		if s.ConfigMapRef != nil {
			n++
			if s.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMapRef", "name"), ""))
			}
		}
		if s.SecretRef != nil {
			n++
			if s.SecretRef.Name == "" {
				errs = append(errs, field.Required(sp.Child("secretRef", "name"), ""))
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(sp, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(sp, "", "may not have more than one field specified at a time"))
		}
		if s.Prefix != "" {
			errs = append(errs, invalidEach(sp.Child("prefix"), s.Prefix, utilvalidation.IsEnvVarName(s.Prefix))...)
		}
	}
	return errs
}

// validateResources checks quantities are not negative and that a request
// never exceeds its limit: the scheduler reserves the request, the kernel
// enforces the limit, and a request above the limit could never be used.
func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(r.Limits) {
		q := r.Limits[name]
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Child("limits").Key(string(name)), q.String(), apivalidation.IsNegativeErrorMsg))
		}
	}
	for _, name := range sortedResourceNames(r.Requests) {
		q := r.Requests[name]
		rp := p.Child("requests").Key(string(name))
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(rp, q.String(), apivalidation.IsNegativeErrorMsg))
			continue
		}
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			continue
		}
		if limit, ok := r.Limits[name]; ok && q.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(rp, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
	}
	return errs
}

// sortedResourceNames makes errors come out in the same order every time.
func sortedResourceNames(rl corev1.ResourceList) []corev1.ResourceName {
	return slices.Sorted(maps.Keys(rl))
}

func validateSecurityContext(sc *corev1.SecurityContext, p *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	if sc.RunAsUser != nil {
		errs = append(errs, invalidEach(p.Child("runAsUser"), *sc.RunAsUser, utilvalidation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, invalidEach(p.Child("runAsGroup"), *sc.RunAsGroup, utilvalidation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		errs = append(errs, field.Invalid(p.Child("allowPrivilegeEscalation"), false, "cannot be false when privileged is true"))
	}
	if sc.Capabilities != nil {
		cp := p.Child("capabilities")
		for i, c := range sc.Capabilities.Add {
			if c == "" {
				errs = append(errs, field.Required(cp.Child("add").Index(i), "a capability name such as NET_ADMIN"))
			}
		}
		for i, c := range sc.Capabilities.Drop {
			if c == "" {
				errs = append(errs, field.Required(cp.Child("drop").Index(i), "a capability name such as NET_RAW"))
			}
		}
	}
	return errs
}

// validateProbe checks a probe. Liveness and startup probes decide on a
// single success, so Kubernetes requires successThreshold 1 for them.
func validateProbe(pr *corev1.Probe, p *field.Path, liveOrStartup bool) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, validateHandler(handlerSet{
		exec: pr.Exec, httpGet: pr.HTTPGet, tcpSocket: pr.TCPSocket, grpc: pr.GRPC,
	}, p)...)
	errs = append(errs, nonNegative(int64(pr.InitialDelaySeconds), p.Child("initialDelaySeconds"))...)
	errs = append(errs, nonNegative(int64(pr.TimeoutSeconds), p.Child("timeoutSeconds"))...)
	errs = append(errs, nonNegative(int64(pr.PeriodSeconds), p.Child("periodSeconds"))...)
	errs = append(errs, nonNegative(int64(pr.SuccessThreshold), p.Child("successThreshold"))...)
	errs = append(errs, nonNegative(int64(pr.FailureThreshold), p.Child("failureThreshold"))...)
	if liveOrStartup && pr.SuccessThreshold != 1 && pr.SuccessThreshold >= 0 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1 for liveness and startup probes"))
	}
	if pr.TerminationGracePeriodSeconds != nil {
		if !liveOrStartup {
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *pr.TerminationGracePeriodSeconds, "may only be set for liveness and startup probes"))
		} else {
			errs = append(errs, positivePtr64(pr.TerminationGracePeriodSeconds, p.Child("terminationGracePeriodSeconds"))...)
		}
	}
	return errs
}

func validateLifecycle(lc *corev1.Lifecycle, p *field.Path) field.ErrorList {
	if lc == nil {
		return nil
	}
	var errs field.ErrorList
	for _, h := range []struct {
		name    string
		handler *corev1.LifecycleHandler
	}{{"postStart", lc.PostStart}, {"preStop", lc.PreStop}} {
		if h.handler == nil {
			continue
		}
		hp := p.Child(h.name)
		errs = append(errs, validateHandler(handlerSet{
			exec: h.handler.Exec, httpGet: h.handler.HTTPGet, tcpSocket: h.handler.TCPSocket, sleep: h.handler.Sleep,
		}, hp)...)
	}
	return errs
}

// handlerSet is the union of probe and lifecycle handlers; exactly one of
// them may be set.
type handlerSet struct {
	exec      *corev1.ExecAction
	httpGet   *corev1.HTTPGetAction
	tcpSocket *corev1.TCPSocketAction
	grpc      *corev1.GRPCAction
	sleep     *corev1.SleepAction
}

func validateHandler(h handlerSet, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var set []string
	if h.exec != nil {
		set = append(set, "exec")
		if len(h.exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), "the command to run in the container"))
		}
	}
	if h.httpGet != nil {
		set = append(set, "httpGet")
		hp := p.Child("httpGet")
		errs = append(errs, portNumberOrName(h.httpGet.Port, hp.Child("port"))...)
		errs = append(errs, oneOf(h.httpGet.Scheme, hp.Child("scheme"), corev1.URISchemeHTTP, corev1.URISchemeHTTPS)...)
		for i, hdr := range h.httpGet.HTTPHeaders {
			errs = append(errs, invalidEach(hp.Child("httpHeaders").Index(i).Child("name"), hdr.Name, utilvalidation.IsHTTPHeaderName(hdr.Name))...)
		}
	}
	if h.tcpSocket != nil {
		set = append(set, "tcpSocket")
		errs = append(errs, portNumberOrName(h.tcpSocket.Port, p.Child("tcpSocket", "port"))...)
	}
	if h.grpc != nil {
		set = append(set, "grpc")
		errs = append(errs, portNumber(h.grpc.Port, p.Child("grpc", "port"))...)
	}
	if h.sleep != nil {
		set = append(set, "sleep")
		errs = append(errs, nonNegative(h.sleep.Seconds, p.Child("sleep", "seconds"))...)
	}
	switch len(set) {
	case 0:
		errs = append(errs, field.Required(p, "must specify a handler type"))
	case 1:
	default:
		errs = append(errs, field.Forbidden(p.Child(set[1]), "may not specify more than 1 handler type; found "+strings.Join(set, ", ")))
	}
	return errs
}

func validateDNS(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, oneOf(spec.DNSPolicy, p.Child("dnsPolicy"),
		corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone)...)
	cfg := spec.DNSConfig
	cp := p.Child("dnsConfig")
	if spec.DNSPolicy == corev1.DNSNone && (cfg == nil || len(cfg.Nameservers) == 0) {
		errs = append(errs, field.Required(cp.Child("nameservers"), "must provide at least one DNS nameserver when dnsPolicy is None"))
	}
	if cfg == nil {
		return errs
	}
	if len(cfg.Nameservers) > 3 {
		errs = append(errs, field.TooMany(cp.Child("nameservers"), len(cfg.Nameservers), 3))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validateIP(ns, cp.Child("nameservers").Index(i))...)
	}
	if len(cfg.Searches) > 32 {
		errs = append(errs, field.TooMany(cp.Child("searches"), len(cfg.Searches), 32))
	}
	for i, s := range cfg.Searches {
		// A trailing dot marks a fully qualified name; it is not part of it.
		errs = append(errs, dnsSubdomain(strings.TrimSuffix(s, "."), cp.Child("searches").Index(i))...)
	}
	for i, o := range cfg.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(cp.Child("options").Index(i).Child("name"), "a resolver option such as ndots"))
		}
	}
	return errs
}

var (
	tolerationOperators = []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}
	taintEffects        = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
)

func validateTolerations(ts []corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range ts {
		tp := p.Index(i)
		if t.Key != "" {
			errs = append(errs, invalidEach(tp.Child("key"), t.Key, content.IsLabelKey(t.Key))...)
		}
		switch t.Operator {
		case "", corev1.TolerationOpEqual:
			if t.Key == "" {
				errs = append(errs, field.Invalid(tp.Child("operator"), t.Operator, "must be Exists when `key` is empty, which means \"match all values and all keys\""))
			}
			errs = append(errs, invalidEach(tp.Child("value"), t.Value, content.IsLabelValue(t.Value))...)
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(tp.Child("value"), t.Value, "must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(tp.Child("operator"), t.Operator, tolerationOperators))
		}
		if t.Effect != "" {
			errs = append(errs, oneOf(t.Effect, tp.Child("effect"), taintEffects...)...)
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(tp.Child("effect"), t.Effect, "must be 'NoExecute' when `tolerationSeconds` is set"))
		}
	}
	return errs
}

var nodeSelectorOperators = []corev1.NodeSelectorOperator{
	corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
	corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt,
}

// validateAffinity checks node affinity, which orch's scheduler honours.
// Pod (anti-)affinity is only reported by Unsupported.
func validateAffinity(a *corev1.Affinity, p *field.Path) field.ErrorList {
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	var errs field.ErrorList
	np := p.Child("nodeAffinity")
	if req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		rp := np.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		if len(req.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(rp, "must have at least one node selector term"))
		}
		for i := range req.NodeSelectorTerms {
			errs = append(errs, validateNodeSelectorTerm(&req.NodeSelectorTerms[i], rp.Index(i))...)
		}
	}
	for i, pref := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		pp := np.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if pref.Weight < 1 || pref.Weight > 100 {
			errs = append(errs, field.Invalid(pp.Child("weight"), pref.Weight, "must be in the range 1-100"))
		}
		errs = append(errs, validateNodeSelectorTerm(&pref.Preference, pp.Child("preference"))...)
	}
	return errs
}

func validateNodeSelectorTerm(t *corev1.NodeSelectorTerm, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range t.MatchExpressions {
		errs = append(errs, validateNodeSelectorRequirement(r, p.Child("matchExpressions").Index(i), true)...)
	}
	for i, r := range t.MatchFields {
		fp := p.Child("matchFields").Index(i)
		// Nodes can only be matched by name.
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(fp.Child("key"), r.Key, []string{"metadata.name"}))
		}
		if r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn {
			errs = append(errs, field.NotSupported(fp.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn}))
		} else if len(r.Values) != 1 {
			errs = append(errs, field.Required(fp.Child("values"), "must have exactly one node name"))
		}
	}
	return errs
}

func validateNodeSelectorRequirement(r corev1.NodeSelectorRequirement, p *field.Path, isLabel bool) field.ErrorList {
	var errs field.ErrorList
	if r.Key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else if isLabel {
		errs = append(errs, invalidEach(p.Child("key"), r.Key, content.IsLabelKey(r.Key))...)
	}
	vp := p.Child("values")
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(vp, "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		}
	default:
		errs = append(errs, oneOf(r.Operator, p.Child("operator"), nodeSelectorOperators...)...)
	}
	if isLabel {
		for i, v := range r.Values {
			errs = append(errs, invalidEach(vp.Index(i), v, content.IsLabelValue(v))...)
		}
	}
	return errs
}

// validateLocalPath checks a path that is joined under a directory (a
// volume's subPath, a projected file name): it must stay inside it.
func validateLocalPath(v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(v) {
		errs = append(errs, field.Invalid(p, v, "must be a relative path"))
	}
	if hasDotDot(v) {
		errs = append(errs, field.Invalid(p, v, "must not contain '..'"))
	}
	return errs
}
