package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"orch.dev/orch/raftstore"
)

// AgentAccess is how the API reaches node agents for logs, exec and port
// forwarding.
type AgentAccess struct {
	// Transport verifies agents' certificates against the cluster CA.
	Transport http.RoundTripper
	// Token is the bearer token agents require.
	Token string
}

// podContainer resolves which container of a pod a logs or exec request is
// for: the named one, or the only one.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	if name != "" {
		for _, c := range pod.Spec.InitContainers {
			if c.Name == name {
				return name, nil
			}
		}
		for _, c := range pod.Spec.Containers {
			if c.Name == name {
				return name, nil
			}
		}
		return "", badRequest("container %s is not valid for pod %s", name, pod.Name)
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return "", badRequest("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))
}

// nodeEndpoint returns the https address of a node's agent endpoint.
func (s *Server) nodeEndpoint(ctx context.Context, nodeName string) (string, error) {
	nodes := s.reg.lookup("", "v1", "nodes")
	kv, _, err := s.store.Get(ctx, nodes.key("", nodeName), raftstore.ReadOptions{})
	if err != nil {
		return "", storeError(err)
	}
	if kv == nil {
		return "", apierrors.NewNotFound(corev1.Resource("nodes"), nodeName)
	}
	obj, err := decodeStored(nodes, kv.Value, kv.ModRevision)
	if err != nil {
		return "", apierrors.NewInternalError(err)
	}
	node := obj.(*corev1.Node)
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
			break
		}
	}
	if ip == "" || port == 0 {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has not reported the address of its agent yet", nodeName))
	}
	return "https://" + net.JoinHostPort(ip, strconv.Itoa(int(port))), nil
}

// serveNodeProxy proxies pods/log, pods/exec and pods/portforward to the
// pod's agent: GET /containerLogs/NS/POD/CONTAINER, /exec/NS/POD/CONTAINER
// and /portForward/NS/POD there.
func (s *Server) serveNodeProxy(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if s.cfg.Agents == nil {
		writeError(w, apierrors.NewServiceUnavailable("this server cannot reach node agents"))
		return
	}
	res := ri.resource
	kv, _, err := s.store.Get(ctx, res.key(ri.namespace, ri.name), raftstore.ReadOptions{Linearizable: true})
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	if kv == nil {
		writeError(w, notFound(res, ri.name))
		return
	}
	obj, err := decodeStored(res, kv.Value, kv.ModRevision)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		writeError(w, badRequest("pod %s is not scheduled to a node yet", pod.Name))
		return
	}
	q := r.URL.Query()
	var container string
	if ri.subresource != "portforward" {
		if container, err = podContainer(pod, q.Get("container")); err != nil {
			writeError(w, err)
			return
		}
	}
	base, err := s.nodeEndpoint(ctx, pod.Spec.NodeName)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	var path string
	switch ri.subresource {
	case "exec":
		path = "/exec/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	case "portforward":
		// Kubernetes' PodPortForwardOptions says ports; the agent, like the
		// kubelet, reads port.
		path = "/portForward/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name)
		q["port"] = append(q["port"], q["ports"]...)
		q.Del("ports")
	default:
		path = "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	}
	q.Del("container")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = path
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = q.Encode()
			pr.Out.Host = target.Host
			pr.Out.Header.Set("Authorization", "Bearer "+s.cfg.Agents.Token)
		},
		Transport:     s.cfg.Agents.Transport,
		FlushInterval: -1, // stream logs as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot reach the agent of node %s at %s: %v", pod.Spec.NodeName, target.Host, err)))
		},
	}
	// The proxied request runs as long as the stream: no request timeout.
	proxy.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
}
