package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxBodySize is the largest request body the API accepts.
const MaxBodySize = 3 << 20

var errNotFoundPath = errors.New("api: no such path")

// readBody reads a request body up to MaxBodySize.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("request body is larger than %d bytes (3 MiB); split the object or move large data out of it", MaxBodySize))
		}
		return nil, apierrors.NewBadRequest("reading request body: " + err.Error())
	}
	return body, nil
}

// fieldValidation is the request's choice of how to treat unknown and
// duplicate fields: Strict (the default here), Warn or Ignore.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "", "Strict":
		return "Strict", nil
	case "Warn", "Ignore":
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Strict, Warn or Ignore, not %q", v))
}

// toJSON converts a YAML body to JSON; JSON passes through.
func toJSON(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" {
		j, err := yaml.YAMLToJSONStrict(body)
		if err != nil {
			return nil, apierrors.NewBadRequest("invalid YAML: " + err.Error())
		}
		return j, nil
	}
	return body, nil
}

// decodeStrict decodes data into obj. Unknown and duplicate fields are
// returned as messages naming their path; with validation "Strict" they are
// an error, with "Warn" warnings, with "Ignore" nothing.
func decodeStrict(data []byte, obj any, validation string) (warnings []string, err error) {
	strictErrs, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return nil, apierrors.NewBadRequest("invalid JSON in request body: " + err.Error())
	}
	if len(strictErrs) == 0 || validation == "Ignore" {
		return nil, nil
	}
	var msgs []string
	for _, e := range strictErrs {
		msgs = append(msgs, e.Error())
	}
	if validation == "Warn" {
		return msgs, nil
	}
	return nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
}

// decodeRequestObject decodes a create or update body of any accepted
// content type as an object of res.
func decodeRequestObject(r *http.Request, res *resource, body []byte, validation string) (object, []string, error) {
	ct := r.Header.Get("Content-Type")
	if isProtobuf(ct) {
		obj := res.newObj()
		if err := decodeProtobuf(body, obj, res.gvk()); err != nil {
			return nil, nil, err
		}
		return obj, nil, nil
	}
	data, err := toJSON(ct, body)
	if err != nil {
		return nil, nil, err
	}
	return decodeObject(res, data, validation)
}

// decodeObject decodes a JSON body as an object of res, checking that its
// apiVersion and kind (when given) are the resource's.
func decodeObject(res *resource, data []byte, validation string) (object, []string, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, nil, apierrors.NewBadRequest("invalid JSON in request body: " + err.Error())
	}
	if tm.APIVersion != "" && tm.APIVersion != res.apiVersion() {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, res.apiVersion()))
	}
	if tm.Kind != "" && tm.Kind != res.kind {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s) for %s", tm.Kind, res.kind, res.name))
	}
	obj := res.newObj()
	warnings, err := decodeStrict(data, obj, validation)
	if err != nil {
		return nil, nil, err
	}
	return obj, warnings, nil
}

// encodeForStore encodes obj as it is kept in the store: with apiVersion and
// kind, without resourceVersion (the store revision is the version) and
// without server-side apply bookkeeping, which orch does not keep.
func encodeForStore(res *resource, obj object) ([]byte, error) {
	obj.SetResourceVersion("")
	obj.SetSelfLink("")
	obj.SetManagedFields(nil)
	obj.GetObjectKind().SetGroupVersionKind(res.gvk())
	return json.Marshal(obj)
}

var metadataKey = []byte(`"metadata":{`)

// withRV returns the stored encoding of an object with its resourceVersion
// set, by splicing it into the metadata object rather than decoding and
// encoding again. Stored encodings always come from encodeForStore, whose
// first "metadata":{ is the object's metadata.
func withRV(stored []byte, rev int64) []byte {
	i := bytes.Index(stored, metadataKey)
	if i < 0 {
		return stored
	}
	j := i + len(metadataKey)
	out := make([]byte, 0, len(stored)+40)
	out = append(out, stored[:j]...)
	out = append(out, `"resourceVersion":"`...)
	out = strconv.AppendInt(out, rev, 10)
	out = append(out, '"')
	if j < len(stored) && stored[j] != '}' {
		out = append(out, ',')
	}
	return append(out, stored[j:]...)
}

// decodeStored decodes a stored encoding and sets its resourceVersion.
func decodeStored(res *resource, data []byte, rev int64) (object, error) {
	obj := res.newObj()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", res.kind, err)
	}
	obj.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// writeJSON writes a JSON body with status code.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body) // the client went away; nothing to do
}

func writeObject(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	writeJSON(w, code, b)
}

// writeError writes err as a metav1.Status. Errors that are not API errors
// become 500s whose message still says what failed.
func writeError(w http.ResponseWriter, err error) {
	st := toStatus(err)
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	b, _ := json.Marshal(st) // a Status always encodes
	if st.Code == http.StatusTooManyRequests || st.Code == http.StatusServiceUnavailable || st.Code == http.StatusGatewayTimeout {
		if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(st.Details.RetryAfterSeconds)))
		}
	}
	writeJSON(w, int(st.Code), b)
}

func toStatus(err error) metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status()
	}
	return apierrors.NewInternalError(err).Status()
}

// addWarnings sends warnings the Kubernetes way: one Warning header each,
// which client-go surfaces to its warning handler (orchctl prints them).
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, msg := range warnings {
		w.Header().Add("Warning", "299 - "+strconv.Quote(msg))
	}
}

func notFound(res *resource, name string) error {
	return apierrors.NewNotFound(res.gr(), name)
}
