package defaulting

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podSpecOptions says which PodSpec defaults apply where the spec lives.
type podSpecOptions struct {
	// restartPolicy is the restartPolicy given to a spec that has none, or ""
	// to leave it empty. Job and CronJob templates leave it empty so that
	// validation can ask the user to choose OnFailure or Never, because
	// Always is not valid for a Job.
	restartPolicy corev1.RestartPolicy
	// isPod is true for a Pod object, as opposed to a pod template. Kubernetes
	// applies a few defaults only to pods (requests from limits, host ports on
	// host networking) so that changing them never alters a template and
	// rolls every workload on upgrade.
	isPod bool
}

// templateOptions is what every controller template except Job's gets.
var templateOptions = podSpecOptions{restartPolicy: corev1.RestartPolicyAlways}

// jobTemplateOptions is for Job and CronJob templates.
var jobTemplateOptions = podSpecOptions{}

func defaultPod(pod *corev1.Pod) {
	defaultPodSpec(&pod.Spec, podSpecOptions{restartPolicy: corev1.RestartPolicyAlways, isPod: true})
}

func defaultPodTemplate(t *corev1.PodTemplateSpec, opts podSpecOptions) {
	if t == nil {
		return
	}
	defaultPodSpec(&t.Spec, opts)
}

func defaultPodSpec(spec *corev1.PodSpec, opts podSpecOptions) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" && opts.restartPolicy != "" {
		spec.RestartPolicy = opts.restartPolicy
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptrTo[int64](corev1.DefaultTerminationGracePeriodSeconds)
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// Kubernetes sets enableServiceLinks on pods only; orch sets it on
	// templates too, which is equivalent because every pod made from the
	// template would get it anyway, and shows users the effective value.
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptrTo(corev1.DefaultEnableServiceLinks)
	}
	if spec.Overhead != nil {
		defaultResourceList(spec.Overhead)
	}
	if spec.Resources != nil {
		// Pod-level resources only get rounding: orch does not implement
		// them, so they carry no derived requests either.
		defaultResources(spec.Resources, false)
	}

	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i], opts.isPod, spec.HostNetwork)
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i], opts.isPod, spec.HostNetwork)
	}
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		// Ephemeral containers never get requests or host ports: they have
		// no resources of their own and may not declare ports.
		defaultContainer(c, false, false)
	}
}

func defaultContainer(c *corev1.Container, isPod, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = imagePullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		// With host networking the container port is the host port, and
		// the scheduler must see it to avoid conflicts on the node.
		if isPod && hostNetwork && p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil {
			defaultFieldRef(vf.FieldRef)
		}
	}
	defaultResources(&c.Resources, isPod)
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		defaultLifecycleHandler(c.Lifecycle.PostStart)
		defaultLifecycleHandler(c.Lifecycle.PreStop)
	}
}

// defaultResources rounds quantities and, in a pod, copies each limit into a
// missing request: a container that only says how much it may use is
// scheduled as if it asked for exactly that much.
func defaultResources(r *corev1.ResourceRequirements, isPod bool) {
	if isPod && len(r.Limits) > 0 {
		if r.Requests == nil {
			r.Requests = make(corev1.ResourceList, len(r.Limits))
		}
		for name, limit := range r.Limits {
			if _, ok := r.Requests[name]; !ok {
				r.Requests[name] = limit.DeepCopy()
			}
		}
	}
	defaultResourceList(r.Limits)
	defaultResourceList(r.Requests)
}

// imagePullPolicy is the policy Kubernetes picks for an image: a floating
// tag (":latest", or no tag and no digest) is pulled every time, anything
// pinned is pulled only when missing.
func imagePullPolicy(image string) corev1.PullPolicy {
	tag, digest := imageTagAndDigest(image)
	if tag == "latest" || (tag == "" && !digest) {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTagAndDigest splits a reference such as
// "registry:5000/team/app:1.2@sha256:..." into its tag ("1.2") and whether it
// carries a digest. A colon before the last slash belongs to the registry
// host, not to a tag.
func imageTagAndDigest(image string) (tag string, digest bool) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		digest = true
		image = image[:i]
	}
	slash := strings.LastIndexByte(image, '/')
	if colon := strings.LastIndexByte(image, ':'); colon > slash {
		tag = image[colon+1:]
	}
	return tag, digest
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
}

func defaultLifecycleHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		defaultHTTPGet(h.HTTPGet)
	}
}

// defaultHTTPGet sets scheme HTTP and path "/" as Kubernetes does, so the
// agent's prober and users reading the object see the request that is made.
func defaultHTTPGet(g *corev1.HTTPGetAction) {
	if g == nil {
		return
	}
	if g.Path == "" {
		g.Path = "/"
	}
	if g.Scheme == "" {
		g.Scheme = corev1.URISchemeHTTP
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

func defaultVolume(v *corev1.Volume) {
	vs := &v.VolumeSource
	// A volume that names no source is an empty directory, as in
	// Kubernetes; manifests rely on writing just `- name: scratch`.
	if (*vs == corev1.VolumeSource{}) {
		vs.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if vs.HostPath != nil && vs.HostPath.Type == nil {
		vs.HostPath.Type = ptrTo(corev1.HostPathUnset)
	}
	if vs.Secret != nil && vs.Secret.DefaultMode == nil {
		vs.Secret.DefaultMode = ptrTo(corev1.SecretVolumeSourceDefaultMode)
	}
	if vs.ConfigMap != nil && vs.ConfigMap.DefaultMode == nil {
		vs.ConfigMap.DefaultMode = ptrTo(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if vs.DownwardAPI != nil {
		if vs.DownwardAPI.DefaultMode == nil {
			vs.DownwardAPI.DefaultMode = ptrTo(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		defaultDownwardAPIFiles(vs.DownwardAPI.Items)
	}
	if vs.Projected != nil {
		if vs.Projected.DefaultMode == nil {
			vs.Projected.DefaultMode = ptrTo(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range vs.Projected.Sources {
			src := &vs.Projected.Sources[i]
			if src.DownwardAPI != nil {
				defaultDownwardAPIFiles(src.DownwardAPI.Items)
			}
			if src.ServiceAccountToken != nil && src.ServiceAccountToken.ExpirationSeconds == nil {
				src.ServiceAccountToken.ExpirationSeconds = ptrTo[int64](3600)
			}
		}
	}
	if vs.Ephemeral != nil && vs.Ephemeral.VolumeClaimTemplate != nil {
		defaultPVCSpec(&vs.Ephemeral.VolumeClaimTemplate.Spec)
	}
}

func defaultDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if items[i].FieldRef != nil {
			defaultFieldRef(items[i].FieldRef)
		}
	}
}

func defaultPVCSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
	}
	defaultResourceList(spec.Resources.Limits)
	defaultResourceList(spec.Resources.Requests)
}
