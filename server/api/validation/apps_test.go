package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateDeployment(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validDeployment()},
		{name: "recreate", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		})},
		{name: "selector missing", obj: deploymentWith(func(d *appsv1.Deployment) { d.Spec.Selector = nil }),
			want: []string{"spec.selector"}},
		{name: "selector empty", obj: deploymentWith(func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }),
			want: []string{"spec.selector"}},
		{name: "selector invalid", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Like"}}}
		}), want: []string{"spec.selector.matchExpressions[0].operator"}},
		{name: "selector misses the template", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Template.Labels = map[string]string{"app": "api"}
		}), want: []string{"spec.template.metadata.labels"}},
		{name: "negative replicas", obj: deploymentWith(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](-1) }),
			want: []string{"spec.replicas"}},
		{name: "bad template", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = ""
			d.Spec.Template.Annotations = map[string]string{"bad key!": "x"}
		}), want: []string{"spec.template.spec.containers[0].image", "spec.template.metadata.annotations"}},
		{name: "template must restart pods", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
			d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr[int64](60)
		}), want: []string{"spec.template.spec.restartPolicy", "spec.template.spec.activeDeadlineSeconds"}},
		{name: "unknown strategy", obj: deploymentWith(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }),
			want: []string{"spec.strategy.type"}},
		{name: "recreate with rolling update settings", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}), want: []string{"spec.strategy.rollingUpdate"}},
		{name: "rollout that cannot progress", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(0)), MaxUnavailable: ptr(intstr.FromString("0%"))}
		}), want: []string{"spec.strategy.rollingUpdate.maxUnavailable"}},
		{name: "bad rollout budgets", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromString("lots")), MaxUnavailable: ptr(intstr.FromString("150%"))}
		}), want: []string{"spec.strategy.rollingUpdate.maxSurge", "spec.strategy.rollingUpdate.maxUnavailable"}},
		{name: "progress deadline not above min ready", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 30
			d.Spec.ProgressDeadlineSeconds = ptr[int32](30)
			d.Spec.RevisionHistoryLimit = ptr[int32](-1)
		}), want: []string{"spec.progressDeadlineSeconds", "spec.revisionHistoryLimit"}},
		{name: "update: scale and new image", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr[int32](5)
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		}), old: validDeployment()},
		{name: "update: selector changed", obj: deploymentWith(func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "web", "tier": "front"}
			d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "front"}
		}), old: validDeployment(), want: []string{"spec.selector"}},
	})
}

func TestValidateReplicaSet(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validReplicaSet()},
		{name: "selector missing", obj: replicaSetWith(func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }),
			want: []string{"spec.selector"}},
		{name: "selector misses the template", obj: replicaSetWith(func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = nil }),
			want: []string{"spec.template.metadata.labels"}},
		{name: "negative replicas and min ready", obj: replicaSetWith(func(rs *appsv1.ReplicaSet) {
			rs.Spec.Replicas = ptr[int32](-2)
			rs.Spec.MinReadySeconds = -1
		}), want: []string{"spec.replicas", "spec.minReadySeconds"}},
		{name: "update: selector changed", obj: replicaSetWith(func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}
		}), old: validReplicaSet(), want: []string{"spec.selector"}},
	})
}

func TestValidateReplicationController(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid, selector from the template", obj: validReplicationController()},
		{name: "no template", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template = nil
		}), want: []string{"spec.selector", "spec.template"}},
		{name: "no labels to select by", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Labels = nil
		}), want: []string{"spec.selector"}},
		{name: "selector misses the template", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Selector = map[string]string{"app": "api"}
		}), want: []string{"spec.template.metadata.labels"}},
		{name: "invalid selector", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Selector = map[string]string{"app": "a b"}
		}), want: []string{"spec.selector", "spec.template.metadata.labels"}},
		{name: "template must restart pods", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}), want: []string{"spec.template.spec.restartPolicy"}},
		{name: "update: selector may change", obj: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Selector = map[string]string{"app": "web"}
			rc.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}), old: replicationControllerWith(func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Labels = map[string]string{"app": "web", "v": "1"}
		})},
	})
}

