package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"
	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	wstransport "k8s.io/client-go/transport/websocket"
	"k8s.io/streaming/pkg/httpstream"
)

const portForwardUsage = "orchctl port-forward POD|pod/NAME|svc/NAME|deployment/NAME [LOCAL:]REMOTE [...] [--address 127.0.0.1]"

// The WebSocket subprotocols orchctl offers for port forwarding, preferred
// first: v5 can tell the agent that the local side has closed.
var portForwardProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}

func (s *session) portForwardCommand() *cli.Command {
	return &cli.Command{
		Name:      "port-forward",
		Usage:     "forward local ports to a pod",
		ArgsUsage: "POD|pod/NAME|svc/NAME|deployment/NAME [LOCAL:]REMOTE [...]",
		Description: "Each port is LOCAL:REMOTE, :REMOTE (a free local port) or PORT (the same both sides).\n" +
			"REMOTE is a container port of the pod (a number or a port name); for svc/NAME it is a\n" +
			"port of the Service, forwarded to its target port on one Running and Ready pod behind\n" +
			"it; deployment/NAME (or replicaset/, statefulset/, daemonset/) picks one such pod of\n" +
			"the workload. Every local connection is carried by a WebSocket of its own through the\n" +
			"API server to the pod's node. Runs until Ctrl-C, or until the pod is deleted or stops\n" +
			"running.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Value: "127.0.0.1", Usage: "local addresses to listen on, comma-separated (localhost means 127.0.0.1)"},
		},
		Action: s.portForward,
	}
}

// portSpec is one LOCAL:REMOTE argument; local 0 asks for a free port.
type portSpec struct {
	local  int
	remote string // a number or a port name, as given
	target int    // the pod's port, once resolved
}

// parsePortSpecs reads the LOCAL:REMOTE arguments.
func parsePortSpecs(args []string) ([]portSpec, error) {
	if len(args) == 0 {
		return nil, errors.New("port-forward needs at least one port: " + portForwardUsage)
	}
	var out []portSpec
	for _, a := range args {
		local, remote, both := strings.Cut(a, ":")
		if !both {
			local, remote = a, a
		}
		if remote == "" {
			return nil, fmt.Errorf("port %q: the remote port is missing: want [LOCAL:]REMOTE", a)
		}
		sp := portSpec{remote: remote}
		if local != "" {
			n, err := strconv.ParseUint(local, 10, 16)
			if err != nil || !both && n == 0 {
				return nil, fmt.Errorf("port %q: local port %q is not a port number (0 to 65535)", a, local)
			}
			sp.local = int(n)
		}
		if n, err := strconv.Atoi(remote); err == nil && (n < 1 || n > 65535) {
			return nil, fmt.Errorf("port %q: remote port %d is out of range (1 to 65535)", a, n)
		}
		out = append(out, sp)
	}
	return out, nil
}

