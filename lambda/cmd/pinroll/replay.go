package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

type replayCmd struct {
	DryRun bool     `help:"Plan and report, change nothing (overrides PINROLL_DRY_RUN)."`
	JSON   bool     `name:"json" help:"Print each report as one line of JSON (README \"The report\")."`
	Events []string `arg:"" name:"EVENT.json" help:"EventBridge events (ECR push, ECS deployment, schedule), replayed in order."`
	AWSFlags
}

func (c *replayCmd) Run(e *env) error {
	// Every file is read before the first event runs: a typo in the fifth name must not
	// leave four events applied.
	raws := make([][]byte, len(c.Events))
	var missing []string
	for i, path := range c.Events {
		raw, err := os.ReadFile(path)
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		raws[i] = raw
	}
	if len(missing) > 0 {
		return usageError{fmt.Sprintf("%d of %d event files cannot be read; nothing was replayed:\n  %s",
			len(missing), len(c.Events), strings.Join(missing, "\n  "))}
	}
	s, err := newSession(e, c.AWSFlags, c.DryRun, "")
	if err != nil {
		return err
	}
	failed := 0
	for i, path := range c.Events {
		rep, err := s.engine.HandleRaw(s.ctx, raws[i])
		if err != nil {
			failed++
			fmt.Fprintf(e.stderr, "%s: error: %v\n", path, explain(c.Endpoint, err))
			continue
		}
		if err := print(e.stdout, path, rep, c.JSON); err != nil {
			return err
		}
		if rep.IsFailure() {
			failed++
		}
	}
	if failed > 0 {
		return exitError{exitFailed}
	}
	return nil
}

// session is one command's engine and AWS clients, built as the Lambda builds them.
type session struct {
	ctx     context.Context
	engine  *rollout.Engine
	ecs     *ecs.Client
	ecr     *ecr.Client
	aws     aws.Config
	account string // the home account, "" when unknown
}

// actAs makes the session act in the account of role (nothing when role is ""): its ECS
// calls are made with the role's credentials, and that account is the engine's only target.
// The registry (ECR) stays the caller's own.
func (s *session) actAs(r role) error {
	if r == "" {
		return nil
	}
	assumed := rollout.AssumeRole(s.aws, sts.NewFromConfig(s.aws), string(r))
	s.ecs = ecs.NewFromConfig(assumed)
	s.account = rollout.RoleAccount(string(r))
	s.engine.Targets = []*rollout.Target{rollout.NewTarget(s.account, string(r), s.ecs, s.engine.ECR)}
	return nil
}

// newSession builds the engine as the Lambda does, from PINROLL_* and the SDK's
// environment, in the account the credentials (or the local endpoint) belong to — so a
// replayed event from another account is judged as the function in this account would.
//
// With a role (--role), it acts in that role's account instead (see actAs).
func newSession(e *env, f AWSFlags, dryRun bool, r role) (*session, error) {
	cfg, err := config.FromEnv(os.Environ())
	if err != nil {
		return nil, err
	}
	cfg.DryRun = cfg.DryRun || dryRun
	if err := reachable(f.Endpoint); err != nil {
		return nil, err
	}
	awsCfg, err := awsConfig(e.ctx, f.Endpoint)
	if err != nil {
		return nil, err
	}
	s := &session{ctx: e.ctx, aws: awsCfg, ecs: ecs.NewFromConfig(awsCfg), ecr: ecr.NewFromConfig(awsCfg)}
	s.engine = rollout.FromAWSConfig(cfg, awsCfg, quietLogger(f.Verbose, e.stderr))
	if s.account = homeAccount(e.ctx, awsCfg, f.Endpoint); s.account != "" {
		s.engine.SetHomeAccount(s.account)
	}
	return s, s.actAs(r)
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
