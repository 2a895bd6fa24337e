package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// unknownKindError is returned when discovery has no resource by a name.
type unknownKindError struct{ name string }

func (e *unknownKindError) Error() string {
	return fmt.Sprintf("the server doesn't have a resource type %q", e.name)
}

// explain turns an error into the sentence a user can act on: which server
// could not be reached, which token was refused and where it came from, the
// API's own message (with every field path it named) for API errors.
func (s *session) explain(err error) string {
	host := "(unknown)"
	tokenFrom := ""
	if s.conn != nil {
		host = s.conn.cfg.Host
		tokenFrom = s.conn.tokenFrom
	}
	var (
		unknown  *unknownKindError
		noMatch  *meta.NoKindMatchError
		status   apierrors.APIStatus
		unknownA x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknown):
		return unknown.Error()
	case errors.As(err, &noMatch):
		return fmt.Sprintf("the server doesn't have a resource type for kind %q in %q", noMatch.GroupKind.Kind, noMatch.GroupKind.WithVersion(firstOr(noMatch.SearchedVersions, "")).GroupVersion().String())
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &unknownA), errors.As(err, &hostErr), errors.As(err, &certErr):
		return fmt.Sprintf("cannot verify the API server at %s: %v; pass --certificate-authority FILE, or use the kubeconfig the server wrote to <data-dir>/admin.kubeconfig", host, rootCause(err))
	case apierrors.IsUnauthorized(err):
		if tokenFrom == "" {
			return fmt.Sprintf("the API server at %s wants a token and none was given: pass --token TOKEN or use a client config with a token (<data-dir>/admin.kubeconfig)", host)
		}
		return fmt.Sprintf("the API server at %s refused the token %s (401 Unauthorized)", host, tokenFrom)
	case errors.As(err, &status):
		return statusMessage(err)
	}
	if reason, ok := unreachable(err); ok {
		return fmt.Sprintf("cannot reach the API server at %s: %s; is orchd running, and is --server or the kubeconfig right?", host, reason)
	}
	return err.Error()
}

// statusMessage is the API's message, followed by the field causes it
// sent that the message does not already mention.
func statusMessage(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err.Error()
	}
	st := status.Status()
	msg := st.Message
	if msg == "" {
		msg = err.Error()
	}
	if st.Details != nil {
		var extra []string
		for _, c := range st.Details.Causes {
			if c.Field == "" || strings.Contains(msg, c.Field) {
				continue
			}
			extra = append(extra, c.Field+": "+c.Message)
		}
		if len(extra) > 0 {
			msg += " (" + strings.Join(extra, "; ") + ")"
		}
	}
	return msg
}

// unreachable says whether err is a failure to reach the server at all,
// and why, in a few words.
func unreachable(err error) (string, bool) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host", true
	case errors.As(err, &dnsErr):
		return dnsErr.Error(), true
	case errors.As(err, &opErr):
		if opErr.Timeout() {
			return "timed out", true
		}
		return opErr.Err.Error(), true
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out", true
	}
	return "", false
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
