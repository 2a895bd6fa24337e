package validation

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/randfill"

	"orch.dev/orch/server/api/defaulting"
)

// fuzzKinds are the kinds the fuzzer decodes into, picked by the first
// fuzz argument.
var fuzzKinds = []func() runtime.Object{
	func() runtime.Object { return &corev1.Pod{} },
	func() runtime.Object { return &appsv1.Deployment{} },
	func() runtime.Object { return &corev1.Service{} },
	func() runtime.Object { return &batchv1.CronJob{} },
	func() runtime.Object { return &batchv1.Job{} },
	func() runtime.Object { return &appsv1.StatefulSet{} },
	func() runtime.Object { return &appsv1.DaemonSet{} },
	func() runtime.Object { return &appsv1.ReplicaSet{} },
	func() runtime.Object { return &corev1.ReplicationController{} },
	func() runtime.Object { return &corev1.ConfigMap{} },
	func() runtime.Object { return &corev1.Secret{} },
	func() runtime.Object { return &corev1.Namespace{} },
	func() runtime.Object { return &corev1.Node{} },
	//lint:ignore SA1019 core/v1 Endpoints is deprecated upstream but is part of the API orch serves.
	func() runtime.Object { return &corev1.Endpoints{} },
	func() runtime.Object { return &corev1.Event{} },
}

// fuzzSeeds are valid manifests, one or more per kind, indexed like
// fuzzKinds, so the fuzzer starts from objects that reach deep into
// validation instead of failing at the first required field.
var fuzzSeeds = []struct {
	kind     uint8
	manifest string
}{
	{0, `{"metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},"spec":{
		"volumes":[{"name":"cfg","configMap":{"name":"web","items":[{"key":"a","path":"a.conf"}]}},{"name":"tmp"},
			{"name":"proj","projected":{"sources":[{"secret":{"name":"s"}},{"downwardAPI":{"items":[{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}}]}}]}}],
		"initContainers":[{"name":"init","image":"busybox:1.36","command":["true"]}],
		"containers":[{"name":"web","image":"nginx:1.27","ports":[{"name":"http","containerPort":80}],
			"env":[{"name":"POD","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],
			"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"100m"}},
			"volumeMounts":[{"name":"cfg","mountPath":"/etc/web"},{"name":"tmp","mountPath":"/tmp"}],
			"livenessProbe":{"httpGet":{"port":"http"}},"readinessProbe":{"tcpSocket":{"port":80}},
			"lifecycle":{"preStop":{"sleep":{"seconds":5}}},
			"securityContext":{"runAsUser":1000,"capabilities":{"add":["NET_ADMIN"]}}}],
		"tolerations":[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":30}],
		"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]}}},
		"nodeSelector":{"disk":"ssd"},"dnsPolicy":"None","dnsConfig":{"nameservers":["10.43.0.10"]}}}`},
	{1, `{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3,
		"selector":{"matchLabels":{"app":"web"}},
		"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":"10%"}},
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`},
	{2, `{"metadata":{"name":"web","namespace":"default"},"spec":{"type":"NodePort","selector":{"app":"web"},
		"ports":[{"name":"http","port":80,"targetPort":"http","nodePort":30080},{"name":"dns","port":53,"protocol":"UDP"}]}}`},
	{2, `{"metadata":{"name":"db","namespace":"default"},"spec":{"type":"ExternalName","externalName":"db.example.com."}}`},
	{3, `{"metadata":{"name":"backup","namespace":"default"},"spec":{"schedule":"*/5 * * * *","timeZone":"Etc/UTC",
		"jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"b","image":"busybox"}]}}}}}}`},
	{4, `{"metadata":{"name":"pi","namespace":"default","uid":"u1"},"spec":{"completions":5,"parallelism":2,"completionMode":"Indexed",
		"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u1"}},
		"template":{"metadata":{"labels":{"batch.kubernetes.io/controller-uid":"u1"}},"spec":{"restartPolicy":"Never","containers":[{"name":"pi","image":"perl"}]}}}}`},
	{5, `{"metadata":{"name":"db","namespace":"default"},"spec":{"serviceName":"db","replicas":3,
		"selector":{"matchLabels":{"app":"db"}},
		"template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"postgres:16","volumeMounts":[{"name":"data","mountPath":"/var/lib/postgresql"}]}]}},
		"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}`},
	{6, `{"metadata":{"name":"agent","namespace":"kube-system"},"spec":{"selector":{"matchLabels":{"app":"agent"}},
		"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"hostNetwork":true,"containers":[{"name":"a","image":"agent:1","ports":[{"containerPort":9100}]}],
		"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}}}`},
	{7, `{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["web"]}]},
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`},
	{8, `{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":1,
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`},
	{9, `{"metadata":{"name":"cfg","namespace":"default"},"data":{"a.conf":"x=1"},"binaryData":{"b.bin":"AAE="}}`},
	{10, `{"metadata":{"name":"pull","namespace":"default"},"type":"kubernetes.io/dockerconfigjson","stringData":{".dockerconfigjson":"{\"auths\":{}}"}}`},
	{10, `{"metadata":{"name":"tls","namespace":"default"},"type":"kubernetes.io/tls","data":{"tls.crt":"Y3J0","tls.key":"a2V5"},"immutable":true}`},
	{11, `{"metadata":{"name":"team-a","labels":{"team":"a"}}}`},
	{12, `{"metadata":{"name":"node-1"},"spec":{"podCIDR":"10.42.1.0/24","podCIDRs":["10.42.1.0/24"],"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]},
		"status":{"capacity":{"cpu":"2","memory":"4Gi"}}}`},
	{13, `{"metadata":{"name":"web","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.42.1.5","nodeName":"node-1"}],"ports":[{"name":"http","port":80},{"name":"https","port":443}]}]}`},
	{14, `{"metadata":{"name":"web.1","namespace":"default"},"involvedObject":{"kind":"Pod","name":"web","namespace":"default"},"reason":"Started","message":"ok"}`},
}

