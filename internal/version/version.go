// Package version says which orch this is. Version is set at build time with
// -ldflags "-X orch.dev/orch/internal/version.Version=...".
package version

import (
	"fmt"
	"runtime"
)

// Version of orch.
var Version = "0.1.0-dev"

// Kubernetes API level orch serves (the k8s.io/api release it is built with).
const (
	KubeMajor = "1"
	KubeMinor = "37"
)

// GitVersion is the Kubernetes-style version string the API reports.
func GitVersion() string { return fmt.Sprintf("v%s.%s.0-orch.%s", KubeMajor, KubeMinor, Version) }

// Platform is os/arch.
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }
