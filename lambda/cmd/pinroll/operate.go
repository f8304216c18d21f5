package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// reconcile runs the scheduled reconciliation once, now.
func reconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reconcile", stderr)
	dryRun := fs.Bool("dry-run", false, "report what would be deployed, change nothing")
	endpoint := fs.String("endpoint-url", "", "send AWS calls to this endpoint (the local emulator or moto)")
	asJSON := fs.Bool("json", false, "print the report as one line of JSON")
	verbose := fs.Bool("v", false, "also print the engine's JSON logs on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	engine, _, err := newEngine(ctx, *endpoint, *dryRun, *verbose, stderr)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	rep, err := engine.Reconcile(ctx, trigger.Reconcile{EventID: "cli-" + now.Format("20060102T150405Z"), Time: now})
	if err != nil {
		return err
	}
	return print(stdout, "reconcile", rep, *asJSON)
}

// serviceFlags are the flags of a command that acts on one service.
type serviceFlags struct{ cluster, service, endpoint *string }

func newServiceFlags(fs *flag.FlagSet) serviceFlags {
	return serviceFlags{
		cluster:  fs.String("cluster", "", "the service's cluster (required)"),
		service:  fs.String("service", "", "the service (required)"),
		endpoint: fs.String("endpoint-url", "", "send AWS calls to this endpoint (the local emulator or moto)"),
	}
}

// parse parses args and checks that a service is named.
func (f serviceFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *f.cluster == "" || *f.service == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	return nil
}

// rollback moves a service back to its previous revision and pauses it.
func rollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback", stderr)
	f := newServiceFlags(fs)
	why := fs.String("reason", "rolled back by hand", "why, recorded in the pinroll:paused tag")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	engine, aws, err := newEngine(ctx, *f.endpoint, false, false, stderr)
	if err != nil {
		return err
	}
	rb, err := engine.Rollback(ctx, aws.ecs, *f.cluster, *f.service, operator(), *why, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s/%s: rolled back %s → %s\npaused: pinroll:paused=%s\nautomatic deploys are off until: pinroll resume --cluster %s --service %s\n",
		rb.Cluster, rb.Service, report.Revision(rb.From), report.Revision(rb.To), rb.Paused, rb.Cluster, rb.Service)
	return nil
}

// resume lifts a pause.
func resume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("resume", stderr)
	f := newServiceFlags(fs)
	if err := f.parse(fs, args); err != nil {
		return err
	}
	engine, aws, err := newEngine(ctx, *f.endpoint, false, false, stderr)
	if err != nil {
		return err
	}
	was, err := engine.Resume(ctx, aws.ecs, *f.cluster, *f.service)
	if err != nil {
		return err
	}
	if was == "" {
		fmt.Fprintf(stdout, "%s/%s was not paused; nothing to do\n", *f.cluster, *f.service)
		return nil
	}
	fmt.Fprintf(stdout, "%s/%s resumed (was paused: %s); the next push deploys it (reconciliation too, when its containers are pinned)\n", *f.cluster, *f.service, was)
	return nil
}

// operator names who runs the CLI, for the pause tag.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		host, _ := os.Hostname()
		if host != "" {
			return u.Username + "@" + host
		}
		return u.Username
	}
	return "unknown"
}
