package api

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeManifest feeds arbitrary bytes, as JSON or YAML, through the
// whole create path of every resource (strict decoding, server-managed
// metadata, defaulting, validation, unimplemented-field warnings, the store
// encoding and back) and through a patch of the result. Nothing may panic,
// and whatever validation accepts must survive the round trip through the
// store unchanged.
//
//	go test -run XXX -fuzz FuzzDecodeManifest -fuzztime 60s ./server/api/
func FuzzDecodeManifest(f *testing.F) {
	seeds := []string{
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"y"}},"data":{"k":"v"}}`,
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: orch/hello:dev\n    ports: [{containerPort: 80}]\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: x}]}\n",
		"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: '*/5 * * * *'\n  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}}\n",
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":80,"targetPort":"http"}],"selector":{"a":"b"}}}`,
		`{"metadata":{"name":"x","name":"y"}}`,
		`{"spec":{"unknown":1}}`,
		"a: [",
	}
	for _, s := range seeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	srv := New(Config{Now: func() time.Time { return time.Unix(1700000000, 0) }})
	f.Fuzz(func(t *testing.T, data []byte, yamlBody bool) {
		ct := "application/json"
		if yamlBody {
			ct = "application/yaml"
		}
		body, err := toJSON(ct, data)
		if err != nil {
			return
		}
		for _, res := range resources {
			obj, _, err := decodeObject(res, body, "Strict")
			if err != nil {
				continue
			}
			if res.namespaced {
				obj.SetNamespace("default")
			} else {
				obj.SetNamespace("")
			}
			if obj.GetName() == "" {
				obj.SetName("fuzz")
			}
			srv.prepareCreate(res, obj)
			applyDefaults(obj)
			finishCreate(obj)
			errs := validateCreate(obj)
			unsupportedFields(obj)
			stored, err := encodeForStore(res, obj)
			if err != nil {
				t.Fatalf("%s: encode: %v", res.kind, err)
			}
			back, err := decodeStored(res, stored, 7)
			if err != nil {
				t.Fatalf("%s: decode what was stored: %v", res.kind, err)
			}
			again, err := encodeForStore(res, back)
			if err != nil {
				t.Fatalf("%s: encode again: %v", res.kind, err)
			}
			if len(errs) == 0 && !bytes.Equal(stored, again) {
				t.Fatalf("%s: the store round trip changed the object:\n%s\n%s", res.kind, stored, again)
			}
			withRV(stored, 7)
			// An update to the same object must not panic either.
			cur, _ := decodeStored(res, stored, 7)
			if _, _, err := srv.update(res, back, cur, ""); err != nil {
				continue
			}
		}
	})
}
