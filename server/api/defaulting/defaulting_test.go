//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.

package defaulting

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// defaultedSpec is what defaulting makes of a pod spec with one container
// running image, for a pod (restartPolicy Always) or a Job template ("").
func defaultedSpec(image string, pull corev1.PullPolicy, restart corev1.RestartPolicy) corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "app", Image: image, ImagePullPolicy: pull,
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		RestartPolicy:                 restart,
		DNSPolicy:                     corev1.DNSClusterFirst,
		TerminationGracePeriodSeconds: ptr[int64](30),
		SchedulerName:                 "default-scheduler",
		SecurityContext:               &corev1.PodSecurityContext{},
		EnableServiceLinks:            ptr(true),
	}
}

func bareSpec(image string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
}

func bareTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: bareSpec("app:1")}
}

func defaultedTemplate(labels map[string]string, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: defaultedSpec("app:1", corev1.PullIfNotPresent, restart)}
}

var appLabels = map[string]string{"app": "a"}

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		in   runtime.Object
		want runtime.Object
	}{
		{
			name: "pod",
			in:   &corev1.Pod{Spec: bareSpec("nginx")},
			want: &corev1.Pod{Spec: defaultedSpec("nginx", corev1.PullAlways, corev1.RestartPolicyAlways)},
		},
		{
			name: "pod keeps what the user set",
			in: &corev1.Pod{Spec: func() corev1.PodSpec {
				s := defaultedSpec("nginx:1", corev1.PullNever, corev1.RestartPolicyOnFailure)
				s.DNSPolicy = corev1.DNSDefault
				s.TerminationGracePeriodSeconds = ptr[int64](0)
				s.SchedulerName = "mine"
				s.EnableServiceLinks = ptr(false)
				s.Containers[0].TerminationMessagePath = "/tmp/msg"
				return s
			}()},
			want: &corev1.Pod{Spec: func() corev1.PodSpec {
				s := defaultedSpec("nginx:1", corev1.PullNever, corev1.RestartPolicyOnFailure)
				s.DNSPolicy = corev1.DNSDefault
				s.TerminationGracePeriodSeconds = ptr[int64](0)
				s.SchedulerName = "mine"
				s.EnableServiceLinks = ptr(false)
				s.Containers[0].TerminationMessagePath = "/tmp/msg"
				return s
			}()},
		},
		{
			name: "pod containers, probes, env and volumes",
			in: &corev1.Pod{Spec: corev1.PodSpec{
				Volumes: []corev1.Volume{
					{Name: "none"},
					{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
					{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
					{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{DefaultMode: ptr[int32](0o400)}}},
					{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
					{Name: "down", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
						Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					}}},
					{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					}}}},
				},
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
				Containers: []corev1.Container{{
					Name: "app", Image: "registry.local:5000/app",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
					Env: []corev1.EnvVar{
						{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "PLAIN", Value: "x"},
					},
					Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.0001"), corev1.ResourceMemory: resource.MustParse("64Mi")},
						Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
					},
					LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, PeriodSeconds: 3},
					Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTPS}}},
				}},
			}},
			want: &corev1.Pod{Spec: func() corev1.PodSpec {
				s := defaultedSpec("registry.local:5000/app", corev1.PullAlways, corev1.RestartPolicyAlways)
				s.Volumes = []corev1.Volume{
					{Name: "none", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
					{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: ptr[int32](0o644)}}},
					{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{DefaultMode: ptr[int32](0o400)}}},
					{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: ptr(corev1.HostPathUnset)}}},
					{Name: "down", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
						DefaultMode: ptr[int32](0o644),
						Items:       []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
					}}},
					{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o644), Sources: []corev1.VolumeProjection{
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr[int64](3600)}},
					}}}},
				}
				s.InitContainers = []corev1.Container{{
					Name: "init", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				}}
				c := &s.Containers[0]
				c.Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}
				c.Env = []corev1.EnvVar{
					{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
					{Name: "PLAIN", Value: "x"},
				}
				// Requests come from limits in a pod; CPU is rounded up to 1m.
				c.Resources = corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				}
				c.LivenessProbe = &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
				}
				c.ReadinessProbe = &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
					TimeoutSeconds: 1, PeriodSeconds: 3, SuccessThreshold: 1, FailureThreshold: 3,
				}
				c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTPS}}}
				return s
			}()},
		},
		{
			name: "pod on the host network",
			in: &corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
				Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{ContainerPort: 9100}},
			}}}},
			want: &corev1.Pod{Spec: func() corev1.PodSpec {
				s := defaultedSpec("app:1", corev1.PullIfNotPresent, corev1.RestartPolicyAlways)
				s.HostNetwork = true
				s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100, Protocol: corev1.ProtocolTCP}}
				return s
			}()},
		},
		{
			name: "deployment",
			in:   &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: bareTemplate(appLabels)}},
			want: &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Replicas: ptr[int32](1),
				Template: defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				Strategy: appsv1.DeploymentStrategy{
					Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{
						MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%")),
					},
				},
				RevisionHistoryLimit:    ptr[int32](10),
				ProgressDeadlineSeconds: ptr[int32](600),
			}},
		},
		{
			name: "deployment with the recreate strategy",
			in: &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Replicas: ptr[int32](0), Template: bareTemplate(appLabels),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			}},
			want: &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Replicas:                ptr[int32](0),
				Template:                defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				RevisionHistoryLimit:    ptr[int32](10),
				ProgressDeadlineSeconds: ptr[int32](600),
			}},
		},
		{
			name: "replica set",
			in:   &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: bareTemplate(appLabels)}},
			want: &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: ptr[int32](1), Template: defaultedTemplate(appLabels, corev1.RestartPolicyAlways)}},
		},
		{
			name: "replication controller",
			in:   &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Template: ptr(bareTemplate(appLabels))}},
			want: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec: corev1.ReplicationControllerSpec{
					Replicas: ptr[int32](1), Selector: appLabels,
					Template: ptr(defaultedTemplate(appLabels, corev1.RestartPolicyAlways)),
				},
			},
		},
		{
			name: "replication controller keeps its selector and labels",
			in: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "x"}},
				Spec: corev1.ReplicationControllerSpec{
					Selector: map[string]string{"app": "a"},
					Template: ptr(bareTemplate(map[string]string{"app": "a", "v": "1"})),
				},
			},
			want: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "x"}},
				Spec: corev1.ReplicationControllerSpec{
					Replicas: ptr[int32](1), Selector: map[string]string{"app": "a"},
					Template: ptr(defaultedTemplate(map[string]string{"app": "a", "v": "1"}, corev1.RestartPolicyAlways)),
				},
			},
		},
		{
			name: "replication controller without template",
			in:   &corev1.ReplicationController{},
			want: &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Replicas: ptr[int32](1)}},
		},
		{
			name: "daemon set",
			in:   &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: bareTemplate(appLabels)}},
			want: &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				Template: defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
					Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{
						MaxUnavailable: ptr(intstr.FromInt32(1)), MaxSurge: ptr(intstr.FromInt32(0)),
					},
				},
				RevisionHistoryLimit: ptr[int32](10),
			}},
		},
		{
			name: "daemon set updated on delete",
			in: &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				Template: bareTemplate(appLabels), UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			}},
			want: &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				Template:             defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				UpdateStrategy:       appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
				RevisionHistoryLimit: ptr[int32](10),
			}},
		},
		{
			name: "stateful set",
			in: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				Template: bareTemplate(appLabels),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					}},
				}},
			}},
			want: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				Replicas:            ptr[int32](1),
				Template:            defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				PodManagementPolicy: appsv1.OrderedReadyPodManagement,
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
					Type:          appsv1.RollingUpdateStatefulSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr[int32](0)},
				},
				RevisionHistoryLimit: ptr[int32](10),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						VolumeMode: ptr(corev1.PersistentVolumeFilesystem),
						Resources: corev1.VolumeResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
						},
					},
					Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
				}},
			}},
		},
		{
			name: "stateful set updated on delete, deleting its claims",
			in: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				Replicas: ptr[int32](3), Template: bareTemplate(appLabels),
				PodManagementPolicy: appsv1.ParallelPodManagement,
				UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				},
			}},
			want: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				Replicas: ptr[int32](3), Template: defaultedTemplate(appLabels, corev1.RestartPolicyAlways),
				PodManagementPolicy:  appsv1.ParallelPodManagement,
				UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
				RevisionHistoryLimit: ptr[int32](10),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				},
			}},
		},
		{
			name: "job",
			in:   &batchv1.Job{Spec: batchv1.JobSpec{Template: bareTemplate(appLabels)}},
			want: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec:       defaultedJobSpec(ptr[int32](1), ptr[int32](1)),
			},
		},
		{
			name: "work queue job",
			in:   &batchv1.Job{Spec: batchv1.JobSpec{Parallelism: ptr[int32](4), Template: bareTemplate(appLabels)}},
			want: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec:       defaultedJobSpec(nil, ptr[int32](4)),
			},
		},
		{
			name: "job with completions only",
			in: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"own": "x"}},
				Spec:       batchv1.JobSpec{Completions: ptr[int32](5), Template: bareTemplate(appLabels)},
			},
			want: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"own": "x"}},
				Spec:       defaultedJobSpec(ptr[int32](5), ptr[int32](1)),
			},
		},
		{
			name: "job with a pod failure policy and per-index backoff",
			in: &batchv1.Job{Spec: batchv1.JobSpec{
				Template:             bareTemplate(appLabels),
				BackoffLimitPerIndex: ptr[int32](2),
				PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
				}}},
			}},
			want: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec: func() batchv1.JobSpec {
					s := defaultedJobSpec(ptr[int32](1), ptr[int32](1))
					s.BackoffLimit = ptr[int32](math.MaxInt32)
					s.BackoffLimitPerIndex = ptr[int32](2)
					s.PodReplacementPolicy = ptr(batchv1.Failed)
					s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
						Action:          batchv1.PodFailurePolicyActionIgnore,
						OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
					}}}
					return s
				}(),
			},
		},
		{
			name: "cron job",
			in: &batchv1.CronJob{Spec: batchv1.CronJobSpec{
				Schedule:    "@hourly",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: bareTemplate(appLabels)}},
			}},
			want: &batchv1.CronJob{Spec: batchv1.CronJobSpec{
				Schedule:                   "@hourly",
				ConcurrencyPolicy:          batchv1.AllowConcurrent,
				Suspend:                    ptr(false),
				SuccessfulJobsHistoryLimit: ptr[int32](3),
				FailedJobsHistoryLimit:     ptr[int32](1),
				JobTemplate:                batchv1.JobTemplateSpec{Spec: defaultedJobSpec(ptr[int32](1), ptr[int32](1))},
			}},
		},
		{
			name: "service",
			in: &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
			}}},
			want: &corev1.Service{Spec: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
				Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
				},
			}},
		},
		{
			name: "node port service with client IP affinity",
			in: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityClientIP,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			}},
			want: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](10800)}},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
			}},
		},
		{
			name: "load balancer keeps a local traffic policy",
			in: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			}},
			want: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityNone,
				ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyLocal,
				InternalTrafficPolicy:         ptr(corev1.ServiceInternalTrafficPolicyCluster),
				AllocateLoadBalancerNodePorts: ptr(true),
			}},
		},
		{
			name: "external name service",
			in:   &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			want: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", SessionAffinity: corev1.ServiceAffinityNone,
			}},
		},
		{
			name: "namespace",
			in:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a", corev1.LabelMetadataName: "wrong"}}},
			want: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a", corev1.LabelMetadataName: "team-a"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
		},
		{
			name: "namespace being deleted keeps its state",
			in: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "old"},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
			want: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{corev1.LabelMetadataName: "old"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
		},
		{
			name: "namespace finalized by its controller",
			in: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{corev1.LabelMetadataName: "old"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
			want: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{corev1.LabelMetadataName: "old"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
		},
		{
			name: "secret",
			in: &corev1.Secret{
				Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
				StringData: map[string]string{"user": "new", "pass": "p"},
			},
			want: &corev1.Secret{
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"user": []byte("new"), "keep": []byte("k"), "pass": []byte("p")},
			},
		},
		{
			name: "secret of a given type with string data only",
			in:   &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "u"}},
			want: &corev1.Secret{Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"username": []byte("u")}},
		},
		{
			name: "endpoints",
			in: &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
				Ports: []corev1.EndpointPort{{Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP}},
			}}},
			want: &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
				Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
			}}},
		},
		{
			name: "node",
			in: &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"),
			}}},
			want: &corev1.Node{Status: corev1.NodeStatus{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			}},
		},
		{
			name: "config map and event are left alone",
			in:   &corev1.ConfigMap{Data: map[string]string{"a": "b"}},
			want: &corev1.ConfigMap{Data: map[string]string{"a": "b"}},
		},
		{
			name: "event is left alone",
			in:   &corev1.Event{Reason: "Started"},
			want: &corev1.Event{Reason: "Started"},
		},
		{
			name: "unknown kind is left alone",
			in:   &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r"}},
			want: &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.in)
			assertEqual(t, tc.in, tc.want)
			// Defaulting again changes nothing: updates default stored
			// objects a second time.
			again := tc.in.DeepCopyObject()
			Default(again)
			assertEqual(t, again, tc.want)
		})
	}
}

