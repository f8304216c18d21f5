// Command pinroll is the operator's CLI. It runs the same engine as the Lambda function.
//
//	pinroll replay EVENT.json… [--endpoint-url URL] [--dry-run] [--json] [-v]
//	pinroll plan --repository NAME [--tag TAG] [--digest D] [--endpoint-url URL] [--json] [-v]
//	pinroll verify [--cluster C] [--service S,…] [--endpoint-url URL] [--json] [-v]
//	pinroll reconcile [--dry-run] [--endpoint-url URL] [--json] [-v]
//	pinroll rollback --cluster C --service S [--reason WHY] [--endpoint-url URL] [--role ARN]
//	pinroll resume --cluster C --service S [--endpoint-url URL] [--role ARN]
//	pinroll approve --cluster C --service S [--endpoint-url URL] [--role ARN]
//	pinroll reject --cluster C --service S [--endpoint-url URL] [--role ARN]
//	pinroll emulate [--addr 127.0.0.1:4566] [--fleet events/fleet.json] [--allow-remote]
//
// Flags may come before or after arguments; `pinroll COMMAND --help` lists a command's flags.
// Without --endpoint-url it uses the default AWS credential chain and region; with a loopback
// --endpoint-url it needs no AWS account (see awsConfig).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// Exit statuses, the same for every command (README "The CLI", `pinroll verify --help`).
const (
	exitOK         = 0 // done; for verify: every check passed
	exitFailed     = 1 // a failure: an event that failed, a mismatch, a missing image, an AWS error
	exitUsage      = 2 // bad usage or bad input: unknown flag, missing argument, missing file
	exitUnverified = 3 // verify: nothing could be verified (no cluster, service, task or container)
)

// exitError carries an exit status for a failure that has already been explained.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is bad input found after parsing (e.g. missing files): exit 2, with the message.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what every command's Run receives.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
}

// cli is the command line. Each command is a struct whose fields are its flags and
// arguments (kong's tags); its Run method does the work.
type cli struct {
	Replay    replayCmd    `cmd:"" help:"Run event files through the function's code path."`
	Plan      planCmd      `cmd:"" help:"Show what a push of REPOSITORY:TAG would change; changes nothing."`
	Verify    verifyCmd    `cmd:"" help:"Check that running tasks run the digest they should."`
	Reconcile reconcileCmd `cmd:"" help:"Deploy tags whose push events were missed (the schedule's job, now)."`
	Rollback  rollbackCmd  `cmd:"" help:"Move a service back to its previous revision and pause it."`
	Resume    resumeCmd    `cmd:"" help:"Lift a pause: automatic deploys start again."`
	Approve   approveCmd   `cmd:"" help:"Deploy the revision a service holds for approval (pinroll:approval=required)."`
	Reject    rejectCmd    `cmd:"" help:"Drop the revision a service holds for approval; it keeps what it runs."`
	Release   releaseCmd   `cmd:"" help:"Deploy the lowest wave of a staged rollout that waits (pinroll:wave), whatever the wave before it did."`
	Emulate   emulateCmd   `cmd:"" help:"Serve the local ECS + ECR emulator with a fleet."`
	Index     indexCmd     `cmd:"" help:"Manage the persistent index table (PINROLL_INDEX_TABLE)."`
}

// AWSFlags are the flags of every command that calls AWS.
type AWSFlags struct {
	Endpoint endpoint `name:"endpoint-url" placeholder:"URL" help:"Send AWS calls to this endpoint (pinroll emulate, moto). On loopback no AWS account is needed: region AWS_REGION or us-east-1, dummy credentials."`
	Verbose  bool     `short:"v" help:"Also print the engine's JSON logs on stderr."`
}

// RoleFlag lets a command act in a target account, through the role pinroll assumes there.
type RoleFlag struct {
	Role role `placeholder:"ARN" help:"Act in a target account: assume this IAM role (arn:aws:iam::<account>:role/<name>) and act there, in the same region."`
}

type role string

// Decode refuses, at parse time, a --role that is not an IAM role ARN.
func (r *role) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("ARN", &s); err != nil {
		return err
	}
	if rollout.RoleAccount(s) == "" || !strings.Contains(s, ":role/") {
		return fmt.Errorf("--role %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", s)
	}
	*r = role(s)
	return nil
}

// Decode makes --endpoint-url refuse, at parse time, what the SDK would misread.
func (e *endpoint) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("URL", &s); err != nil {
		return err
	}
	v, err := parseEndpoint(s)
	if err != nil {
		return err
	}
	*e = v
	return nil
}

const description = "pinroll deploys ECR pushes to ECS pinned by digest, and verifies what runs. " +
	"This CLI runs the function's engine. Exit status: 0 done (verify: verified), 1 failed (mismatch, " +
	"missing image, failed event), 2 bad usage or input, 3 nothing could be verified."

// newParser builds the kong parser writing to stdout/stderr; exit is called for --help.
func newParser(c *cli, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("pinroll"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true, WrapUpperBound: 100}),
	)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// helpExit unwinds kong's --help through run.
type helpExit struct{ code int }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var c cli
	exit := func(code int) { panic(helpExit{code}) }
	out := stdout
	if len(args) > 0 && args[0] == "help" { // `pinroll help [COMMAND]`, as before kong
		args = append(args[1:len(args):len(args)], "--help")
	}
	if len(args) == 0 {
		// No command at all: the overview, on stderr, as a usage error.
		out, args = stderr, []string{"--help"}
		defer func() {
			if code == exitOK {
				code = exitUsage
			}
		}()
	}
	parser, err := newParser(&c, out, stderr, exit)
	if err != nil {
		fmt.Fprintf(stderr, "pinroll: %v\n", err)
		return exitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			h, ok := r.(helpExit)
			if !ok {
				panic(r)
			}
			code = h.code
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		var pe *kong.ParseError
		fmt.Fprintf(stderr, "pinroll: %v\n", err)
		if errors.As(err, &pe) && pe.Context != nil {
			if cmd := pe.Context.Selected(); cmd != nil {
				fmt.Fprintf(stderr, "usage: pinroll %s\nrun 'pinroll %s --help' for its flags\n", cmd.Summary(), strings.TrimPrefix(cmd.FullPath(), "pinroll "))
				return exitUsage
			}
		}
		fmt.Fprintln(stderr, "run 'pinroll --help' for the commands")
		return exitUsage
	}
	name := strings.Fields(kctx.Command())[0]
	err = kctx.Run(&env{ctx: ctx, stdout: stdout, stderr: stderr})
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pinroll %s: %v\n", name, err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "pinroll %s: %v\n", name, err)
		return exitFailed
	}
}

// quietLogger discards the engine's JSON logs unless asked for them: the CLI prints reports.
func quietLogger(verbose bool, stderr io.Writer) *slog.Logger {
	if verbose {
		return slog.New(slog.NewJSONHandler(stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
