package main

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/urfave/cli/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func (s *session) createCommand() *cli.Command {
	return &cli.Command{
		Name:  "create",
		Usage: "create an object from arguments",
		Subcommands: append([]*cli.Command{{
			Name:      "namespace",
			Aliases:   []string{"ns"},
			Usage:     "create a namespace",
			ArgsUsage: "NAME",
			Action:    s.createNamespace,
		}, {
			Name:      "job",
			Usage:     "create a job from a cronjob's jobTemplate, to run it now",
			ArgsUsage: "NAME --from=cronjob/NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Usage: "the cronjob to take the job from: `cronjob/NAME`"},
			},
			Action: s.createJob,
		}}, s.createConfigCommands()...),
	}
}

func (s *session) createNamespace(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("create namespace takes one NAME")
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Args().First()}}
	created, err := cn.clientset.CoreV1().Namespaces().Create(c.Context, ns, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, "namespace/"+created.Name+" created")
	return nil
}

// createJob makes a Job from a CronJob's jobTemplate as kubectl does: the
// CronJob is its controller, and the annotation
// cronjob.kubernetes.io/instantiate=manual tells it from scheduled runs.
func (s *session) createJob(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("create job takes one NAME: orchctl create job NAME --from=cronjob/CRONJOB")
	}
	from := c.String("from")
	if from == "" {
		return errors.New("create job needs --from=cronjob/CRONJOB: jobs are made from a cronjob's jobTemplate")
	}
	kind, cjName, ok := strings.Cut(from, "/")
	switch strings.ToLower(kind) {
	case "cronjob", "cronjobs", "cj", "cronjob.batch", "cronjobs.batch":
	default:
		return fmt.Errorf("--from=%s: a job can only be created from a cronjob (--from=cronjob/NAME)", from)
	}
	if !ok || cjName == "" {
		return fmt.Errorf("--from=%s: name the cronjob, as in --from=cronjob/NAME", from)
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	cj, err := cn.clientset.BatchV1().CronJobs(cn.namespace).Get(c.Context, cjName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	annotations := map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	maps.Copy(annotations, cj.Spec.JobTemplate.Annotations)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.Args().First(),
			Namespace:   cn.namespace,
			Annotations: annotations,
			Labels:      cj.Spec.JobTemplate.Labels,
			// No blockOwnerDeletion, as kubectl: it would need more
			// rights than creating a Job.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "CronJob",
				Name: cj.Name, UID: cj.UID, Controller: ptr.To(true),
			}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	created, err := cn.clientset.BatchV1().Jobs(cn.namespace).Create(c.Context, job, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, "job.batch/"+created.Name+" created")
	return nil
}
