package api

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Request bodies may come as Kubernetes protobuf: client-go's typed
// clients send it by default. Responses are always JSON, which those same
// clients accept, so only decoding needs the protobuf serializer.
const protobufType = "application/vnd.kubernetes.protobuf"

var (
	scheme   = runtime.NewScheme()
	pbSerial *protobuf.Serializer
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, autoscalingv1.AddToScheme, policyv1.AddToScheme, storagev1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err) // registering known types only fails on programming errors
		}
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	pbSerial = protobuf.NewSerializer(scheme, scheme)
}

func isProtobuf(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == protobufType
}

// decodeProtobuf decodes a protobuf body into into, whose kind it must be.
func decodeProtobuf(body []byte, into runtime.Object, want schema.GroupVersionKind) error {
	obj, gvk, err := pbSerial.Decode(body, nil, into)
	if err != nil {
		return apierrors.NewBadRequest("invalid protobuf request body: " + err.Error())
	}
	// DeleteOptions come in whatever group the client talks to, so an empty
	// wanted version checks only the kind.
	if gvk != nil && !gvk.Empty() && want.Kind != "" && (gvk.Kind != want.Kind || (want.Version != "" && gvk.GroupVersion() != want.GroupVersion())) {
		return apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, expected %s", gvk, want))
	}
	if obj != into {
		return apierrors.NewBadRequest(fmt.Sprintf("the body decoded to %T, expected %T", obj, into))
	}
	return nil
}

// decodeBody decodes a request body of any accepted content type (JSON,
// YAML, protobuf) into into. JSON and YAML are checked for unknown and
// duplicate fields as fieldValidation says; protobuf has no such notion.
func decodeBody(contentType string, body []byte, into runtime.Object, want schema.GroupVersionKind, validation string) ([]string, error) {
	if isProtobuf(contentType) {
		return nil, decodeProtobuf(body, into, want)
	}
	data, err := toJSON(contentType, body)
	if err != nil {
		return nil, err
	}
	return decodeStrict(data, into, validation)
}

// wantsProtobuf reports whether the client prefers protobuf, as client-go's
// typed clients do ("application/vnd.kubernetes.protobuf,application/json").
func wantsProtobuf(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if i := strings.IndexByte(accept, ','); i >= 0 {
		accept = accept[:i]
	}
	mt, _, _ := mime.ParseMediaType(strings.TrimSpace(accept))
	return mt == protobufType
}

// writeWritten answers with a written object: as protobuf when the client
// prefers it (the typed object is at hand, so this costs one generated
// encode and saves the client a JSON decode), else as JSON.
func writeWritten(w http.ResponseWriter, r *http.Request, code int, out *written) {
	if wantsProtobuf(r) {
		var buf bytes.Buffer
		if err := pbSerial.Encode(out.obj, &buf); err == nil {
			w.Header().Set("Content-Type", protobufType)
			w.WriteHeader(code)
			_, _ = w.Write(buf.Bytes()) // the client went away; nothing to do
			return
		}
	}
	writeJSON(w, code, out.data)
}
