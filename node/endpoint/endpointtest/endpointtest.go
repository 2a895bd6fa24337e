// Package endpointtest runs pods' containers on the real Docker Engine for
// the tests of the agent endpoint and of its clients, and resolves a pod's
// container to the engine's container by the labels every container
// carries, the way an agent does. Everything it starts is removed when the
// test ends.
package endpointtest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/node/runtime"
	"orch.dev/orch/node/runtime/docker"
)

// Token is the endpoint token the tests' servers accept.
const Token = "endpointtest-agent-token"

// Fixture is one test's share of the Docker Engine: containers labelled
// with a node name of its own.
type Fixture struct {
	Runtime *docker.Docker
	// Node is the node label of every container the fixture starts.
	Node string

	ctx       context.Context
	mu        sync.Mutex
	sandboxes map[string]string // namespace/pod: sandbox ID
	uids      map[string]string // namespace/pod: pod UID
	attempts  map[string]int    // namespace/pod/container: instances started
}

// New connects to Docker Engine (skipping the test without one, failing it
// under CI) and builds orch/hello:dev.
func New(t testing.TB) *Fixture {
	t.Helper()
	testutil.RequireDocker(t)
	testutil.BuildHelloImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := docker.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &Fixture{
		Runtime: d, Node: "endpoint-test-" + uuid.NewString()[:8], ctx: ctx,
		sandboxes: map[string]string{}, uids: map[string]string{}, attempts: map[string]int{},
	}
	testutil.CleanupDocker(t, runtime.LabelNode, f.Node)
	return f
}

// Run starts the next instance of a pod's container from spec (the image
// defaults to orch/hello:dev), in the pod's sandbox, which it starts on
// first use. It returns the engine's container ID.
func (f *Fixture) Run(t testing.TB, namespace, pod, container string, spec runtime.ContainerSpec) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	podKey := namespace + "/" + pod
	if f.sandboxes[podKey] == "" {
		f.uids[podKey] = uuid.NewString()
		sb, err := f.Runtime.RunSandbox(f.ctx, runtime.SandboxSpec{
			Labels: f.labels(namespace, pod, "", runtime.RoleSandbox, 0), Hostname: pod, Network: "bridge",
		})
		if err != nil {
			t.Fatal(err)
		}
		f.sandboxes[podKey] = sb.ID
	}
	key := podKey + "/" + container
	attempt := f.attempts[key]
	f.attempts[key]++
	spec.Labels = f.labels(namespace, pod, container, runtime.RoleApp, attempt)
	spec.SandboxID = f.sandboxes[podKey]
	if spec.Image == "" {
		spec.Image = testutil.HelloImage
	}
	id, err := f.Runtime.CreateContainer(f.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Runtime.StartContainer(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *Fixture) labels(namespace, pod, container, role string, attempt int) map[string]string {
	return map[string]string{
		runtime.LabelManaged: "true", runtime.LabelNode: f.Node, runtime.LabelPodUID: f.uids[namespace+"/"+pod],
		runtime.LabelPodNamespace: namespace, runtime.LabelPodName: pod, runtime.LabelContainer: container,
		runtime.LabelRole: role, runtime.LabelAttempt: strconv.Itoa(attempt),
	}
}

// WaitExit waits until the container has exited.
func (f *Fixture) WaitExit(t testing.TB, id string) runtime.Container {
	t.Helper()
	var c runtime.Container
	testutil.Eventually(t, 30*time.Second, func() string {
		var err error
		if c, err = f.Runtime.InspectContainer(f.ctx, id); err != nil {
			return err.Error()
		}
		if c.State != runtime.StateExited {
			return fmt.Sprintf("container %s is %s, not exited", c.Name, c.State)
		}
		return ""
	})
	return c
}

// Resolve is an endpoint.Config.Resolve over the fixture's containers: the
// latest instance of the pod's container, or with previous the one before
// it once that has exited.
func (f *Fixture) Resolve(ctx context.Context, namespace, pod, container string, previous bool) (string, bool, error) {
	list, err := f.Runtime.ListContainers(ctx, map[string]string{
		runtime.LabelNode: f.Node, runtime.LabelPodNamespace: namespace, runtime.LabelPodName: pod,
		runtime.LabelContainer: container, runtime.LabelRole: runtime.RoleApp,
	})
	if err != nil {
		return "", false, err
	}
	attempt := func(c runtime.Container) int {
		n, _ := strconv.Atoi(c.Labels[runtime.LabelAttempt]) // the fixture wrote it
		return n
	}
	slices.SortFunc(list, func(a, b runtime.Container) int { return cmp.Compare(attempt(b), attempt(a)) })
	i := 0
	if previous {
		i = 1
	}
	if len(list) <= i || previous && list[i].State != runtime.StateExited {
		return "", false, fmt.Errorf("container %q of pod %s/%s (previous %v): %w", container, namespace, pod, previous, runtime.ErrNotFound)
	}
	// tty is not tracked: logs and exec do not need it.
	return list[i].ID, false, nil
}
