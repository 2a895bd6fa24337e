// Command orchctl is the orch command-line client. It speaks the
// Kubernetes-compatible API of any orch master through client-go: apply
// manifests, get, describe and delete objects, label and annotate them,
// read containers' logs and run commands in them, cordon and taint nodes,
// and run the cluster operations (Raft membership, snapshots) that have no
// Kubernetes equivalent.
//
// The whole CLI runs through run, which takes its arguments, streams and
// context as parameters and returns the exit code, so tests drive it
// in-process against a real API server exactly as a user would.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/urfave/cli/v2"
	"k8s.io/klog/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// session is one invocation of orchctl: its streams, and the connection to
// the API server once a command has made one, which error messages use to
// say which server and which token were involved.
type session struct {
	// args is the command line as typed, before normalizeArgs moved the
	// flags: exec needs to know where -- was.
	args           []string
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	conn           *connection
}

// exitError reports a failure that has already been printed (for example
// one document of several that failed to apply), so run only sets the
// exit code.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errReported is returned by commands that printed their errors as they
// went and carried on with the rest of their work.
var errReported = &exitError{code: 1}

var quietKlog sync.Once

// run executes one orchctl command line (without the program name) and
// returns the process exit code. Nothing in it calls os.Exit, so tests can
// call it as often as they like.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	quietKlog.Do(func() {
		// client-go reports some failures (discovery) through klog as
		// well as in the errors it returns; those errors are explained
		// to the user, the klog lines would only repeat them in a
		// format meant for daemons.
		klog.SetLogger(logr.Discard())
	})
	s := &session{args: args, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	app := s.newApp()
	err := app.RunContext(ctx, append([]string{app.Name}, normalizeArgs(app, args)...))
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "error: "+s.explain(err))
	return 1
}

func (s *session) newApp() *cli.App {
	app := &cli.App{
		Name:                 "orchctl",
		Usage:                "control an orch cluster",
		HideVersion:          true,
		EnableBashCompletion: true,
		Reader:               s.stdin,
		Writer:               s.stdout,
		ErrWriter:            s.stderr,
		Flags:                globalFlags(),
		// Errors are printed by run, which knows how to explain them; the
		// default handler would call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unknown command %q; run 'orchctl --help' for the list", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			s.applyCommand(),
			s.getCommand(),
			s.describeCommand(),
			s.deleteCommand(),
			s.createCommand(),
			s.logsCommand(),
			s.execCommand(),
			s.portForwardCommand(),
			s.labelCommand(),
			s.annotateCommand(),
			s.cordonCommand(),
			s.uncordonCommand(),
			s.drainCommand(),
			s.taintCommand(),
			s.versionCommand(),
			s.completionCommand(),
			s.operatorCommand(),
			s.scaleCommand(),
			s.rolloutCommand(),
			s.setCommand(),
			s.exposeCommand(),
		},
	}
	app.OnUsageError = usageError("")
	for _, c := range app.Commands {
		setUsageErrors(c, "")
	}
	return app
}

// setUsageErrors makes flag errors of every command short and specific
// instead of an error followed by the whole help text.
func setUsageErrors(c *cli.Command, parent string) {
	path := strings.TrimSpace(parent + " " + c.Name)
	c.OnUsageError = usageError(path)
	for _, sub := range c.Subcommands {
		setUsageErrors(sub, path)
	}
}

func usageError(path string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		help := "orchctl --help"
		if path != "" {
			help = "orchctl " + path + " --help"
		}
		return fmt.Errorf("%w (see '%s')", err, help)
	}
}
