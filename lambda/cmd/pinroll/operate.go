package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

type reconcileCmd struct {
	DryRun bool `help:"Report what would be deployed, change nothing."`
	JSON   bool `name:"json" help:"Print the report as one line of JSON."`
	AWSFlags
}

// Run runs the scheduled reconciliation once, now.
func (c *reconcileCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, c.DryRun, "")
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	rep, err := s.engine.Reconcile(s.ctx, trigger.Reconcile{EventID: "cli-" + now.Format("20060102T150405Z"), Time: now})
	if err != nil {
		return explain(c.Endpoint, err)
	}
	return print(e.stdout, "reconcile", rep, c.JSON)
}

// serviceFlags name the one service a command acts on.
type serviceFlags struct {
	Cluster string `required:"" placeholder:"C" help:"The service's cluster."`
	Service string `required:"" placeholder:"S" help:"The service."`
}

type rollbackCmd struct {
	serviceFlags
	Reason string `default:"rolled back by hand" placeholder:"WHY" help:"Why, recorded in the pinroll:paused tag."`
	AWSFlags
	RoleFlag
}

// Run moves a service back to its previous revision and pauses it.
func (c *rollbackCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, false, c.Role)
	if err != nil {
		return err
	}
	rb, err := s.engine.Rollback(s.ctx, s.ecs, c.Cluster, c.Service, operator(), c.Reason, time.Now())
	if err != nil {
		return explain(c.Endpoint, err)
	}
	fmt.Fprintf(e.stdout, "%s/%s: rolled back %s → %s\npaused: pinroll:paused=%s\nautomatic deploys are off until: pinroll resume --cluster %s --service %s\n",
		rb.Cluster, rb.Service, report.Revision(rb.From), report.Revision(rb.To), rb.Paused, rb.Cluster, rb.Service)
	return nil
}

type resumeCmd struct {
	serviceFlags
	AWSFlags
	RoleFlag
}

// Run lifts a pause.
func (c *resumeCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, false, c.Role)
	if err != nil {
		return err
	}
	was, err := s.engine.Resume(s.ctx, s.ecs, c.Cluster, c.Service)
	if err != nil {
		return explain(c.Endpoint, err)
	}
	if was == "" {
		fmt.Fprintf(e.stdout, "%s/%s was not paused; nothing to do\n", c.Cluster, c.Service)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s/%s resumed (was paused: %s); the next push deploys it (reconciliation too, when its containers are pinned)\n", c.Cluster, c.Service, was)
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

type approveCmd struct {
	serviceFlags
	AWSFlags
	RoleFlag
}

// Run deploys a held revision, if it may still go.
func (c *approveCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, false, c.Role)
	if err != nil {
		return err
	}
	a, err := s.engine.Approve(s.ctx, s.ecs, c.Cluster, c.Service)
	var refused *rollout.NotApprovableError
	switch {
	case errors.As(err, &refused):
		fmt.Fprintf(e.stderr, "pinroll approve: %v\n", err)
		return exitError{exitFailed}
	case err != nil:
		return explain(c.Endpoint, err)
	case !a.Done:
		fmt.Fprintln(e.stdout, a.Note)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s/%s: approved %s → %s\n  %s\nverify it: pinroll verify --cluster %s --service %s\n",
		a.Cluster, a.Service, a.From, a.Revision, a.Image, a.Cluster, a.Service)
	return nil
}

type rejectCmd struct {
	serviceFlags
	AWSFlags
	RoleFlag
}

// Run drops a held revision.
func (c *rejectCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, false, c.Role)
	if err != nil {
		return err
	}
	a, err := s.engine.Reject(s.ctx, s.ecs, c.Cluster, c.Service)
	switch {
	case err != nil:
		return explain(c.Endpoint, err)
	case !a.Done:
		fmt.Fprintln(e.stdout, a.Note)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s/%s: rejected %s; it keeps what it runs, and the next push is held again\n", a.Cluster, a.Service, a.Revision)
	return nil
}

type releaseCmd struct {
	Image string `required:"" placeholder:"IMAGE" help:"The staged rollout's pinned image, <registry>/<repository>:<tag>@sha256:…, as its report and its held services name it."`
	Wave  int    `default:"-1" placeholder:"N" help:"The wave you mean to release; refused when another is the lowest that waits. Default: the lowest that waits."`
	JSON  bool   `name:"json" help:"Print the report as one line of JSON."`
	AWSFlags
}

// Run opens the lowest waiting wave of a staged rollout, in every target account.
func (c *releaseCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, false, "")
	if err != nil {
		return err
	}
	rep, err := s.engine.Release(s.ctx, c.Image, c.Wave)
	var refused *rollout.NotReleasableError
	switch {
	case errors.As(err, &refused):
		fmt.Fprintf(e.stderr, "pinroll release: %v\n", err)
		return exitError{exitFailed}
	case err != nil:
		return explain(c.Endpoint, err)
	}
	return print(e.stdout, "release", rep, c.JSON)
}