func (s *session) portForward(c *cli.Context) error {
	if c.NArg() < 2 {
		return errors.New("port-forward needs a pod and at least one port: " + portForwardUsage)
	}
	specs, err := parsePortSpecs(c.Args().Slice()[1:])
	if err != nil {
		return err
	}
	var addrs []string
	for _, a := range strings.Split(c.String("address"), ",") {
		a = strings.TrimSpace(a)
		if a == "localhost" {
			a = "127.0.0.1"
		}
		if net.ParseIP(a) == nil {
			return fmt.Errorf("--address %q: want IP addresses (or localhost), comma-separated", a)
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	pod, err := s.forwardTarget(c.Context, cn, c.Args().First(), specs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	fwd := &forwarder{s: s, cn: cn, pod: pod}
	for i := range specs {
		sp := &specs[i]
		for _, a := range addrs {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(sp.local)))
			if err != nil {
				return fmt.Errorf("listening on %s for port %s: %w", net.JoinHostPort(a, strconv.Itoa(sp.local)), sp.remote, err)
			}
			lns = append(lns, ln)
			// A free port, once picked, is the same on every address.
			sp.local = ln.Addr().(*net.TCPAddr).Port
			fmt.Fprintf(s.stdout, "Forwarding from %s -> %d\n", ln.Addr(), sp.target)
		}
	}
	var wg sync.WaitGroup
	i := 0
	for _, sp := range specs {
		for range addrs {
			ln := lns[i]
			i++
			wg.Add(1)
			go func() {
				defer wg.Done()
				fwd.serve(ctx, ln, sp)
			}()
		}
	}
	gone := make(chan error, 1)
	go func() { gone <- watchPodGone(ctx, cn, pod) }()
	var stopErr error
	select {
	case <-ctx.Done():
	case stopErr = <-gone:
	}
	// Stop accepting, end the connections in flight, and wait for them.
	cancel()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	return stopErr
}

// watchPodGone returns an error once the pod is deleted or stops running,
// and nil when ctx ends first: the pod is fixed when the command starts,
// and forwarding to a pod that is gone would only fail connection after
// connection.
func watchPodGone(ctx context.Context, cn *connection, pod *corev1.Pod) error {
	pods := cn.clientset.CoreV1().Pods(pod.Namespace)
	stopped := func(p *corev1.Pod, deleted bool) error {
		switch {
		case deleted || p.UID != pod.UID:
			return fmt.Errorf("pod %s was deleted: port forwarding stopped", pod.Name)
		case p.Status.Phase != corev1.PodRunning:
			return fmt.Errorf("pod %s is no longer running (phase %s): port forwarding stopped", pod.Name, p.Status.Phase)
		}
		return nil
	}
	rv := pod.ResourceVersion
	for {
		if rv == "" {
			// The watch failed or fell behind: look again after a moment,
			// as long as the command runs.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
			p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return stopped(pod, true)
			}
			if err != nil {
				continue
			}
			if err := stopped(p, false); err != nil {
				return err
			}
			rv = p.ResourceVersion
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name, ResourceVersion: rv})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			rv = ""
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ev.Type == watch.Error || !ok {
				rv = ""
				break
			}
			rv = p.ResourceVersion
			if err := stopped(p, ev.Type == watch.Deleted); err != nil {
				w.Stop()
				return err
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// forwardTarget resolves the argument to a Running pod and the specs'
// remote ports to the pod's port numbers.
func (s *session) forwardTarget(ctx context.Context, cn *connection, arg string, specs []portSpec) (*corev1.Pod, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok {
		kind, name = "pod", arg
	}
	if name == "" {
		return nil, fmt.Errorf("%q: the name is missing", arg)
	}
	core := cn.clientset.CoreV1()
	var (
		pod *corev1.Pod
		svc *corev1.Service
		err error
	)
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		if pod, err = core.Pods(cn.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
	case "service", "services", "svc":
		if svc, err = core.Services(cn.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
		if len(svc.Spec.Selector) == 0 {
			return nil, fmt.Errorf("service %s has no selector: there are no pods behind it to forward to", name)
		}
		if pod, err = pickPod(ctx, cn, labels.SelectorFromSet(svc.Spec.Selector), "service "+name); err != nil {
			return nil, err
		}
	case "deployment", "deployments", "deploy", "replicaset", "replicasets", "rs",
		"statefulset", "statefulsets", "sts", "daemonset", "daemonsets", "ds":
		what, ls, err := workloadSelector(ctx, cn, strings.ToLower(kind), name)
		if err != nil {
			return nil, err
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if pod, err = pickPod(ctx, cn, sel, what); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%q: port-forward works on pods, services and workloads: pass POD, pod/NAME, svc/NAME, deployment/NAME, replicaset/NAME, statefulset/NAME or daemonset/NAME", arg)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nil, fmt.Errorf("pod %s is not running (phase %s): cannot forward to it", pod.Name, pod.Status.Phase)
	}
	for i := range specs {
		sp := &specs[i]
		remote := intstr.Parse(sp.remote)
		if svc != nil {
			if remote, err = serviceTargetPort(svc, sp.remote); err != nil {
				return nil, err
			}
		}
		if sp.target, err = podPort(pod, remote); err != nil {
			return nil, err
		}
	}
	return pod, nil
}

// workloadSelector reads the pod selector of a Deployment, ReplicaSet,
// StatefulSet or DaemonSet.
func workloadSelector(ctx context.Context, cn *connection, kind, name string) (string, *metav1.LabelSelector, error) {
	apps := cn.clientset.AppsV1()
	get := metav1.GetOptions{}
	switch kind {
	case "deployment", "deployments", "deploy":
		o, err := apps.Deployments(cn.namespace).Get(ctx, name, get)
		if err != nil {
			return "", nil, err
		}
		return "deployment " + name, o.Spec.Selector, nil
	case "replicaset", "replicasets", "rs":
		o, err := apps.ReplicaSets(cn.namespace).Get(ctx, name, get)
		if err != nil {
			return "", nil, err
		}
		return "replicaset " + name, o.Spec.Selector, nil
	case "statefulset", "statefulsets", "sts":
		o, err := apps.StatefulSets(cn.namespace).Get(ctx, name, get)
		if err != nil {
			return "", nil, err
		}
		return "statefulset " + name, o.Spec.Selector, nil
	default:
		o, err := apps.DaemonSets(cn.namespace).Get(ctx, name, get)
		if err != nil {
			return "", nil, err
		}
		return "daemonset " + name, o.Spec.Selector, nil
	}
}

// pickPod picks a Running pod the selector matches, a Ready one first,
// then the newest.
func pickPod(ctx context.Context, cn *connection, sel labels.Selector, what string) (*corev1.Pod, error) {
	list, err := cn.clientset.CoreV1().Pods(cn.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var best *corev1.Pod
	better := func(p *corev1.Pod) bool {
		if best == nil {
			return true
		}
		if pr, br := podIsReady(p), podIsReady(best); pr != br {
			return pr
		}
		return best.CreationTimestamp.Before(&p.CreationTimestamp)
	}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if better(p) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no running pods behind %s (%d pods match its selector %s)", what, len(list.Items), sel)
	}
	return best, nil
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serviceTargetPort maps a Service's port (number or name) to its target
// port.
func serviceTargetPort(svc *corev1.Service, remote string) (intstr.IntOrString, error) {
	n, numeric := strconv.Atoi(remote)
	var have []string
	for _, p := range svc.Spec.Ports {
		if numeric == nil && int(p.Port) == n || numeric != nil && p.Name == remote {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				return intstr.IntOrString{}, fmt.Errorf("service %s port %s is %s: only TCP can be forwarded", svc.Name, remote, p.Protocol)
			}
			if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 || p.TargetPort.Type == intstr.String && p.TargetPort.StrVal == "" {
				return intstr.FromInt32(p.Port), nil
			}
			return p.TargetPort, nil
		}
		have = append(have, strconv.Itoa(int(p.Port)))
	}
	return intstr.IntOrString{}, fmt.Errorf("service %s has no port %s (its ports: %s)", svc.Name, remote, strings.Join(have, ", "))
}

// podPort resolves a port number or a container port's name on the pod.
func podPort(pod *corev1.Pod, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return int(port.IntVal), nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port.StrVal {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s has no container port named %q", pod.Name, port.StrVal)
}

// forwarder carries local connections to the pod.
type forwarder struct {
	s   *session
	cn  *connection
	pod *corev1.Pod
	mu  sync.Mutex // one message to stdout/stderr at a time
}

func (f *forwarder) say(w io.Writer, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// serve accepts connections until the listener closes.
func (f *forwarder) serve(ctx context.Context, ln net.Listener, sp portSpec) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.say(f.s.stdout, "Handling connection for %d\n", sp.local)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := f.forward(ctx, c, sp.target); err != nil {
				f.say(f.s.stderr, "error: forwarding %d -> %d: %v\n", sp.local, sp.target, err)
			}
		}()
	}
}

// forward carries one local connection over a WebSocket of its own: data
// on channel 0, the agent's errors on channel 1, each channel starting
// with the port number.
func (f *forwarder) forward(ctx context.Context, local net.Conn, port int) error {
	u := f.cn.clientset.CoreV1().RESTClient().Get().
		Resource("pods").Namespace(f.pod.Namespace).Name(f.pod.Name).SubResource("portforward").
		Param("ports", strconv.Itoa(port)).URL()
	rt, holder, err := wstransport.RoundTripperFor(f.cn.cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	ws, err := wstransport.Negotiate(rt, holder, req, portForwardProtocols...)
	var upgrade *httpstream.UpgradeFailureError
	if errors.As(err, &upgrade) {
		return errors.New(statusMessage(upgrade.Cause))
	}
	if err != nil {
		return err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()

	remoteErr := make(chan string, 1)
	go func() {
		msg, _ := readForwardStream(ws, local)
		// The pod's side has ended: so does the local connection.
		local.Close()
		remoteErr <- msg
	}()
	halfClose := ws.Subprotocol() == portForwardProtocols[0]
	buf := make([]byte, 32*1024)
	for {
		n, err := local.Read(buf)
		if n > 0 {
			if werr := ws.WriteMessage(gws.BinaryMessage, append([]byte{0}, buf[:n]...)); werr != nil {
				break
			}
		}
		if err != nil {
			switch {
			case !errors.Is(err, io.EOF):
				ws.Close() // the local connection broke, or the pod's side ended it
			case halfClose:
				// The local side is done sending; the answer may follow.
				_ = ws.WriteMessage(gws.BinaryMessage, []byte{255, 0}) // a dead WebSocket shows in the reader
			}
			break
		}
	}
	msg := <-remoteErr
	_ = ws.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, ""), time.Now().Add(time.Second)) // best effort
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}

// readForwardStream copies the data channel to w until the WebSocket
// closes, and returns what the error channel said.
func readForwardStream(ws *gws.Conn, w io.Writer) (string, error) {
	var (
		skip   = [2]int{2, 2} // the port number heading each channel
		errMsg []byte
		broken bool
	)
	for {
		typ, p, err := ws.ReadMessage()
		if err != nil {
			if gws.IsCloseError(err, gws.CloseNormalClosure) {
				err = nil
			}
			return string(errMsg), err
		}
		if typ != gws.BinaryMessage || len(p) == 0 || p[0] > 1 {
			continue
		}
		ch, data := p[0], p[1:]
		k := min(skip[ch], len(data))
		skip[ch] -= k
		data = data[k:]
		switch {
		case ch == 1:
			errMsg = append(errMsg, data...)
		case !broken && len(data) > 0:
			if _, err := w.Write(data); err != nil {
				broken = true // the local side is gone; keep reading for the error
			}
		}
	}
}
