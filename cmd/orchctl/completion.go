package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion asks orchctl itself for the words that can follow what
// has been typed (urfave/cli's --generate-bash-completion).
const bashCompletion = `# bash completion for orchctl; load it with: source <(orchctl completion bash)
_orchctl_complete() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  if [[ "$cur" == -* ]]; then
    words+=("$cur")
  fi
  COMPREPLY=($(compgen -W "$("${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
  if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _orchctl_complete orchctl
`

// zshCompletion does the same for zsh; _CLI_ZSH_AUTOCOMPLETE_HACK makes
// urfave/cli print "name:description" pairs.
const zshCompletion = `#compdef orchctl
# zsh completion for orchctl; load it with: source <(orchctl completion zsh)
_orchctl() {
  local -a opts
  local cur="${words[-1]}"
  local -a cmd=("${words[@]:0:$((${#words[@]}-1))}")
  if [[ "$cur" == -* ]]; then
    cmd+=("$cur")
  fi
  opts=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 "${cmd[@]}" --generate-bash-completion 2>/dev/null)}")
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _orchctl orchctl
`

func (s *session) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		BashComplete: func(c *cli.Context) {
			for _, sh := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, sh)
			}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion takes one shell: bash, zsh or fish")
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(s.stdout, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(s.stdout, zshCompletion)
				return err
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("fish completion: %w", err)
				}
				_, err = fmt.Fprint(s.stdout, script)
				return err
			default:
				return fmt.Errorf("completion: shell %q: want bash, zsh or fish", sh)
			}
		},
	}
}
