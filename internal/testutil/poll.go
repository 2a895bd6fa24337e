// Package testutil holds the helpers every test in orch shares: polling
// with a deadline, and fixtures.
package testutil

import (
	"testing"
	"time"
)

// Eventually calls check every interval until it returns "" (meaning done)
// or the timeout passes; then the test fails with the last message, which
// should say what is not ready yet.
func Eventually(t testing.TB, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after %v: %s", timeout, msg)
		}
		time.Sleep(interval)
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}
