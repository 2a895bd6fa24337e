package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// scaleOf builds the autoscaling/v1 Scale view of an object.
func scaleOf(res *resource, obj object) *autoscalingv1.Scale {
	spec, status, sel := res.scale.get(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(),
			ResourceVersion: obj.GetResourceVersion(), CreationTimestamp: obj.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: sel},
	}
}

// serveScale serves GET, PUT and PATCH on .../scale.
func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res := ri.resource
	switch r.Method {
	case http.MethodGet:
		ro, err := readOptions(r.URL.Query().Get("resourceVersion"))
		if err != nil {
			writeError(w, err)
			return
		}
		kv, _, err := s.store.Get(ctx, res.key(ri.namespace, ri.name), ro)
		if err != nil {
			writeError(w, storeError(err))
			return
		}
		if kv == nil {
			writeError(w, notFound(res, ri.name))
			return
		}
		cur, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		writeObject(w, http.StatusOK, scaleOf(res, cur))
		return
	case http.MethodPut, http.MethodPatch:
	default:
		writeError(w, apierrors.NewMethodNotSupported(res.gr(), r.Method+" on scale"))
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var pt types.PatchType
	var precondition int64
	var put *autoscalingv1.Scale
	if r.Method == http.MethodPatch {
		if pt, err = patchType(r); err != nil {
			writeError(w, err)
			return
		}
	} else {
		put = &autoscalingv1.Scale{}
		if _, err := decodeBody(r.Header.Get("Content-Type"), body, put, autoscalingv1.SchemeGroupVersion.WithKind("Scale"), "Strict"); err != nil {
			writeError(w, err)
			return
		}
		if put.Name != "" && put.Name != ri.name {
			writeError(w, badRequest("the name of the object (%s) does not match the name on the URL (%s)", put.Name, ri.name))
			return
		}
		if rv := put.ResourceVersion; rv != "" {
			n, ok := parseRV(rv)
			if !ok {
				writeError(w, badRequest("metadata.resourceVersion %q is not a valid resource version", rv))
				return
			}
			precondition = n
		}
	}
	out, warnings, err := s.guaranteedUpdate(ctx, res, ri.namespace, ri.name, precondition, dry, func(cur object) (object, []string, error) {
		want := put
		if want == nil {
			orig, err := json.Marshal(scaleOf(res, cur))
			if err != nil {
				return nil, nil, apierrors.NewInternalError(err)
			}
			patched, err := applyPatch(pt, orig, body, &autoscalingv1.Scale{})
			if err != nil {
				return nil, nil, err
			}
			want = &autoscalingv1.Scale{}
			if _, err := decodeStrict(patched, want, "Strict"); err != nil {
				return nil, nil, err
			}
		}
		if want.Spec.Replicas < 0 {
			return nil, nil, apierrors.NewInvalid(schemaGK("autoscaling", "Scale"), ri.name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0"),
			})
		}
		obj := cur.DeepCopyObject().(object)
		res.scale.set(obj, want.Spec.Replicas)
		return s.update(res, obj, cur, "")
	})
	if err != nil {
		writeError(w, err)
		return
	}
	addWarnings(w, warnings)
	writeObject(w, http.StatusOK, scaleOf(res, out.obj))
}

// serveBinding assigns a pod to a node: POST pods/NAME/binding, the way a
// scheduler binds. A pod is bound once.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res := ri.resource
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := &corev1.Binding{}
	if _, err := decodeBody(r.Header.Get("Content-Type"), body, b, corev1.SchemeGroupVersion.WithKind("Binding"), "Strict"); err != nil {
		writeError(w, err)
		return
	}
	if b.Name != "" && b.Name != ri.name {
		writeError(w, badRequest("the name of the binding (%s) does not match the pod on the URL (%s)", b.Name, ri.name))
		return
	}
	if b.Target.Name == "" || (b.Target.Kind != "" && b.Target.Kind != "Node") {
		writeError(w, apierrors.NewInvalid(schemaGK("", "Binding"), ri.name, field.ErrorList{
			field.Required(field.NewPath("target", "name"), "a binding needs a target node (target.kind Node, target.name NODE)"),
		}))
		return
	}
	_, _, err = s.guaranteedUpdate(ctx, res, ri.namespace, ri.name, 0, false, func(cur object) (object, []string, error) {
		pod := cur.DeepCopyObject().(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, nil, apierrors.NewConflict(res.gr(), ri.name, fmt.Errorf("the binding is for pod UID %s, not %s", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, nil, apierrors.NewConflict(res.gr(), ri.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a node", ri.name))
		}
		if pod.Spec.NodeName != "" {
			return nil, nil, apierrors.NewConflict(res.gr(), ri.name, fmt.Errorf("pod %s is already assigned to node %q", ri.name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: s.nowTime()})
		return pod, nil, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				return
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

func schemaGK(group, kind string) schema.GroupKind {
	return schema.GroupKind{Group: group, Kind: kind}
}
