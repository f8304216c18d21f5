package main

import (
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// reference writes every command's usage and flags, from the same kong model `--help` prints.
// README "The CLI" holds its output (TestREADMECLIReference keeps them equal).
func reference(w io.Writer) error {
	var c cli
	parser, err := newParser(&c, io.Discard, io.Discard, func(int) {})
	if err != nil {
		return err
	}
	// Commands with subcommands (pinroll index create) are listed by their leaves.
	var leaves []*kong.Node
	var walk func([]*kong.Node)
	walk = func(nodes []*kong.Node) {
		for _, n := range nodes {
			if len(n.Children) > 0 {
				walk(n.Children)
				continue
			}
			leaves = append(leaves, n)
		}
	}
	walk(parser.Model.Children)
	for i, cmd := range leaves {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "pinroll %s\n    %s\n", cmd.Summary(), cmd.Help)
		for _, f := range cmd.Flags {
			if f.Hidden || f.Name == "help" {
				continue
			}
			name := "--" + f.Name
			if f.Short != 0 {
				name = fmt.Sprintf("-%c, %s", f.Short, name)
			}
			if !f.IsBool() {
				name += "=" + f.FormatPlaceHolder()
			}
			help := f.Help
			if f.Default != "" && !f.IsBool() {
				help += fmt.Sprintf(" (default %s)", f.Default)
			}
			if f.Required {
				help = "(required) " + help
			}
			fmt.Fprintf(w, "  %-28s %s\n", name, help)
		}
	}
	return nil
}
