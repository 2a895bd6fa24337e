package main

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestStatusMessage(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0"),
		field.Required(field.NewPath("spec", "template", "spec", "containers"), ""),
	})
	// A Status whose message leaves out the fields its causes name.
	terse := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 422, Reason: metav1.StatusReasonInvalid, Message: "the deployment is invalid",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec.replicas", Message: "must be >= 0"},
			{Type: metav1.CauseTypeUnexpectedServerResponse, Message: "unknown"},
		}},
	}}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{name: "invalid, with the field paths", err: invalid,
			want: `Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers: Required value]`},
		{name: "causes the message leaves out are added", err: terse, want: "the deployment is invalid (spec.replicas: must be >= 0)"},
		{name: "wrapped", err: fmt.Errorf("applying: %w", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x")), want: `pods "x" not found`},
		{name: "not an API error", err: errors.New("plain"), want: "plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusMessage(tc.err); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
