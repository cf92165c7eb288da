package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// subcommands are the second words of the commands that take one, for
// shell completion.
var subcommands = map[string][]string{
	"changes":    {"show"},
	"completion": {"bash", "zsh", "fish"},
	"dashboards": {"push"},
	"emit":       {"pipeline", "artifact", "test", "scan", "deploy"},
	"keys":       {"new"},
	"policy":     {"test", "replay"},
	"report":     {"population", "sample", "controls", "trace", "package", "access"},
	"token":      {"new"},
	"verify":     {"package", "inclusion", "consistency"},
	"witness":    {"keygen"},
}

// commandNames is every first word, sorted: the commands, help and version.
func commandNames() []string {
	names := []string{"help", "version"}
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// runCompletion: evidence completion bash|zsh|fish prints the shell's
// completion script (commands, subcommands, then files).
func runCompletion(_ context.Context, args []string, env Env) int {
	const use = "usage: evidence completion bash|zsh|fish (bash: source <(evidence completion bash); zsh: evidence completion zsh > \"${fpath[1]}/_evidence\"; fish: evidence completion fish > ~/.config/fish/completions/evidence.fish)"
	if isHelp(args) {
		fmt.Fprintln(env.Stderr, use)
		return ExitOK
	}
	if len(args) != 1 {
		return fail(env, ExitUsage, use)
	}
	names := commandNames()
	subs := make([]string, 0, len(subcommands))
	for c := range subcommands {
		subs = append(subs, c)
	}
	sort.Strings(subs)
	var b strings.Builder
	switch args[0] {
	case "bash":
		b.WriteString("# bash completion for evidence: source <(evidence completion bash)\n_evidence() {\n")
		b.WriteString("  local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n  COMPREPLY=()\n")
		fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
		b.WriteString("  if [ \"$COMP_CWORD\" -eq 2 ]; then\n    case \"${COMP_WORDS[1]}\" in\n")
		for _, c := range subs {
			fmt.Fprintf(&b, "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", c, strings.Join(subcommands[c], " "))
		}
		fmt.Fprintf(&b, "      help) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", strings.Join(names, " "))
		b.WriteString("    esac\n  fi\n}\ncomplete -o default -F _evidence evidence\n")
	case "zsh":
		b.WriteString("#compdef evidence\n# zsh completion for evidence: evidence completion zsh > \"${fpath[1]}/_evidence\"\n_evidence() {\n")
		fmt.Fprintf(&b, "  if (( CURRENT == 2 )); then\n    compadd -- %s\n    return\n  fi\n", strings.Join(names, " "))
		b.WriteString("  if (( CURRENT == 3 )); then\n    case \"$words[2]\" in\n")
		for _, c := range subs {
			fmt.Fprintf(&b, "      %s) compadd -- %s; return ;;\n", c, strings.Join(subcommands[c], " "))
		}
		fmt.Fprintf(&b, "      help) compadd -- %s; return ;;\n", strings.Join(names, " "))
		b.WriteString("    esac\n  fi\n  _files\n}\nif [ \"$funcstack[1]\" = \"_evidence\" ]; then\n  _evidence \"$@\"\nelse\n  compdef _evidence evidence\nfi\n")
	case "fish":
		b.WriteString("# fish completion for evidence: evidence completion fish > ~/.config/fish/completions/evidence.fish\n")
		for _, n := range names {
			desc := map[string]string{"help": "show a command's help", "version": "print the version"}[n]
			if c, ok := commands[n]; ok {
				desc, _, _ = strings.Cut(c.summary, ":")
			}
			fmt.Fprintf(&b, "complete -c evidence -n __fish_use_subcommand -f -a %s -d %s\n", n, fishQuote(desc))
		}
		for _, c := range subs {
			fmt.Fprintf(&b, "complete -c evidence -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -f -a %s\n",
				c, strings.Join(subcommands[c], " "), fishQuote(strings.Join(subcommands[c], " ")))
		}
	default:
		return fail(env, ExitUsage, "completion: unknown shell %q: want bash, zsh or fish", args[0])
	}
	fmt.Fprint(env.Stdout, b.String())
	return ExitOK
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