// FuzzValidate decodes arbitrary JSON into each kind (or, when the input is
// not JSON, fills the kind from it) and runs everything the API server runs
// on it. None of it may panic, and defaulting must be
// idempotent: the API server defaults stored objects again on update.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.kind, []byte(s.manifest))
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		newObj := fuzzKinds[int(kind)%len(fuzzKinds)]
		obj := newObj()
		if err := json.Unmarshal(data, obj); err != nil {
			// Most mutations break the JSON. Rather than waste them, let
			// them drive a structured filler, which reaches combinations
			// of nil and set fields that JSON mutations rarely do.
			obj = newObj()
			randfill.NewFromGoFuzz(data).NilChance(0.5).NumElements(0, 3).MaxDepth(16).Fill(obj)
		}
		defaulting.Default(obj)
		again := obj.DeepCopyObject()
		defaulting.Default(again)
		if !apiequality.Semantic.DeepEqual(obj, again) {
			t.Fatalf("defaulting is not idempotent: got %+v after a second pass, want %+v", again, obj)
		}
		_ = ValidateCreate(obj)
		_ = ValidateUpdate(obj, obj.DeepCopyObject())
		empty := newObj()
		defaulting.Default(empty)
		_ = ValidateUpdate(obj, empty)
		_ = ValidateUpdate(empty, obj)
		_ = Unsupported(obj)
	})
}

// TestFuzzSeedsAreValid keeps the seeds honest: a seed that fails
// validation would only explore the error paths.
func TestFuzzSeedsAreValid(t *testing.T) {
	for _, s := range fuzzSeeds {
		obj := fuzzKinds[s.kind]()
		t.Run(kindName(obj), func(t *testing.T) {
			if err := json.Unmarshal([]byte(s.manifest), obj); err != nil {
				t.Fatalf("decode: got %v, want no error", err)
			}
			defaulting.Default(obj)
			if errs := ValidateCreate(obj); len(errs) > 0 {
				t.Fatalf("got %v, want no errors", errs)
			}
		})
	}
}
