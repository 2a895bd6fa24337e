package agent

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	rt "orch.dev/orch/node/runtime"
)

// errContainerConfig marks a container that cannot be configured from its
// spec (reason CreateContainerConfigError).
var errContainerConfig = errors.New("container configuration")

// envContext is what a container's environment is resolved against.
type envContext struct {
	podIP, hostIP string
	// configs finds the ConfigMaps and Secrets of env and envFrom.
	configs configLookup
	// allocatable stands in for unset limits in resourceFieldRefs, as the
	// node's allocatable does in Kubernetes.
	allocatable corev1.ResourceList
	// skipped reports envFrom keys left out as invalid variable names
	// (kind "configMap" or "secret").
	skipped func(kind, ns, name string, keys []string)
}

// envFor resolves a container's environment as Kubernetes does: envFrom
// sources first (ConfigMaps and Secrets, with prefix; keys that are not
// valid variable names are skipped and reported), then env, whose values,
// ConfigMap and Secret keys and downward-API fieldRefs and
// resourceFieldRefs override them. Later env values may refer to earlier
// variables as $(NAME). A missing object or key that is not optional is a
// container configuration error naming the object and key, never a value.
func envFor(pod *corev1.Pod, c *corev1.Container, ec envContext) ([]string, error) {
	configs := ec.configs
	if configs == nil {
		configs = noConfigs{}
	}
	var names []string
	vals := map[string]string{}
	put := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var kind, name string
		switch {
		case from.ConfigMapRef != nil:
			kind, name = "configMap", from.ConfigMapRef.Name
			cm, err := configs.configMap(pod.Namespace, name)
			if apierrors.IsNotFound(err) {
				if isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, errConfigMapNotFound(name)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: configmap %q: %v", errContainerConfig, name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			kind, name = "secret", from.SecretRef.Name
			sec, err := configs.secret(pod.Namespace, name)
			if apierrors.IsNotFound(err) {
				if isTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, errSecretNotFound(name)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: secret %q: %v", errContainerConfig, name, err)
			}
			data = make(map[string]string, len(sec.Data))
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var invalid []string
		for _, k := range keys {
			full := from.Prefix + k
			if len(validation.IsEnvVarName(full)) > 0 {
				invalid = append(invalid, full)
				continue
			}
			put(full, data[k])
		}
		if len(invalid) > 0 && ec.skipped != nil {
			ec.skipped(kind, pod.Namespace, name, invalid)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			put(e.Name, expand(e.Value, vals))
			continue
		}
		switch {
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath, ec.podIP, ec.hostIP)
			if err != nil {
				return nil, fmt.Errorf("%w: env %s: %v", errContainerConfig, e.Name, err)
			}
			put(e.Name, v)
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resourceValue(c, e.ValueFrom.ResourceFieldRef, ec.allocatable)
			if err != nil {
				return nil, fmt.Errorf("%w: env %s: %v", errContainerConfig, e.Name, err)
			}
			put(e.Name, v)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := configs.configMap(pod.Namespace, ref.Name)
			if apierrors.IsNotFound(err) {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, errConfigMapNotFound(ref.Name)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: configmap %q: %v", errContainerConfig, ref.Name, err)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, containerConfigError(fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name))
			}
			put(e.Name, v)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec, err := configs.secret(pod.Namespace, ref.Name)
			if apierrors.IsNotFound(err) {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, errSecretNotFound(ref.Name)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: secret %q: %v", errContainerConfig, ref.Name, err)
			}
			v, ok := sec.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, containerConfigError(fmt.Sprintf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name))
			}
			put(e.Name, string(v))
		default:
			return nil, fmt.Errorf("%w: env %s: valueFrom names no source", errContainerConfig, e.Name)
		}
	}
	env := make([]string, 0, len(names))
	for _, k := range names {
		env = append(env, k+"="+vals[k])
	}
	return env, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// expand replaces $(NAME) with vals[NAME] when known, keeps it otherwise,
