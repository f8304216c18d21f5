package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	endpoint := fs.String("endpoint-url", "", "send AWS calls to this endpoint (the local emulator or moto)")
	dryRun := fs.Bool("dry-run", false, "plan and report, change nothing (overrides PINROLL_DRY_RUN)")
	asJSON := fs.Bool("json", false, "print each report as one line of JSON")
	verbose := fs.Bool("v", false, "also print the engine's JSON logs on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pinroll replay [--endpoint-url URL] [--dry-run] [--json] EVENT.json…")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{2}
	}
	engine, _, err := newEngine(ctx, *endpoint, *dryRun, *verbose, stderr)
	if err != nil {
		return err
	}
	failed := 0
	for _, path := range fs.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rep, err := engine.HandleRaw(ctx, raw)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: error: %v\n", path, err)
			continue
		}
		if err := print(stdout, path, rep, *asJSON); err != nil {
			return err
		}
		if rep.IsFailure() {
			failed++
		}
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

// clients are the AWS clients the CLI's commands share.
type clients struct {
	ecs *ecs.Client
	ecr *ecr.Client
}

// newEngine builds the engine as the Lambda does, from PINROLL_* and the SDK's environment.
func newEngine(ctx context.Context, endpoint string, dryRun, verbose bool, stderr io.Writer) (*rollout.Engine, clients, error) {
	cfg, err := config.FromEnv(os.Environ())
	if err != nil {
		return nil, clients{}, err
	}
	cfg.DryRun = cfg.DryRun || dryRun
	awsCfg, err := awsConfig(ctx, endpoint)
	if err != nil {
		return nil, clients{}, err
	}
	engine := rollout.FromAWSConfig(cfg, awsCfg, quietLogger(verbose, stderr))
	return engine, clients{ecs: ecs.NewFromConfig(awsCfg), ecr: ecr.NewFromConfig(awsCfg)}, nil
}

func print(w io.Writer, source string, rep report.Report, asJSON bool) error {
	if asJSON {
		line, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", line)
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n%s\n\n", source, rep.Summary())
	return err
}
