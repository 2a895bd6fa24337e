package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

const execUsage = "orchctl exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]"

func (s *session) execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a pod's container",
		ArgsUsage: "POD -- COMMAND [ARGS...]",
		Description: "Everything after -- is the command and its arguments. The exit code is the command's.\n" +
			"With -t and a terminal on stdin, the terminal is in raw mode while the command runs\n" +
			"and the command's terminal follows its size.",
		UseShortOptionHandling: true, // -it
		Flags: []cli.Flag{
			containerFlag(),
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass stdin to the command"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
		},
		Action: s.exec,
	}
}

// execArgs splits exec's arguments into the pod and the command. The
// command is what followed -- on the command line as typed (s.args):
// urfave/cli drops the -- itself, and without it a command's flags would
// be taken for orchctl's.
func (s *session) execArgs(c *cli.Context) (pod string, command []string, err error) {
	args := c.Args().Slice()
	dd := slices.Index(s.args, "--")
	switch {
	case dd < 0 && len(args) <= 1:
		return "", nil, errors.New("exec needs a command after --: " + execUsage)
	case dd < 0:
		return "", nil, fmt.Errorf("put -- between the pod and the command, as in orchctl exec %s -- %s: %s", args[0], args[1], execUsage)
	}
	command = s.args[dd+1:]
	if len(command) == 0 {
		return "", nil, errors.New("exec needs a command after --: " + execUsage)
	}
	before := args[:max(0, len(args)-len(command))]
	if len(before) != 1 {
		return "", nil, fmt.Errorf("exec takes one POD before --, got %d: %s", len(before), execUsage)
	}
	pod, err = podArg(before[0])
	return pod, command, err
}

func (s *session) exec(c *cli.Context) error {
	pod, command, err := s.execArgs(c)
	if err != nil {
		return err
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	stdin, tty := c.Bool("stdin"), c.Bool("tty")
	u := cn.clientset.CoreV1().RESTClient().Post().
		Resource("pods").Name(pod).Namespace(cn.namespace).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: c.String("container"), Command: command,
			Stdin: stdin, Stdout: true, Stderr: !tty, TTY: tty,
		}, scheme.ParameterCodec).URL()
	ex, err := remotecommand.NewWebSocketExecutor(cn.cfg, http.MethodGet, u.String())
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	opts := remotecommand.StreamOptions{Stdout: s.stdout, Tty: tty}
	if stdin {
		opts.Stdin = s.stdin
	}
	if !tty {
		opts.Stderr = s.stderr
	}
	err = s.streamExec(c.Context, ex, opts)
	var code utilexec.CodeExitError
	if errors.As(err, &code) {
		// As kubectl does: say why the exit code is not 0, then pass it on.
		fmt.Fprintln(s.stderr, code.Error())
		return &exitError{code: code.Code}
	}
	var upgrade *httpstream.UpgradeFailureError
	if errors.As(err, &upgrade) {
		// The API's answer (pod not found, no such container, ...) is the
		// cause; the failed upgrade is how it arrived.
		return upgrade.Cause
	}
	return err
}

// streamExec runs the session, with the local terminal in raw mode and its
// size sent along when the command has a terminal and stdin is one.
func (s *session) streamExec(ctx context.Context, ex remotecommand.Executor, opts remotecommand.StreamOptions) error {
	fd, isTerm := terminalFd(s.stdin)
	if !opts.Tty || !isTerm {
		return ex.StreamWithContext(ctx, opts)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sizes := newTerminalSizes(ctx, func() (int, int, error) { return term.GetSize(fd) })
	defer sizes.stop()
	opts.TerminalSizeQueue = sizes
	if opts.Stdin != nil {
		// Raw mode sends every key, Ctrl-C included, to the command.
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("exec: putting the terminal in raw mode: %w", err)
		}
		defer func() {
			if err := term.Restore(fd, old); err != nil {
				fmt.Fprintln(s.stderr, "warning: could not restore the terminal; run `reset`:", err)
			}
		}()
	}
	return ex.StreamWithContext(ctx, opts)
}

// terminalFd says whether r is a terminal, and its descriptor.
func terminalFd(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// terminalSizes is a remotecommand.TerminalSizeQueue: the terminal's size
// now, then again each time the terminal is resized (SIGWINCH), until ctx
// ends.
type terminalSizes struct {
	ctx     context.Context
	size    func() (width, height int, err error)
	resized chan os.Signal
	sent    bool
	last    remotecommand.TerminalSize
}

func newTerminalSizes(ctx context.Context, size func() (int, int, error)) *terminalSizes {
	q := &terminalSizes{ctx: ctx, size: size, resized: make(chan os.Signal, 1)}
	notifyResize(q.resized)
	return q
}

func (q *terminalSizes) stop() { stopResize(q.resized) }

// Next blocks until there is a size to send; nil tells the executor there
// will be no more.
func (q *terminalSizes) Next() *remotecommand.TerminalSize {
	for {
		if !q.sent {
			q.sent = true
		} else {
			select {
			case <-q.ctx.Done():
				return nil
			case <-q.resized:
			}
		}
		w, h, err := q.size()
		if err != nil || w <= 0 || h <= 0 || w > 0xffff || h > 0xffff {
			continue // a size the terminal cannot tell is no reason to stop
		}
		sz := remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}
		if sz == q.last {
			continue
		}
		q.last = sz
		return &sz
	}
}