// and turns $$ into $.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func fieldValue(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if strings.HasPrefix(path, p.prefix) && strings.HasSuffix(path, "']") {
			return p.m[strings.TrimSuffix(strings.TrimPrefix(path, p.prefix), "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// resourceValue is a container's CPU (in units of the divisor, default
// one core), memory or ephemeral storage (default one byte), rounded up as
// Kubernetes does. An unset limit is the node's allocatable.
func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		return "", fmt.Errorf("resourceFieldRef to another container (%s) is not supported", ref.ContainerName)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	res := corev1.ResourceName(name)
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, set := list[res]
	if !set && kind == "limits" {
		q = allocatable[res]
	}
	var v, div int64
	switch res {
	case corev1.ResourceCPU:
		v, div = q.MilliValue(), 1000
		if !ref.Divisor.IsZero() {
			div = ref.Divisor.MilliValue()
		}
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		v, div = q.Value(), 1
		if !ref.Divisor.IsZero() {
			div = ref.Divisor.Value()
		}
	default:
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	if div <= 0 {
		return "", fmt.Errorf("resourceFieldRef divisor must be positive")
	}
	return strconv.FormatInt((v+div-1)/div, 10), nil
}

// containerSpec turns a pod's container into an engine container spec.
func containerSpec(pod *corev1.Pod, c *corev1.Container, role string, attempt int, sandboxID, node string, ec envContext) (rt.ContainerSpec, error) {
	env, err := envFor(pod, c, ec)
	if err != nil {
		return rt.ContainerSpec{}, err
	}
	spec := rt.ContainerSpec{
		Labels:     containerLabels(pod, c.Name, role, attempt, node),
		Image:      c.Image,
		Command:    c.Command,
		Args:       c.Args,
		Env:        env,
		WorkingDir: c.WorkingDir,
		SandboxID:  sandboxID,
		TTY:        c.TTY,
		Stdin:      c.Stdin,
	}
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	for i := range spec.Command {
		spec.Command[i] = expand(spec.Command[i], vals)
	}
	for i := range spec.Args {
		spec.Args[i] = expand(spec.Args[i], vals)
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		spec.MemoryBytes = mem.Value()
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		spec.NanoCPUs = cpu.MilliValue() * 1_000_000
	}
	sc := effectiveSecurity(pod, c)
	if sc.RunAsUser != nil {
		spec.User = strconv.FormatInt(*sc.RunAsUser, 10)
		if sc.RunAsGroup != nil {
			spec.User += ":" + strconv.FormatInt(*sc.RunAsGroup, 10)
		}
	}
	if sc.Privileged != nil {
		spec.Privileged = *sc.Privileged
	}
	if sc.ReadOnlyRootFilesystem != nil {
		spec.ReadOnlyRootFS = *sc.ReadOnlyRootFilesystem
	}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			spec.CapAdd = append(spec.CapAdd, string(cp))
		}
		for _, cp := range sc.Capabilities.Drop {
			spec.CapDrop = append(spec.CapDrop, string(cp))
		}
	}
	return spec, nil
}

// effectiveSecurity merges the pod's security context under the
// container's, which wins field by field.
func effectiveSecurity(pod *corev1.Pod, c *corev1.Container) corev1.SecurityContext {
	var sc corev1.SecurityContext
	if p := pod.Spec.SecurityContext; p != nil {
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = p.RunAsUser, p.RunAsGroup, p.RunAsNonRoot
	}
	if c.SecurityContext != nil {
		cs := c.SecurityContext
		if cs.RunAsUser != nil {
			sc.RunAsUser = cs.RunAsUser
		}
		if cs.RunAsGroup != nil {
			sc.RunAsGroup = cs.RunAsGroup
		}
		if cs.RunAsNonRoot != nil {
			sc.RunAsNonRoot = cs.RunAsNonRoot
		}
		sc.Privileged, sc.ReadOnlyRootFilesystem, sc.Capabilities = cs.Privileged, cs.ReadOnlyRootFilesystem, cs.Capabilities
	}
	return sc
}

// containerLabels are the labels that tie an engine container to its pod.
func containerLabels(pod *corev1.Pod, name, role string, attempt int, node string) map[string]string {
	return map[string]string{
		rt.LabelManaged: "true", rt.LabelNode: node, rt.LabelPodUID: string(pod.UID),
		rt.LabelPodNamespace: pod.Namespace, rt.LabelPodName: pod.Name,
		rt.LabelContainer: name, rt.LabelRole: role, rt.LabelAttempt: strconv.Itoa(attempt),
	}
}
