package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli appends to a command line to ask
// for completions; it must stay last.
const completionFlag = "--generate-bash-completion"

// flagSpec is what the argument reorderer needs to know about a flag.
type flagSpec struct {
	takesValue bool
}

func indexFlags(flags []cli.Flag) map[string]flagSpec {
	idx := map[string]flagSpec{
		"help": {}, "h": {}, // added by urfave/cli to every command
	}
	for _, f := range flags {
		spec := flagSpec{}
		if dg, ok := f.(cli.DocGenerationFlag); ok {
			spec.takesValue = dg.TakesValue()
		}
		for _, n := range f.Names() {
			idx[n] = spec
		}
	}
	return idx
}

// normalizeArgs reorders a command line (without the program name) so that
// urfave/cli sees every flag. Like Go's flag package it stops parsing at the
// first positional argument, but people type `orchctl get pods -n
// kube-system` as they would with kubectl. Global flags move before the
// command, each command's own flags right after its name, and positional
// arguments last, in their original order. Unknown flags stay with the
// command so that urfave/cli reports them. kubectl-style glued short flags
// (`-oyaml`) are split into `-o=yaml`.
func normalizeArgs(app *cli.App, args []string) []string {
	args = append([]string(nil), args...)
	completing := len(args) > 0 && args[len(args)-1] == completionFlag
	if completing {
		args = args[:len(args)-1]
	}
	global := indexFlags(app.Flags)
	var (
		globals    []string
		segments   [][]string // one per command on the path: name, then its flags
		positional []string
		dashdash   bool
	)
	local := global
	cmds := app.Commands
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			dashdash = true
			positional = append(positional, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			a = splitGluedShortFlag(a, local, global)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			spec, isLocal := local[name]
			if !isLocal {
				spec = global[name]
			}
			taken := []string{a}
			if spec.takesValue && !hasValue && i+1 < len(args) {
				taken = append(taken, args[i+1])
				i++
			}
			_, isGlobal := global[name]
			switch {
			case len(segments) == 0 || (!isLocal && isGlobal):
				globals = append(globals, taken...)
			default:
				last := len(segments) - 1
				segments[last] = append(segments[last], taken...)
			}
			continue
		}
		if len(positional) == 0 {
			if cmd := findCommand(cmds, a); cmd != nil {
				segments = append(segments, []string{a})
				local = indexFlags(cmd.Flags)
				cmds = cmd.Subcommands
				continue
			}
		}
		positional = append(positional, a)
	}
	out := globals
	for _, seg := range segments {
		out = append(out, seg...)
	}
	if dashdash {
		out = append(out, "--")
	}
	out = append(out, positional...)
	if completing {
		out = append(out, completionFlag)
	}
	return out
}

// splitGluedShortFlag turns `-oyaml` into `-o=yaml` when -o is a known
// short flag that takes a value and `oyaml` is not a flag itself.
func splitGluedShortFlag(a string, local, global map[string]flagSpec) string {
	if strings.HasPrefix(a, "--") || len(a) < 3 || strings.Contains(a, "=") {
		return a
	}
	name := a[1:]
	if _, ok := local[name]; ok {
		return a
	}
	if _, ok := global[name]; ok {
		return a
	}
	short := name[:1]
	spec, ok := local[short]
	if !ok {
		spec, ok = global[short]
	}
	if ok && spec.takesValue {
		return "-" + short + "=" + name[1:]
	}
	return a
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
