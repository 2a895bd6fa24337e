package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"orch.dev/orch/server/api/defaulting"
)

func TestValidatePodCreate(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validPod()},
		{name: "everything orch implements", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
					Items:                []corev1.KeyToPath{{Key: "a", Path: "conf/a"}},
				}}},
				{Name: "scratch"},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
			}
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"true"}}}
			c := &p.Spec.Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090, HostPort: 9090}}
			c.Env = []corev1.EnvVar{
				{Name: "MODE", Value: "prod"},
				{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			}
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			}
			c.VolumeMounts = []corev1.VolumeMount{
				{Name: "cfg", MountPath: "/etc/web"}, {Name: "scratch", MountPath: "/tmp"},
				{Name: "data", MountPath: "/data", SubPath: "web"}, {Name: "host", MountPath: "/host/log", ReadOnly: true},
			}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, SuccessThreshold: 2}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}
			p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
			p.Spec.Tolerations = []corev1.Toleration{
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr[int64](5)},
				{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule},
			}
			p.Spec.ActiveDeadlineSeconds = ptr[int64](600)
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"db.local"}}}
		})},
		{name: "bad metadata", obj: podWith(func(p *corev1.Pod) {
			p.Name = "Web_1"
			p.Namespace = ""
			p.Labels = map[string]string{"bad key!": "v"}
		}), want: []string{"metadata.name", "metadata.namespace", "metadata.labels"}},
		{name: "no containers", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers = nil }),
			want: []string{"spec.containers"}},
		{name: "image missing", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			want: []string{"spec.containers[0].image"}},
		{name: "image with spaces", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }),
			want: []string{"spec.containers[0].image"}},
		{name: "container name not a DNS label", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web_1" }),
			want: []string{"spec.containers[0].name"}},
		{name: "container name missing", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }),
			want: []string{"spec.containers[0].name"}},
		{name: "container name shared with an init container", obj: podWith(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{container("web")}
		}), want: []string{"spec.containers[0].name"}},
		{name: "bad ports", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{
				{ContainerPort: 0},
				{ContainerPort: 70000},
				{ContainerPort: 80, HostPort: -1},
				{ContainerPort: 81, Protocol: "HTTP"},
				{ContainerPort: 82, Name: "HTTP_PORT"},
				{ContainerPort: 83, Name: "web"},
				{ContainerPort: 84, Name: "web"},
			}
		}), want: []string{
			"spec.containers[0].ports[0].containerPort",
			"spec.containers[0].ports[1].containerPort",
			"spec.containers[0].ports[2].hostPort",
			"spec.containers[0].ports[3].protocol",
			"spec.containers[0].ports[4].name",
			"spec.containers[0].ports[6].name",
		}},
		{name: "host port used twice", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			p.Spec.Containers = append(p.Spec.Containers, container("sidecar"))
			p.Spec.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080}}
		}), want: []string{"spec.containers[1].ports[0].hostPort"}},
		{name: "host network needs hostPort = containerPort", obj: podWith(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 81, HostPort: 8081}}
		}), want: []string{"spec.containers[0].ports[1].hostPort"}},
		{name: "bad env", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: "1BAD", Value: "x"},
				{Name: "TWO", ValueFrom: &corev1.EnvVarSource{
					FieldRef:        &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
					ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "k"},
				}},
				{Name: "NONE", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "BOTH", Value: "x", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "TYPO", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIp"}}},
				{Name: "NOKEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}},
				{Name: ""},
			}
		}), want: []string{
			"spec.containers[0].env[0].name",
			"spec.containers[0].env[1].valueFrom",
			"spec.containers[0].env[2].valueFrom",
			"spec.containers[0].env[3].valueFrom",
			"spec.containers[0].env[4].valueFrom.fieldRef.fieldPath",
			"spec.containers[0].env[5].valueFrom.secretKeyRef.key",
			"spec.containers[0].env[6].name",
		}},
		{name: "envFrom without a source", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "X_"}}
		}), want: []string{"spec.containers[0].envFrom[0]"}},
		{name: "requests above limits", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
			}
		}), want: []string{"spec.containers[0].resources.requests[cpu]"}},
		{name: "negative quantity", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1Gi")}
		}), want: []string{"spec.containers[0].resources.limits[memory]", "spec.containers[0].resources.requests[memory]"}},
		{name: "unknown restart policy", obj: podWith(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			want: []string{"spec.restartPolicy"}},
		{name: "unknown dns policy", obj: podWith(func(p *corev1.Pod) { p.Spec.DNSPolicy = "Custom" }),
			want: []string{"spec.dnsPolicy"}},
		{name: "dns policy None without nameservers", obj: podWith(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }),
			want: []string{"spec.dnsConfig.nameservers"}},
		{name: "bad dns config", obj: podWith(func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"dns.local"}, Searches: []string{"Bad_Domain"}}
		}), want: []string{"spec.dnsConfig.nameservers[0]", "spec.dnsConfig.searches[0]"}},
		{name: "bad volumes", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "Data_1", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "two", VolumeSource: corev1.VolumeSource{
					EmptyDir: &corev1.EmptyDirVolumeSource{},
					Secret:   &corev1.SecretVolumeSource{SecretName: "s"},
				}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					Items: []corev1.KeyToPath{{Key: "k", Path: "../escape"}}, DefaultMode: ptr[int32](01000),
				}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "relative", Type: ptr[corev1.HostPathType]("Dir")}}},
				{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{}}},
			}
		}), want: []string{
			"spec.volumes[0].name",
			"spec.volumes[2].name",
			"spec.volumes[3].secret",
			"spec.volumes[4].configMap.name",
			"spec.volumes[4].configMap.defaultMode",
			"spec.volumes[4].configMap.items[0].path",
			"spec.volumes[5].hostPath.path",
			"spec.volumes[5].hostPath.type",
			"spec.volumes[6].persistentVolumeClaim.claimName",
		}},
		{name: "volume without a source", raw: true, obj: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "nothing"}}
		}), want: []string{
			"spec.volumes[0]",
			// Without defaulting the defaulted enums are missing too.
			"spec.containers[0].imagePullPolicy",
			"spec.containers[0].terminationMessagePolicy",
			"spec.restartPolicy",
			"spec.dnsPolicy",
		}},
		{name: "bad volume mounts", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: "missing", MountPath: "/a"},
				{Name: "data", MountPath: "relative"},
				{Name: "data", MountPath: "/data"},
				{Name: "data", MountPath: "/data/"},
				{Name: "data", MountPath: "/sub", SubPath: "../../etc"},
				{Name: "data", MountPath: ""},
			}
		}), want: []string{
			"spec.containers[0].volumeMounts[0].name",
			"spec.containers[0].volumeMounts[1].mountPath",
			"spec.containers[0].volumeMounts[3].mountPath",
			"spec.containers[0].volumeMounts[4].subPath",
			"spec.containers[0].volumeMounts[5].mountPath",
		}},
		{name: "bad probes", obj: podWith(func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{SuccessThreshold: 2}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet:   &corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
			}, PeriodSeconds: -1}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("no_such")}}}
		}), want: []string{
			"spec.containers[0].livenessProbe",
			"spec.containers[0].livenessProbe.successThreshold",
			"spec.containers[0].readinessProbe.tcpSocket",
			"spec.containers[0].readinessProbe.periodSeconds",
			"spec.containers[0].startupProbe.tcpSocket.port",
		}},
		{name: "probe on an init container that is not a sidecar", obj: podWith(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{container("init")}
			p.Spec.InitContainers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}), want: []string{"spec.initContainers[0].readinessProbe"}},
		{name: "lifecycle hook without a handler", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{}}
		}), want: []string{"spec.containers[0].lifecycle.postStart"}},
		{name: "bad node selector", obj: podWith(func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"zone": "not a value"}
		}), want: []string{"spec.nodeSelector"}},
		{name: "bad tolerations", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{
				{Key: "a", Operator: "Maybe"},
				{Key: "b", Effect: "Sometimes"},
				{Key: "c", Operator: corev1.TolerationOpExists, Value: "x"},
				{Operator: corev1.TolerationOpEqual, Value: "x"},
				{Key: "e", Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr[int64](10)},
			}
		}), want: []string{
			"spec.tolerations[0].operator",
			"spec.tolerations[1].effect",
			"spec.tolerations[2].value",
			"spec.tolerations[3].operator",
			"spec.tolerations[4].effect",
		}},
		{name: "bad node affinity", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: "Near", Values: []string{"a"}}},
				}}},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 0}},
			}}
		}), want: []string{
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator",
			"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
		}},
		{name: "negative grace period and zero deadline", obj: podWith(func(p *corev1.Pod) {
			p.Spec.TerminationGracePeriodSeconds = ptr[int64](-1)
			p.Spec.ActiveDeadlineSeconds = ptr[int64](0)
		}), want: []string{"spec.terminationGracePeriodSeconds", "spec.activeDeadlineSeconds"}},
		{name: "privileged without privilege escalation", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true), AllowPrivilegeEscalation: ptr(false)}
		}), want: []string{"spec.containers[0].securityContext.allowPrivilegeEscalation"}},
	})
}

