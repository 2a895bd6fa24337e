package endpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"orch.dev/orch/node/runtime"
)

// TestExitStatusWire pins the error channel's bytes: client-go reads
// exactly these fields to return nil, exec.CodeExitError or an error.
func TestExitStatusWire(t *testing.T) {
	cases := []struct {
		name string
		code int
		err  error
		want string
	}{
		{name: "success", want: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}`},
		{name: "exit code", code: 3, want: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
			`"message":"command terminated with non-zero exit code 3","reason":"NonZeroExitCode",` +
			`"details":{"causes":[{"reason":"ExitCode","message":"3"}]},"code":500}`},
		{name: "could not run", code: -1, err: errors.New("docker: exec: boom"), want: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
			`"message":"docker: exec: boom","reason":"InternalError","code":500}`},
		{name: "container gone", code: -1, err: fmt.Errorf("docker: exec: %w", runtime.ErrNotFound), want: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
			`"message":"docker: exec: runtime: not found","reason":"NotFound","code":404}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(exitStatus(tc.code, tc.err))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got %s, want %s", b, tc.want)
			}
		})
	}
}