// defaultedJobSpec is the defaulted spec of a Job made from
// bareTemplate(appLabels) with the given completions and parallelism.
func defaultedJobSpec(completions, parallelism *int32) batchv1.JobSpec {
	return batchv1.JobSpec{
		Completions:          completions,
		Parallelism:          parallelism,
		BackoffLimit:         ptr[int32](6),
		CompletionMode:       ptr(batchv1.NonIndexedCompletion),
		Suspend:              ptr(false),
		ManualSelector:       ptr(false),
		PodReplacementPolicy: ptr(batchv1.TerminatingOrFailed),
		Template:             defaultedTemplate(appLabels, ""),
	}
}

func TestDefaultTemplatesGetNoPodOnlyDefaults(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: bareTemplate(appLabels)}}
	d.Spec.Template.Spec.HostNetwork = true
	c := &d.Spec.Template.Spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	Default(d)
	if got := c.Ports[0].HostPort; got != 0 {
		t.Errorf("got template hostPort %d, want 0: host ports are set on pods only", got)
	}
	if got := c.Resources.Requests; got != nil {
		t.Errorf("got template requests %v, want none: requests come from limits on pods only", got)
	}
}

func TestImagePullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"library/nginx:1.27-alpine", corev1.PullIfNotPresent},
		{"registry.local:5000/app", corev1.PullAlways},
		{"registry.local:5000/app:v2", corev1.PullIfNotPresent},
		{"registry.local:5000/app:latest", corev1.PullAlways},
		{"nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", corev1.PullAlways},
		{"nginx:1.27@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", corev1.PullIfNotPresent},
	}
	for _, tc := range tests {
		t.Run(tc.image, func(t *testing.T) {
			if got := imagePullPolicy(tc.image); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDefaultNeverPanics(t *testing.T) {
	objs := []runtime.Object{
		nil,
		(*corev1.Pod)(nil), (*corev1.Namespace)(nil), (*corev1.Node)(nil), (*corev1.Service)(nil),
		(*corev1.Endpoints)(nil), (*corev1.ConfigMap)(nil), (*corev1.Secret)(nil), (*corev1.Event)(nil),
		(*corev1.ReplicationController)(nil), (*appsv1.ReplicaSet)(nil), (*appsv1.Deployment)(nil),
		(*appsv1.DaemonSet)(nil), (*appsv1.StatefulSet)(nil), (*batchv1.Job)(nil), (*batchv1.CronJob)(nil),
		&corev1.Pod{}, &corev1.Namespace{}, &corev1.Node{}, &corev1.Service{}, &corev1.Endpoints{},
		&corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Event{}, &corev1.ReplicationController{},
		&appsv1.ReplicaSet{}, &appsv1.Deployment{}, &appsv1.DaemonSet{}, &appsv1.StatefulSet{},
		&batchv1.Job{}, &batchv1.CronJob{},
		&corev1.Pod{Spec: corev1.PodSpec{
			Containers:          []corev1.Container{{}},
			InitContainers:      []corev1.Container{{Env: []corev1.EnvVar{{ValueFrom: &corev1.EnvVarSource{}}}}},
			EphemeralContainers: []corev1.EphemeralContainer{{}},
			Volumes:             []corev1.Volume{{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{}}}}}},
		}},
	}
	for i, obj := range objs {
		t.Run(fmt.Sprintf("%d %T", i, obj), func(t *testing.T) {
			Default(obj)
		})
	}
}

// assertEqual compares API objects by value and prints both as JSON, the
// form users know them in, when they differ.
func assertEqual(t *testing.T, got, want runtime.Object) {
	t.Helper()
	if apiequality.Semantic.DeepEqual(got, want) {
		return
	}
	t.Errorf("got\n%s\nwant\n%s", asJSON(got), asJSON(want))
}

func asJSON(obj runtime.Object) string {
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return fmt.Sprintf("%+v (not JSON: %v)", obj, err)
	}
	return string(b)
}
