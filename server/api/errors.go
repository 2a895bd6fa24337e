package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/raftstore"
	"orch.dev/orch/server/encryption"
)

// storeError maps a store error to the API error a client can act on.
func storeError(err error) error {
	var se apierrors.APIStatus
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, raftstore.ErrNoLeader):
		e := apierrors.NewServiceUnavailable("no Raft leader: the control plane is electing a leader or has lost its quorum; retry shortly, and make sure a majority of servers is running (orchctl operator raft list-peers): " + err.Error())
		e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
		return e
	case errors.Is(err, raftstore.ErrCompacted), errors.Is(err, encryption.ErrUnknownKey):
		// A value sealed with a retired key is history the store no
		// longer serves, as if compacted.
		return apierrors.NewResourceExpired("too old resource version: it is older than this server's watch history; list again to get a current resourceVersion")
	case errors.Is(err, encryption.ErrKeyringChanged):
		return apierrors.NewConflict(secretKeysGR, "", err)
	case errors.Is(err, raftstore.ErrFutureRevision):
		return tooLargeResourceVersion()
	case errors.Is(err, raftstore.ErrValueTooLarge):
		return apierrors.NewRequestEntityTooLargeError(err.Error())
	case errors.Is(err, raftstore.ErrClosed):
		return apierrors.NewServiceUnavailable("the server is shutting down; retry against another server")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError("the request did not complete in time: "+err.Error(), 1)
	}
	return apierrors.NewInternalError(err)
}

func tooLargeResourceVersion() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusGatewayTimeout, Reason: metav1.StatusReasonTimeout,
		Message: "Too large resource version: this server has not reached it yet",
		Details: &metav1.StatusDetails{
			Causes:            []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}},
			RetryAfterSeconds: 1,
		},
	}}
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}
