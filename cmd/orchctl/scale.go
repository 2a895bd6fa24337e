package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
)

func (s *session) scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set the number of replicas of deployments, replica sets, replication controllers or stateful sets",
		ArgsUsage: "KIND/NAME... | KIND NAME...",
		Description: "Example: orchctl scale deployment/web --replicas 5\n" +
			"With --current-replicas the change is made only if the object has that many replicas now.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "replicas", Value: -1, Usage: "the new number of replicas `N` (required)"},
			&cli.IntFlag{Name: "current-replicas", Value: -1, Usage: "scale only if the object has `N` replicas now"},
		},
		BashComplete: completeKinds,
		Action:       s.scale,
	}
}

// scale sets replicas through the scale subresource, as an autoscaler
// would: nothing else of the object is touched.
func (s *session) scale(c *cli.Context) error {
	n := c.Int("replicas")
	if !c.IsSet("replicas") {
		return fmt.Errorf("say how many replicas: --replicas N")
	}
	if n < 0 {
		return fmt.Errorf("--replicas %d: want 0 or more", n)
	}
	current := c.Int("current-replicas")
	if c.IsSet("current-replicas") && current < 0 {
		return fmt.Errorf("--current-replicas %d: want 0 or more", current)
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ws, err := s.workloads(c, cn, c.Args().Slice(),
		"only deployments, replica sets, replication controllers and stateful sets can be scaled",
		deploymentsGR, replicaSetsGR, controllersGR, statefulSetsGR)
	if err != nil {
		return err
	}
	return s.eachWorkload(ws, func(w workload) (string, error) {
		rc := cn.resourceClient(w.mapping, cn.namespace)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := rc.Get(c.Context, w.name, metav1.GetOptions{}, "scale")
			if err != nil {
				return err
			}
			have, _, err := unstructured.NestedInt64(sc.Object, "spec", "replicas")
			if err != nil {
				return fmt.Errorf("the scale of %s: %w", w, err)
			}
			if current >= 0 && have != int64(current) {
				return fmt.Errorf("expected %d replicas, found %d; not scaled", current, have)
			}
			if err := unstructured.SetNestedField(sc.Object, int64(n), "spec", "replicas"); err != nil {
				return err
			}
			// The resourceVersion read makes a concurrent change a
			// conflict, so --current-replicas is checked again.
			_, err = rc.Update(c.Context, sc, metav1.UpdateOptions{}, "scale")
			return err
		})
		if err != nil {
			return "", err
		}
		return "scaled", nil
	})
}
