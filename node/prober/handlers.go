package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"

	"orch.dev/orch/internal/version"
	rt "orch.dev/orch/node/runtime"
)

// maxOutput bounds how much of a response body or command output is read;
// the kubelet keeps 10 KiB too.
const maxOutput = 10 << 10

// maxRedirects is how many same-host redirects an httpGet follows.
const maxRedirects = 10

// userAgent is sent by httpGet probes and hooks; applications that single
// out the kubelet's probes look for the "kube-probe/" prefix.
var userAgent = "kube-probe/" + version.KubeMajor + "." + version.KubeMinor

// Execer runs a command in a container; runtime.Runtime is one.
type Execer interface {
	Exec(ctx context.Context, id string, opts rt.ExecOptions) (int, error)
}

// Result is the outcome of one probe.
type Result struct {
	Success bool
	// Message says why a probe failed, as the kubelet words it ("HTTP
	// probe failed with statuscode: 500"); empty on success.
	Message string
}

func success() Result                    { return Result{Success: true} }
func failure(msg string) Result          { return Result{Message: msg} }
func failuref(f string, a ...any) Result { return failure(fmt.Sprintf(f, a...)) }

// Target is the container a handler acts on.
type Target struct {
	// PodIP is where network handlers connect unless they name a host.
	PodIP string
	// ContainerID is where exec handlers run.
	ContainerID string
	// Ports are the container's declared ports, for ports given by name.
	Ports []corev1.ContainerPort
}

// Runner executes probe and hook handlers.
type Runner struct {
	exec  Execer
	clock clock.Clock
	http  *http.Client
}

// NewRunner returns a runner that executes commands through ex (nil: exec
// handlers fail) and measures time with clk (nil: the real clock).
func NewRunner(ex Execer, clk clock.Clock) *Runner {
	if clk == nil {
		clk = clock.RealClock{}
	}
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true, // each probe is a fresh connection, as the kubelet's
		// Probes check that the server answers, not who it is: the
		// kubelet does not verify certificates either.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Runner{exec: ex, clock: clk, http: &http.Client{Transport: tr, CheckRedirect: sameHostRedirects}}
}

// sameHostRedirects follows redirects only to the host first asked; a
// redirect elsewhere ends the chain and its 3xx answer counts as success.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// Probe runs a probe's handler once with the probe's timeout.
func (r *Runner) Probe(ctx context.Context, p *corev1.Probe, t Target) Result {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	h := p.ProbeHandler
	switch {
	case h.HTTPGet != nil:
		return r.HTTPGet(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		return r.TCPSocket(ctx, h.TCPSocket, t, timeout)
	case h.Exec != nil:
		return r.Exec(ctx, h.Exec.Command, t, timeout)
	case h.GRPC != nil:
		return r.GRPC(ctx, h.GRPC, t, timeout)
	}
	return failure("probe has no handler")
}

// resolvePort turns a port number or a container port's name into a number.
func resolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	n := p.IntValue()
	if p.Type == intstr.String {
		n = 0
		for _, cp := range ports {
			if cp.Name == p.StrVal {
				n = int(cp.ContainerPort)
				break
			}
		}
		if n == 0 {
			return 0, fmt.Errorf("couldn't find port %q in the container's ports", p.StrVal)
		}
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", n)
	}
	return n, nil
}

func hostOr(host, podIP string) string {
	if host != "" {
		return host
	}
	return podIP
}

// httpRequest builds the request an httpGet handler makes.
func httpRequest(ctx context.Context, g *corev1.HTTPGetAction, t Target) (*http.Request, error) {
	port, err := resolvePort(g.Port, t.Ports)
	if err != nil {
		return nil, err
	}
	host := hostOr(g.Host, t.PodIP)
	if host == "" {
		return nil, errors.New("the pod has no IP yet")
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	// The probe's headers replace the defaults of the same name; a name
	// given several times is sent with every value.
	given := map[string]bool{}
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		key := http.CanonicalHeaderKey(h.Name)
		if !given[key] {
			req.Header.Del(key)
			given[key] = true
		}
		req.Header.Add(key, h.Value)
	}
	return req, nil
}

// HTTPGet runs an httpGet probe: a status from 200 to 399 passes.
func (r *Runner) HTTPGet(ctx context.Context, g *corev1.HTTPGetAction, t Target, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := r.doHTTP(ctx, g, t)
	if err != nil {
		return failure(err.Error())
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return success()
	}
	return failuref("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

// doHTTP makes the request and reads (and drops) the start of the body.
func (r *Runner) doHTTP(ctx context.Context, g *corev1.HTTPGetAction, t Target) (*http.Response, error) {
	req, err := httpRequest(ctx, g, t)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxOutput)); err != nil {
		return nil, err
	}
	return resp, nil
}

// TCPSocket runs a tcpSocket probe: a connection that opens passes.
func (r *Runner) TCPSocket(ctx context.Context, s *corev1.TCPSocketAction, t Target, timeout time.Duration) Result {
	port, err := resolvePort(s.Port, t.Ports)
	if err != nil {
		return failure(err.Error())
	}
	host := hostOr(s.Host, t.PodIP)
	if host == "" {
		return failure("the pod has no IP yet")
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return failure(err.Error())
	}
	_ = conn.Close() // the probe passed when the connection opened
	return success()
}

// Exec runs a command in the container: exit code 0 passes; the output is
// the failure message.
func (r *Runner) Exec(ctx context.Context, cmd []string, t Target, timeout time.Duration) Result {
	code, out, err := r.runCommand(ctx, cmd, t, timeout)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return failuref("command %q timed out after %s", strings.Join(cmd, " "), timeout)
	case err != nil:
		return failure(err.Error())
	case code != 0:
		if out != "" {
			return failure(out)
		}
		return failuref("command %q exited with %d", strings.Join(cmd, " "), code)
	}
	return success()
}

// runCommand runs cmd in the container with a timeout (none when 0) and
// returns its exit code and the start of its output.
func (r *Runner) runCommand(ctx context.Context, cmd []string, t Target, timeout time.Duration) (int, string, error) {
	if r.exec == nil {
		return -1, "", errors.New("exec is not available")
	}
	if len(cmd) == 0 {
		return -1, "", errors.New("exec: no command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var out limitedBuffer
	code, err := r.exec.Exec(ctx, t.ContainerID, rt.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if ctx.Err() != nil {
		return -1, out.String(), ctx.Err()
	}
	if err != nil {
		return -1, out.String(), err
	}
	return code, out.String(), nil
}

// GRPC runs a grpc probe: grpc.health.v1.Health/Check answering SERVING
// passes.
func (r *Runner) GRPC(ctx context.Context, g *corev1.GRPCAction, t Target, timeout time.Duration) Result {
	if t.PodIP == "" {
		return failure("the pod has no IP yet")
	}
	if g.Port < 1 || g.Port > 65535 {
		return failuref("invalid port number: %d", g.Port)
	}
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(userAgent))
	if err != nil {
		return failuref("error: failed to connect service %q: %v", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		switch status.Code(err) {
		case codes.Unimplemented:
			return failuref("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", status.Convert(err).Message())
		case codes.DeadlineExceeded:
			return failuref("timeout: health rpc did not complete within %v", timeout)
		}
		return failuref("error: health rpc probe failed: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return failuref("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return success()
}

// limitedBuffer keeps the first maxOutput bytes written to it, from
// several writers at once.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
