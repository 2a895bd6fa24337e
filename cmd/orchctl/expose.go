package main

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	podsGR     = schema.GroupResource{Resource: "pods"}
	servicesGR = schema.GroupResource{Resource: "services"}
)

func (s *session) exposeCommand() *cli.Command {
	return &cli.Command{
		Name:      "expose",
		Usage:     "make a Service for the pods of a deployment, replica set, replication controller, pod or service",
		ArgsUsage: "KIND/NAME | KIND NAME",
		Description: "The Service selects what the object selects (a pod: its labels) and carries the object's labels.\n" +
			"Without --port it serves the ports the object's containers (or a service's ports) declare.\n" +
			"Example: orchctl expose deployment/web --port 80 --target-port 8080 --type NodePort",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Usage: "the `PORT` the Service serves on"},
			&cli.StringFlag{Name: "target-port", Usage: "the pods' `PORT` (number or container port name) traffic goes to; default the same as --port"},
			&cli.StringFlag{Name: "type", Value: string(corev1.ServiceTypeClusterIP), Usage: "the Service `TYPE`: ClusterIP, NodePort or LoadBalancer"},
			&cli.StringFlag{Name: "name", Usage: "the Service's `NAME` (default: the object's)"},
			&cli.StringFlag{Name: "protocol", Value: string(corev1.ProtocolTCP), Usage: "the `PROTOCOL`: TCP, UDP or SCTP"},
		},
		BashComplete: completeKinds,
		Action:       s.expose,
	}
}

// exposeSource is what expose learns from the object it exposes.
type exposeSource struct {
	labels   map[string]string
	selector map[string]string
	ports    []corev1.ServicePort
}

func (s *session) expose(c *cli.Context) error {
	typ, err := serviceType(c.String("type"))
	if err != nil {
		return err
	}
	proto, err := protocol(c.String("protocol"))
	if err != nil {
		return err
	}
	if c.IsSet("port") && (c.Int("port") < 1 || c.Int("port") > 65535) {
		return fmt.Errorf("--port %d: want a port number 1-65535", c.Int("port"))
	}
	if c.NArg() > 2 {
		return fmt.Errorf("expose takes one object: KIND/NAME or KIND NAME")
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, c.Args().Slice(),
		"only deployments, replica sets, replication controllers, pods and services can be exposed",
		deploymentsGR, replicaSetsGR, controllersGR, podsGR, servicesGR)
	if err != nil {
		return err
	}
	if len(ws) != 1 {
		return fmt.Errorf("expose takes one object, not %d", len(ws))
	}
	w := ws[0]
	src, err := s.exposeSourceOf(c, cn, w)
	if err != nil {
		return err
	}
	if len(src.selector) == 0 {
		return fmt.Errorf("%s has no selector to give the Service (a deployment or replica set needs spec.selector.matchLabels, a pod labels)", w)
	}
	name := c.String("name")
	if name == "" {
		name = w.name
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: src.labels},
		Spec:       corev1.ServiceSpec{Type: typ, Selector: src.selector},
	}
	switch {
	case c.IsSet("port"):
		p := corev1.ServicePort{Port: int32(c.Int("port")), Protocol: proto}
		if tp := c.String("target-port"); tp != "" {
			p.TargetPort = intstr.Parse(tp)
		}
		svc.Spec.Ports = []corev1.ServicePort{p}
	case len(src.ports) == 0:
		return fmt.Errorf("%s declares no ports: say which with --port", w)
	default:
		svc.Spec.Ports = src.ports
		if tp := c.String("target-port"); tp != "" {
			if len(src.ports) > 1 {
				return fmt.Errorf("--target-port needs --port: %s has %d ports", w, len(src.ports))
			}
			svc.Spec.Ports[0].TargetPort = intstr.Parse(tp)
		}
		if c.IsSet("protocol") {
			for i := range svc.Spec.Ports {
				svc.Spec.Ports[i].Protocol = proto
			}
		}
	}
	created, err := cn.clientset.CoreV1().Services(cn.namespace).Create(c.Context, svc, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, "service/"+created.Name+" exposed")
	return nil
}

// exposeSourceOf reads the labels, selector and ports of the object.
func (s *session) exposeSourceOf(c *cli.Context, cn *connection, w workload) (*exposeSource, error) {
	ctx, ns := c.Context, cn.namespace
	core, apps := cn.clientset.CoreV1(), cn.clientset.AppsV1()
	fromSelector := func(sel *metav1.LabelSelector) (map[string]string, error) {
		if sel == nil {
			return nil, nil
		}
		if len(sel.MatchExpressions) > 0 {
			return nil, fmt.Errorf("%s selects with matchExpressions, which a Service selector cannot express: write the Service by hand", w)
		}
		return maps.Clone(sel.MatchLabels), nil
	}
	src := &exposeSource{}
	switch w.gr() {
	case deploymentsGR:
		d, err := apps.Deployments(ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		sel, err := fromSelector(d.Spec.Selector)
		if err != nil {
			return nil, err
		}
		src.labels, src.selector, src.ports = d.Labels, sel, containerServicePorts(d.Spec.Template.Spec.Containers)
	case replicaSetsGR:
		rs, err := apps.ReplicaSets(ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		sel, err := fromSelector(rs.Spec.Selector)
		if err != nil {
			return nil, err
		}
		src.labels, src.selector, src.ports = rs.Labels, sel, containerServicePorts(rs.Spec.Template.Spec.Containers)
	case controllersGR:
		rc, err := core.ReplicationControllers(ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		src.labels, src.selector = rc.Labels, maps.Clone(rc.Spec.Selector)
		if rc.Spec.Template != nil {
			src.ports = containerServicePorts(rc.Spec.Template.Spec.Containers)
		}
	case podsGR:
		p, err := core.Pods(ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		src.labels, src.selector, src.ports = p.Labels, maps.Clone(p.Labels), containerServicePorts(p.Spec.Containers)
	case servicesGR:
		svc, err := core.Services(ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		src.labels, src.selector = svc.Labels, maps.Clone(svc.Spec.Selector)
		for _, p := range svc.Spec.Ports {
			src.ports = append(src.ports, corev1.ServicePort{Name: p.Name, Port: p.Port, Protocol: p.Protocol, TargetPort: p.TargetPort, AppProtocol: p.AppProtocol})
		}
	default:
		return nil, fmt.Errorf("%s cannot be exposed", w)
	}
	return src, nil
}

// containerServicePorts are Service ports for the containers' declared
// ports, named port-1, port-2, ... when there are several, as kubectl
// names them.
func containerServicePorts(cs []corev1.Container) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, c := range cs {
		for _, p := range c.Ports {
			out = append(out, corev1.ServicePort{Port: p.ContainerPort, Protocol: p.Protocol, TargetPort: intstr.FromInt32(p.ContainerPort)})
		}
	}
	if len(out) > 1 {
		for i := range out {
			out[i].Name = "port-" + strconv.Itoa(i+1)
		}
	}
	return out
}

func serviceType(s string) (corev1.ServiceType, error) {
	for _, t := range []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer} {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("--type %q: want ClusterIP, NodePort or LoadBalancer", s)
}

func protocol(s string) (corev1.Protocol, error) {
	for _, p := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("--protocol %q: want TCP, UDP or SCTP", s)
}
