package validation

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"orch.dev/orch/server/api/defaulting"
)

// notImplemented is the warning for p.
func notImplemented(p string) string {
	return p + ": orch does not implement it; it is stored but has no effect"
}

func TestUnsupported(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{name: "claim with a selector and a data source", obj: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr("local"),
			Selector:   &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"},
		}}, want: []string{notImplemented("spec.selector"), notImplemented("spec.dataSource")}},
		{name: "statefulset deleting claims on scale down", obj: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType},
		}}, want: []string{`spec.persistentVolumeClaimRetentionPolicy.whenScaled: orch does not implement "Delete"; it is stored but has no effect`}},
		{name: "pod using only what orch implements", obj: podWith(func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"db"}}}
			p.Spec.HostNetwork = true
			p.Spec.ServiceAccountName = "default"
			p.Spec.ShareProcessNamespace = ptr(false)
			p.Spec.HostUsers = ptr(true)
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
			p.Spec.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{}}, {Secret: &corev1.SecretProjection{}},
				}}}},
			}
			c := &p.Spec.Containers[0]
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr[int64](1000), Privileged: ptr(false), ReadOnlyRootFilesystem: ptr(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "1"}}}}
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
			c.TTY = true
		})},
		{name: "pod using what orch does not implement", obj: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "a"},
				{Name: "b", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}},
				{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{}}, {ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
			}
			p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways)}}
			c := &p.Spec.Containers[0]
			c.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired}}
			c.VolumeDevices = []corev1.VolumeDevice{{Name: "a", DevicePath: "/dev/xvda"}}
			c.SecurityContext = &corev1.SecurityContext{
				SELinuxOptions: &corev1.SELinuxOptions{Level: "s0"},
				RunAsUser:      ptr[int64](1),
				ProcMount:      ptr(corev1.UnmaskedProcMount),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}
			c.Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "a", Path: "p", Key: "k"}}}}
			c.Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}}
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
			p.Spec.ServiceAccountName = "prometheus"
			p.Spec.HostPID = true
			p.Spec.HostIPC = true
			p.Spec.ShareProcessNamespace = ptr(true)
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr[int64](1), FSGroup: ptr[int64](2000), Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}}
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}, PodAffinity: &corev1.PodAffinity{}}
			p.Spec.PriorityClassName = "high"
			p.Spec.Priority = ptr[int32](1000)
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}}
			p.Spec.RuntimeClassName = ptr("gvisor")
			p.Spec.PreemptionPolicy = ptr(corev1.PreemptNever)
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1}}
			p.Spec.SetHostnameAsFQDN = ptr(true)
			p.Spec.OS = &corev1.PodOS{Name: corev1.Linux}
			p.Spec.HostUsers = ptr(false)
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "wait"}}
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
		}), want: []string{
			notImplemented("spec.ephemeralContainers"),
			notImplemented("spec.hostPID"),
			notImplemented("spec.hostIPC"),
			notImplemented("spec.priorityClassName"),
			notImplemented("spec.priority"),
			notImplemented("spec.readinessGates"),
			notImplemented("spec.runtimeClassName"),
			notImplemented("spec.preemptionPolicy"),
			notImplemented("spec.overhead"),
			notImplemented("spec.topologySpreadConstraints"),
			notImplemented("spec.os"),
			notImplemented("spec.schedulingGates"),
			notImplemented("spec.resourceClaims"),
			notImplemented("spec.volumes[1].nfs"),
			notImplemented("spec.volumes[2].projected.sources[1].serviceAccountToken"),
			notImplemented("spec.initContainers[0].restartPolicy"),
			notImplemented("spec.containers[0].resizePolicy"),
			notImplemented("spec.containers[0].volumeDevices"),
			notImplemented("spec.containers[0].env[0].valueFrom.fileKeyRef"),
			notImplemented("spec.containers[0].resources.claims"),
			notImplemented("spec.containers[0].securityContext.seLinuxOptions"),
			notImplemented("spec.containers[0].securityContext.procMount"),
			notImplemented("spec.containers[0].securityContext.seccompProfile"),
			notImplemented("spec.serviceAccountName"),
			notImplemented("spec.shareProcessNamespace"),
			notImplemented("spec.securityContext.fsGroup"),
			notImplemented("spec.securityContext.sysctls"),
			notImplemented("spec.affinity.podAffinity"),
			notImplemented("spec.affinity.podAntiAffinity"),
			notImplemented("spec.setHostnameAsFQDN"),
			notImplemented("spec.hostUsers"),
		}},
		{name: "deployment template", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1}}
			d.Spec.Template.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{StopSignal: ptr(corev1.SIGTERM)}
		}), want: []string{
			notImplemented("spec.template.spec.topologySpreadConstraints"),
			notImplemented("spec.template.spec.containers[0].lifecycle.stopSignal"),
		}},
		{name: "replica set, daemon set and replication controller templates", obj: replicaSetWith(func(rs *appsv1.ReplicaSet) {
			rs.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "git", VolumeSource: corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{}}}}
		}), want: []string{notImplemented("spec.template.spec.volumes[0].gitRepo")}},
		{name: "daemon set template", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.PriorityClassName = "system-node-critical"
		}), want: []string{notImplemented("spec.template.spec.priorityClassName")}},
		{name: "replication controller template", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.HostIPC = true
		}), want: []string{notImplemented("spec.template.spec.hostIPC")}},
		{name: "replication controller without template", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template = nil
		})},
		{name: "stateful set", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 1}
			ss.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptr(intstr.FromInt32(2))}
			ss.Spec.Template.Spec.OS = &corev1.PodOS{Name: corev1.Linux}
		}), want: []string{
			notImplemented("spec.ordinals"),
			notImplemented("spec.updateStrategy.rollingUpdate.maxUnavailable"),
			notImplemented("spec.template.spec.os"),
		}},
		{name: "job", obj: jobWith(func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{}
			j.Spec.BackoffLimitPerIndex = ptr[int32](1)
			j.Spec.MaxFailedIndexes = ptr[int32](1)
			j.Spec.ManagedBy = ptr("kueue.x-k8s.io/multikueue")
			j.Spec.Template.Spec.Containers[0].RestartPolicy = ptr(corev1.ContainerRestartPolicyNever)
		}), want: []string{
			notImplemented("spec.podFailurePolicy"),
			notImplemented("spec.successPolicy"),
			notImplemented("spec.backoffLimitPerIndex"),
			notImplemented("spec.maxFailedIndexes"),
			notImplemented("spec.managedBy"),
			notImplemented("spec.template.spec.containers[0].restartPolicy"),
		}},
		{name: "cron job", obj: cronJobWith(func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
			cj.Spec.JobTemplate.Spec.Template.Spec.RuntimeClassName = ptr("kata")
		}), want: []string{
			notImplemented("spec.jobTemplate.spec.podFailurePolicy"),
			notImplemented("spec.jobTemplate.spec.template.spec.runtimeClassName"),
		}},
		{name: "service using what orch implements", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack)
			s.Spec.PublishNotReadyAddresses = true
		})},
		{name: "headless service without selector defaulted to RequireDualStack", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Selector = nil
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
		})},
		{name: "service using what orch does not implement", obj: serviceWith(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerIP = "192.0.2.1"
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
			s.Spec.LoadBalancerClass = ptr("example.com/lb")
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
			s.Spec.TrafficDistribution = ptr("PreferClose")
		}), want: []string{
			notImplemented("spec.loadBalancerIP"),
			notImplemented("spec.loadBalancerSourceRanges"),
			notImplemented("spec.loadBalancerClass"),
			notImplemented("spec.trafficDistribution"),
			`spec.ipFamilyPolicy: orch does not implement "RequireDualStack"; it is stored but has no effect`,
		}},
		{name: "kinds without unsupported fields", obj: validConfigMap()},
		{name: "nil", obj: (*corev1.Pod)(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defaulting.Default(tc.obj)
			got := Unsupported(tc.obj)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			// The same object must give the same warnings, in the same order.
			if again := Unsupported(tc.obj); !slices.Equal(again, got) {
				t.Errorf("got %q on a second call, want %q", again, got)
			}
		})
	}
}
