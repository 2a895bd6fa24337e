package validation

import (
	"reflect"
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
	"k8s.io/apimachinery/pkg/util/validation/field"

	"orch.dev/orch/server/api/defaulting"
)

// The fixtures below are valid objects, as the API server would hand them
// to validation before defaulting: tests state only what differs.

func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "0b7c4a58-5a58-4b7e-9c53-ec7e5a8b2f11", ResourceVersion: "7"}
}

func container(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "nginx:1.27"}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{container("web")}}
}

func validPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: objectMeta("web"), Spec: podSpec()}
}

// podWith returns a valid pod changed by edit.
func podWith(edit func(*corev1.Pod)) *corev1.Pod {
	p := validPod()
	edit(p)
	return p
}

var webLabels = map[string]string{"app": "web"}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       podSpec(),
	}
}

func jobTemplateSpec(labels map[string]string) corev1.PodTemplateSpec {
	t := template(labels)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

func ptr[T any](v T) *T { return &v }

func validDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: objectMeta("web"),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(webLabels),
		},
	}
}

func deploymentWith(edit func(*appsv1.Deployment)) *appsv1.Deployment {
	d := validDeployment()
	edit(d)
	return d
}

func validReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: objectMeta("web"),
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(webLabels),
		},
	}
}

func replicaSetWith(edit func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := validReplicaSet()
	edit(rs)
	return rs
}

func validReplicationController() *corev1.ReplicationController {
	t := template(webLabels)
	return &corev1.ReplicationController{
		ObjectMeta: objectMeta("web"),
		Spec:       corev1.ReplicationControllerSpec{Template: &t},
	}
}

func replicationControllerWith(edit func(*corev1.ReplicationController)) *corev1.ReplicationController {
	rc := validReplicationController()
	edit(rc)
	return rc
}

func validDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: objectMeta("agent"),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(webLabels),
		},
	}
}

func daemonSetWith(edit func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := validDaemonSet()
	edit(ds)
	return ds
}

func validStatefulSet() *appsv1.StatefulSet {
	t := template(webLabels)
	t.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return &appsv1.StatefulSet{
		ObjectMeta: objectMeta("db"),
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    t,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					},
				},
			}},
		},
	}
}

func statefulSetWith(edit func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	ss := validStatefulSet()
	edit(ss)
	return ss
}

// jobLabels are what the API server's selector generation adds.
var jobLabels = map[string]string{"batch.kubernetes.io/controller-uid": "0b7c4a58-5a58-4b7e-9c53-ec7e5a8b2f11"}

func validJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: objectMeta("pi"),
		Spec: batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: jobLabels},
			Template: jobTemplateSpec(jobLabels),
		},
	}
}

func jobWith(edit func(*batchv1.Job)) *batchv1.Job {
	j := validJob()
	edit(j)
	return j
}

func validCronJob() *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: objectMeta("backup"),
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplateSpec(nil)}},
		},
	}
}

func cronJobWith(edit func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := validCronJob()
	edit(cj)
	return cj
}

func validService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: objectMeta("web"),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

func serviceWith(edit func(*corev1.Service)) *corev1.Service {
	s := validService()
	edit(s)
	return s
}

func validConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: objectMeta("cfg"), Data: map[string]string{"app.conf": "x=1"}}
}

func configMapWith(edit func(*corev1.ConfigMap)) *corev1.ConfigMap {
	cm := validConfigMap()
	edit(cm)
	return cm
}

func validSecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: objectMeta("creds"), Data: map[string][]byte{"password": []byte("hunter2")}}
}

func secretWith(edit func(*corev1.Secret)) *corev1.Secret {
	s := validSecret()
	edit(s)
	return s
}

func validNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "u", ResourceVersion: "7"}}
}

func namespaceWith(edit func(*corev1.Namespace)) *corev1.Namespace {
	ns := validNamespace()
	edit(ns)
	return ns
}

func validNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "u", ResourceVersion: "7"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.1.0/24", PodCIDRs: []string{"10.42.1.0/24"}},
	}
}

func nodeWith(edit func(*corev1.Node)) *corev1.Node {
	n := validNode()
	edit(n)
	return n
}

func validEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     objectMeta("web.17a2b"),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"},
		Reason:         "Started",
	}
}

// errCase is one table entry for ValidateCreate (old == nil) or
// ValidateUpdate: the object and the paths of the errors it must produce.
type errCase struct {
	name string
	obj  runtime.Object
	old  runtime.Object
	want []string
	// raw skips defaulting, for inputs defaulting would repair.
	raw bool
}

// runErrCases defaults the objects as the API server does, validates them
// and compares the paths that have errors, sorted because apimachinery
// reports map entries (labels, selectors) in map order.
func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.raw {
				defaulting.Default(tc.obj)
				defaulting.Default(tc.old)
			}
			var errs field.ErrorList
			if tc.old == nil {
				errs = ValidateCreate(tc.obj)
			} else {
				errs = ValidateUpdate(tc.obj, tc.old)
			}
			got := errorPaths(errs)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("got errors at %q, want at %q; errors:\n%s", got, want, describe(errs))
			}
		})
	}
}

func errorPaths(errs field.ErrorList) []string {
	paths := []string{}
	for _, e := range errs {
		paths = append(paths, e.Field)
	}
	slices.Sort(paths)
	// Several messages for one field (a name breaking two rules) count once.
	return slices.Compact(paths)
}

func describe(errs field.ErrorList) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("  ")
		b.WriteString(e.Error())
		b.WriteString("\n")
	}
	return b.String()
}

func kindName(obj runtime.Object) string {
	return reflect.TypeOf(obj).Elem().Name()
}

// defaulted returns obj after defaulting it, as the API server hands it on.
func defaulted(obj runtime.Object) runtime.Object {
	defaulting.Default(obj)
	return obj
}
