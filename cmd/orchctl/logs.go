package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
)

func (s *session) logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the logs of a pod's container",
		ArgsUsage: "POD | pod/POD",
		Description: "The API server fetches the logs from the agent of the pod's node. Without -c, a pod\n" +
			"with one container needs no container name.",
		Flags: []cli.Flag{
			containerFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing what the container writes until it stops or Ctrl-C"},
			&cli.Int64Flag{Name: "tail", Value: -1, Usage: "print only the last `N` lines (-1: all)"},
			&cli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "the logs of the previous, terminated instance of the container"},
			&cli.BoolFlag{Name: "timestamps", Usage: "start each line with the time it was written (RFC 3339)"},
			&cli.DurationFlag{Name: "since", Usage: "only lines written in the last `DURATION`, e.g. 10m"},
			&cli.Int64Flag{Name: "limit-bytes", Usage: "stop after `N` bytes"},
		},
		Action: s.logs,
	}
}

func containerFlag() cli.Flag {
	return &cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the `CONTAINER` in the pod (default: the pod's only container)"}
}

// readLogOptions checks logs' flags and turns them into the API's options.
func readLogOptions(c *cli.Context) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{
		Container:  c.String("container"),
		Follow:     c.Bool("follow"),
		Previous:   c.Bool("previous"),
		Timestamps: c.Bool("timestamps"),
	}
	switch tail := c.Int64("tail"); {
	case tail < -1:
		return nil, fmt.Errorf("--tail %d: want a number of lines, or -1 for all", tail)
	case tail >= 0:
		o.TailLines = &tail
	}
	if c.IsSet("since") {
		since := c.Duration("since")
		if since <= 0 {
			return nil, fmt.Errorf("--since %v: want a positive duration such as 10m", since)
		}
		// Whole seconds, rounded up so that nothing asked for is left out.
		secs := int64((since + time.Second - 1) / time.Second)
		o.SinceSeconds = &secs
	}
	if c.IsSet("limit-bytes") {
		limit := c.Int64("limit-bytes")
		if limit <= 0 {
			return nil, fmt.Errorf("--limit-bytes %d: want a positive number of bytes", limit)
		}
		o.LimitBytes = &limit
	}
	return o, nil
}

func (s *session) logs(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("logs takes one POD (or pod/POD); e.g. orchctl logs web-1 -c app")
	}
	pod, err := podArg(c.Args().First())
	if err != nil {
		return err
	}
	opts, err := readLogOptions(c)
	if err != nil {
		return err
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	stream, err := cn.clientset.CoreV1().Pods(cn.namespace).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	if _, err := io.Copy(s.stdout, stream); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C is how a followed log ends
		}
		return fmt.Errorf("reading the logs of pod %s: %w", pod, err)
	}
	return nil
}

// podArg reads a pod argument: NAME, or pod/NAME as get -o name prints it.
func podArg(arg string) (string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok {
		kind, name = "pod", arg
	}
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
	default:
		return "", fmt.Errorf("%q: only pods have logs and run commands; pass POD or pod/POD", arg)
	}
	if name == "" {
		return "", fmt.Errorf("%q: the pod's name is missing", arg)
	}
	return name, nil
}