func TestValidateDaemonSet(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validDaemonSet()},
		{name: "on delete", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
		})},
		{name: "template must restart pods", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}), want: []string{"spec.template.spec.restartPolicy"}},
		{name: "selector misses the template", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}), want: []string{"spec.template.metadata.labels"}},
		{name: "unknown update strategy", obj: daemonSetWith(func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Rolling" }),
			want: []string{"spec.updateStrategy.type"}},
		{name: "surge and unavailable both set", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1)), MaxSurge: ptr(intstr.FromInt32(1))}
		}), want: []string{"spec.updateStrategy.rollingUpdate.maxSurge"}},
		{name: "surge and unavailable both zero", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromInt32(0))}
		}), want: []string{"spec.updateStrategy.rollingUpdate.maxUnavailable"}},
		{name: "surge only", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromString("10%"))}
		})},
		{name: "update: selector changed", obj: daemonSetWith(func(ds *appsv1.DaemonSet) {
			ds.Spec.Selector.MatchLabels = map[string]string{}
			ds.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}}
		}), old: validDaemonSet(), want: []string{"spec.selector"}},
	})
}

func TestValidateStatefulSet(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validStatefulSet()},
		{name: "headless service name may be empty", obj: statefulSetWith(func(ss *appsv1.StatefulSet) { ss.Spec.ServiceName = "" })},
		{name: "bad service name", obj: statefulSetWith(func(ss *appsv1.StatefulSet) { ss.Spec.ServiceName = "DB" }),
			want: []string{"spec.serviceName"}},
		{name: "template must restart pods", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}), want: []string{"spec.template.spec.restartPolicy"}},
		{name: "bad policies", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.PodManagementPolicy = "Random"
			ss.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: "Rolling"}
			ss.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Keep", WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		}), want: []string{"spec.podManagementPolicy", "spec.updateStrategy.type", "spec.persistentVolumeClaimRetentionPolicy.whenDeleted"}},
		{name: "negative partition", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr[int32](-1)}
		}), want: []string{"spec.updateStrategy.rollingUpdate.partition"}},
		{name: "on delete with rolling update settings", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
				Type: appsv1.OnDeleteStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{},
			}
		}), want: []string{"spec.updateStrategy.rollingUpdate"}},
		{name: "bad claim templates", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			good := ss.Spec.VolumeClaimTemplates[0]
			ss.Spec.VolumeClaimTemplates = append(ss.Spec.VolumeClaimTemplates,
				corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "Logs"}, Spec: good.Spec},
				good,
				corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "empty"}},
			)
		}), want: []string{
			"spec.volumeClaimTemplates[1].metadata.name",
			"spec.volumeClaimTemplates[2].metadata.name",
			"spec.volumeClaimTemplates[3].spec.accessModes",
			"spec.volumeClaimTemplates[3].spec.resources.requests[storage]",
		}},
		{name: "mount of neither a volume nor a claim", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.VolumeClaimTemplates = nil
		}), want: []string{"spec.template.spec.containers[0].volumeMounts[0].name"}},
		{name: "volume named like a claim", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data"}}
		}), want: []string{"spec.template.spec.volumes[0].name"}},
		{name: "update: allowed fields", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.Replicas = ptr[int32](5)
			ss.Spec.Template.Spec.Containers[0].Image = "postgres:17"
			ss.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
			ss.Spec.MinReadySeconds = 10
			ss.Spec.RevisionHistoryLimit = ptr[int32](3)
			ss.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			}
		}), old: validStatefulSet()},
		{name: "update: claim templates and service name", obj: statefulSetWith(func(ss *appsv1.StatefulSet) {
			ss.Spec.ServiceName = "db2"
			ss.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), old: validStatefulSet(), want: []string{"spec"}},
	})
}

func TestStatefulSetUpdateMessageNamesChangedFields(t *testing.T) {
	old, ss := validStatefulSet(), validStatefulSet()
	ss.Spec.ServiceName = "db2"
	ss.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	errs := ValidateUpdate(ss, old)
	var details []string
	for _, e := range errs {
		if e.Field == "spec" {
			details = append(details, e.Detail)
		}
	}
	want := statefulSetUpdateMessage + "; changed: spec.serviceName, spec.podManagementPolicy"
	if len(details) != 1 || details[0] != want {
		t.Errorf("got %q, want [%q]", details, want)
	}
}
