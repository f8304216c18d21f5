// Command pinroll is the operator's CLI. It runs the same engine as the Lambda function.
//
//	pinroll replay [--endpoint-url URL] [--dry-run] [--json] EVENT.json…
//	pinroll plan --repository NAME --tag TAG [--digest D] [--endpoint-url URL] [--json]
//	pinroll verify [--cluster C] [--service S] [--endpoint-url URL] [--json]
//	pinroll reconcile [--dry-run] [--endpoint-url URL] [--json]
//	pinroll rollback --cluster C --service S [--reason WHY] [--endpoint-url URL]
//	pinroll resume --cluster C --service S [--endpoint-url URL]
//	pinroll emulate [--addr 127.0.0.1:4566] [--fleet events/fleet.json]
//
// Without --endpoint-url it uses the default AWS credential chain and region.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
)

// exitError carries an exit status for a failure that has already been explained.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"replay", "run sample events through the function's code path", replay},
		{"plan", "show what a push of REPOSITORY:TAG would change, changing nothing", planCmd},
		{"verify", "check that running tasks run the digest they should", verifyCmd},
		{"reconcile", "deploy tags whose push events were missed (the schedule's job, now)", reconcile},
		{"rollback", "move a service back to its previous revision and pause it", rollback},
		{"resume", "lift a pause: automatic deploys start again", resume},
		{"emulate", "serve the local ECS + ECR emulator with a fleet", emulate},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return ee.code
		default:
			fmt.Fprintf(stderr, "pinroll %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "pinroll: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pinroll COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pinroll COMMAND -h' for a command's flags.")
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pinroll "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// quietLogger discards the engine's JSON logs unless asked for them: the CLI prints reports.
func quietLogger(verbose bool, stderr io.Writer) *slog.Logger {
	if verbose {
		return slog.New(slog.NewJSONHandler(stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
