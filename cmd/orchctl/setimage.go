package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

func (s *session) setCommand() *cli.Command {
	return &cli.Command{
		Name:  "set",
		Usage: "change one field of objects",
		Subcommands: []*cli.Command{{
			Name:      "image",
			Usage:     "change the image of containers in a pod template",
			ArgsUsage: "KIND/NAME... CONTAINER=IMAGE...",
			Description: "Works on deployments, daemon sets, stateful sets, replica sets and replication controllers;\n" +
				"CONTAINER is the name of a container or init container, or * for all of them.\n" +
				"Example: orchctl set image deployment/web app=orch/hello:v2",
			BashComplete: completeKinds,
			Action:       s.setImage,
		}},
	}
}

// imageChanges are the CONTAINER=IMAGE arguments of set image.
type imageChanges map[string]string

func parseImageChanges(args []string) (imageChanges, error) {
	ch := imageChanges{}
	for _, a := range args {
		name, image, _ := strings.Cut(a, "=")
		if name == "" || image == "" {
			return nil, fmt.Errorf("%q: want CONTAINER=IMAGE", a)
		}
		if _, err := reference.ParseAnyReference(image); err != nil {
			return nil, fmt.Errorf("%q: %v", a, err)
		}
		if old, dup := ch[name]; dup && old != image {
			return nil, fmt.Errorf("container %q is given two images, %q and %q", name, old, image)
		}
		ch[name] = image
	}
	return ch, nil
}

// apply sets the images in spec and reports whether anything changed; a
// named container the spec does not have is an error naming the ones it
// has.
func (ch imageChanges) apply(spec *corev1.PodSpec) (bool, error) {
	changed := false
	found := map[string]bool{}
	var names []string
	for _, list := range []*[]corev1.Container{&spec.InitContainers, &spec.Containers} {
		for i := range *list {
			c := &(*list)[i]
			names = append(names, c.Name)
			image, ok := ch[c.Name]
			if ok {
				found[c.Name] = true
			} else if image, ok = ch["*"]; !ok {
				continue
			}
			if c.Image != image {
				c.Image = image
				changed = true
			}
		}
	}
	var missing []string
	for name := range ch {
		if name != "*" && !found[name] {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		noun := "container"
		if len(missing) > 1 {
			noun = "containers"
		}
		return false, fmt.Errorf("no %s named %s (containers: %s)", noun, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return changed, nil
}

func (s *session) setImage(c *cli.Context) error {
	var objArgs, changeArgs []string
	for _, a := range c.Args().Slice() {
		if strings.Contains(a, "=") {
			changeArgs = append(changeArgs, a)
		} else {
			objArgs = append(objArgs, a)
		}
	}
	if len(changeArgs) == 0 {
		return fmt.Errorf("say which image: CONTAINER=IMAGE (see 'orchctl set image --help')")
	}
	ch, err := parseImageChanges(changeArgs)
	if err != nil {
		return err
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, objArgs,
		"set image works on deployments, daemon sets, stateful sets, replica sets and replication controllers",
		deploymentsGR, daemonSetsGR, statefulSetsGR, replicaSetsGR, controllersGR)
	if err != nil {
		return err
	}
	return s.eachWorkload(ws, func(w workload) (string, error) {
		changed := false
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var err error
			changed, err = updatePodSpec(c.Context, cn, w, ch.apply)
			return err
		})
		if err != nil {
			return "", err
		}
		if !changed {
			return "image unchanged", nil
		}
		return "image updated", nil
	})
}

// updatePodSpec reads a workload, lets edit change its pod template's spec
// and, when it did, writes the workload back (a conflict comes back for the
// caller to retry).
func updatePodSpec(ctx context.Context, cn *connection, w workload, edit func(*corev1.PodSpec) (bool, error)) (bool, error) {
	apps := cn.clientset.AppsV1()
	ns := cn.namespace
	get := metav1.GetOptions{}
	upd := metav1.UpdateOptions{}
	switch w.gr() {
	case deploymentsGR:
		o, err := apps.Deployments(ns).Get(ctx, w.name, get)
		if err != nil {
			return false, err
		}
		if changed, err := edit(&o.Spec.Template.Spec); err != nil || !changed {
			return false, err
		}
		_, err = apps.Deployments(ns).Update(ctx, o, upd)
		return err == nil, err
	case daemonSetsGR:
		o, err := apps.DaemonSets(ns).Get(ctx, w.name, get)
		if err != nil {
			return false, err
		}
		if changed, err := edit(&o.Spec.Template.Spec); err != nil || !changed {
			return false, err
		}
		_, err = apps.DaemonSets(ns).Update(ctx, o, upd)
		return err == nil, err
	case statefulSetsGR:
		o, err := apps.StatefulSets(ns).Get(ctx, w.name, get)
		if err != nil {
			return false, err
		}
		if changed, err := edit(&o.Spec.Template.Spec); err != nil || !changed {
			return false, err
		}
		_, err = apps.StatefulSets(ns).Update(ctx, o, upd)
		return err == nil, err
	case replicaSetsGR:
		o, err := apps.ReplicaSets(ns).Get(ctx, w.name, get)
		if err != nil {
			return false, err
		}
		if changed, err := edit(&o.Spec.Template.Spec); err != nil || !changed {
			return false, err
		}
		_, err = apps.ReplicaSets(ns).Update(ctx, o, upd)
		return err == nil, err
	case controllersGR:
		o, err := cn.clientset.CoreV1().ReplicationControllers(ns).Get(ctx, w.name, get)
		if err != nil {
			return false, err
		}
		if o.Spec.Template == nil {
			return false, fmt.Errorf("%s has no pod template", w)
		}
		if changed, err := edit(&o.Spec.Template.Spec); err != nil || !changed {
			return false, err
		}
		_, err = cn.clientset.CoreV1().ReplicationControllers(ns).Update(ctx, o, upd)
		return err == nil, err
	}
	return false, fmt.Errorf("%s has no pod template to change", w)
}