func TestValidatePodUpdate(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "unchanged", obj: validPod(), old: validPod()},
		{name: "image", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }), old: validPod()},
		{name: "init container image", obj: podWith(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:2"}}
		}), old: podWith(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1"}}
		})},
		{name: "image emptied", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = ""
			p.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
		}), old: validPod(),
			want: []string{"spec.containers[0].image"}},
		{name: "labels only", obj: podWith(func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "front"} }), old: validPod()},
		{name: "status write on a spec stored under older rules", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Name = "Legacy_Name"
			p.Status.Phase = corev1.PodRunning
		}), old: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Legacy_Name" })},
		{name: "toleration added", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}, {Key: "b", Operator: corev1.TolerationOpExists}}
		}), old: podWith(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}
		})},
		{name: "toleration removed", obj: validPod(), old: podWith(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}
		}), want: []string{"spec.tolerations"}},
		{name: "deadline set", obj: podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](60) }), old: validPod()},
		{name: "deadline lowered", obj: podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](30) }),
			old: podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](60) })},
		{name: "deadline raised", obj: podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](90) }),
			old:  podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](60) }),
			want: []string{"spec.activeDeadlineSeconds"}},
		{name: "deadline removed", obj: validPod(),
			old:  podWith(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](60) }),
			want: []string{"spec.activeDeadlineSeconds"}},
		{name: "grace period", obj: podWith(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr[int64](5) }), old: validPod()},
		{name: "bound to a node", obj: podWith(func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }), old: validPod()},
		{name: "moved to another node", obj: podWith(func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }),
			old:  podWith(func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }),
			want: []string{"spec.nodeName"}},
		{name: "command changed", obj: podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"sh"} }), old: validPod(),
			want: []string{"spec"}},
		{name: "container added", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, container("sidecar"))
		}), old: validPod(), want: []string{"spec"}},
		{name: "renamed", obj: podWith(func(p *corev1.Pod) { p.Name = "other" }), old: validPod(),
			want: []string{"metadata.name"}},
		{name: "no resourceVersion", obj: podWith(func(p *corev1.Pod) { p.ResourceVersion = "" }), old: validPod(),
			want: []string{"metadata.resourceVersion"}},
	})
}

func TestPodUpdateMessageNamesChangedFields(t *testing.T) {
	old := validPod()
	pod := podWith(func(p *corev1.Pod) {
		p.Spec.HostNetwork = true
		p.Spec.Containers[0].Image = "nginx:2"
	})
	defaulting.Default(old)
	defaulting.Default(pod)
	errs := ValidateUpdate(pod, old)
	if len(errs) != 1 {
		t.Fatalf("got %d errors (%v), want 1", len(errs), errs)
	}
	want := podUpdateMessage + "; changed: spec.hostNetwork"
	if got := errs[0].Detail; got != want {
		t.Errorf("got detail %q, want %q", got, want)
	}
}
