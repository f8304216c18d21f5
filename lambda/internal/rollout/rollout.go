// Package rollout is pinroll's engine: it turns one decoded event into one report, by way of
// the currency check, discovery, the plan and its application. The Lambda handler and the
// CLI both call it, so a local replay takes exactly the function's code path.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// ECR is the part of the ECR API the engine uses.
type ECR interface {
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

var _ ECR = (*ecr.Client)(nil)

// ECS is every ECS operation the engine's parts use.
type ECS interface {
	discover.ECS
	apply.ECS
	verify.ECS
}

// Engine handles events. Build it once per process (New) and reuse it.
type Engine struct {
	Config     config.Config
	ECS        ECS
	ECR        ECR
	Discoverer *discover.Discoverer
	Applier    *apply.Applier
	Verifier   *verify.Verifier
	Log        *slog.Logger
	// SSM receives write-backs when Config.ParameterPrefix is set.
	SSM SSM
	// Notifier receives every non-trivial report when set.
	Notifier Notifier
}

// New wires an engine from its clients.
func New(cfg config.Config, ecsClient ECS, ecrClient ECR, log *slog.Logger) *Engine {
	return &Engine{
		Config:     cfg,
		ECS:        ecsClient,
		ECR:        ecrClient,
		Discoverer: discover.New(ecsClient),
		Applier:    &apply.Applier{ECS: ecsClient},
		Verifier:   &verify.Verifier{ECS: ecsClient, ECR: ecrClient},
		Log:        log,
	}
}

type homeAccountKey struct{}

// WithHomeAccount records the account pinroll runs in (the Lambda's own account). Without
// it, the event's account is taken as home: right for a local replay.
func WithHomeAccount(ctx context.Context, account string) context.Context {
	return context.WithValue(ctx, homeAccountKey{}, account)
}

func homeAccount(ctx context.Context, fallback string) string {
	if a, _ := ctx.Value(homeAccountKey{}).(string); a != "" {
		return a
	}
	return fallback
}

// Handle dispatches a decoded event to the code for its kind.
func (e *Engine) Handle(ctx context.Context, ev trigger.Event) (report.Report, error) {
	switch {
	case ev.Kind == trigger.KindPush:
		return e.Push(ctx, *ev.Push)
	case ev.Kind == trigger.KindDeployment && ev.Ignore() != "":
		return skipped(report.Report{EventID: ev.ID, Kind: string(ev.Kind)}, ev.Ignore()), nil
	case ev.Kind == trigger.KindDeployment:
		return e.Deployment(ctx, *ev.Deployment)
	case ev.Kind == trigger.KindReconcile:
		return e.Reconcile(ctx, *ev.Reconcile)
	default:
		return report.Report{}, fmt.Errorf("event %s: pinroll does not handle %s events yet", ev.ID, ev.Kind)
	}
}

// CurrencyError is returned when ECR does not hold the pushed digest in the pushed
// repository at all. (A stale event, whose tag has merely moved on, is a skip, not an error.)
type CurrencyError struct {
	Repository, Digest string
	Err                error
}

func (e *CurrencyError) Error() string {
	return fmt.Sprintf("currency check: %s is not an image of repository %s: %v", e.Digest, e.Repository, e.Err)
}

func (e *CurrencyError) Unwrap() error { return e.Err }

// Push deploys a pushed image to every service that tracks its repository and tag.
func (e *Engine) Push(ctx context.Context, p trigger.Push) (report.Report, error) {
	t := p.Pushed()
	pinned := t.Pinned()
	rep := report.Report{EventID: p.EventID, Kind: string(trigger.KindPush), Image: pinned}
	if why := p.Ignore(); why != "" {
		rep.Image = ""
		return skipped(rep, why), nil
	}
	if home := homeAccount(ctx, p.Account); !e.Config.RegistryAllowed(p.Account, home) {
		return skipped(rep, fmt.Sprintf("registry account %s may not deploy here (allowed: %s)", p.Account, e.allowedAccounts(home))), nil
	}

	current, err := e.tagIsCurrent(ctx, p)
	if err != nil {
		return report.Report{}, err
	}
	if !current {
		return skipped(rep, fmt.Sprintf("stale event: tag %s of %s no longer points to %s; a newer push has moved it", p.Tag, p.Repository, p.Digest)), nil
	}

	fleet, err := e.Discoverer.Discover(ctx, e.Config.Clusters)
	if err != nil {
		return report.Report{}, fmt.Errorf("discover services: %w", err)
	}
	rep, err = e.deploy(ctx, p, fleet, rep)
	if err != nil {
		return report.Report{}, err
	}
	if rep.Outcome == report.Deployed || rep.Outcome == report.Unchanged {
		if err := e.writeBack(ctx, p.Repository, p.Tag, pinned); err != nil {
			return report.Report{}, err
		}
	}
	return rep, nil
}

// deploy plans a push that is known to be current against a discovered fleet and applies
// the plan (unless this is a dry run). Push and reconciliation share it.
func (e *Engine) deploy(ctx context.Context, p trigger.Push, fleet *discover.Fleet, rep report.Report) (report.Report, error) {
	t := p.Pushed()
	log := e.Log.With("event_id", p.EventID, "repository", p.Repository, "tag", p.Tag, "digest", p.Digest)
	pl := plan.Make(plan.Input{Pushed: t, Fleet: fleet, RequireOptIn: e.Config.RequireOptIn})
	rep.Unchanged, rep.Skipped = pl.Unchanged, pl.Skipped
	rep.NearMisses, rep.NearMissesOmitted = pl.NearMisses, pl.NearMissesOmitted
	log.Info("planned", "services_in_scope", len(fleet.Services), "task_definitions", len(fleet.TaskDefinitions),
		"registrations", len(pl.Registrations), "updates", pl.Services(), "unchanged", len(pl.Unchanged), "skipped", len(pl.Skipped))

	switch {
	case pl.Empty() && len(pl.Unchanged) > 0:
		rep.Outcome = report.Unchanged
		rep.Reason = fmt.Sprintf("%s already pinned to %s", count(len(pl.Unchanged), "service"), p.Digest)
		return rep, nil
	case pl.Empty():
		why := fmt.Sprintf("no service in scope tracks %s:%s", t.Repository(), t.Tag)
		if n := len(pl.Skipped); n > 0 {
			why = fmt.Sprintf("%s tracks %s:%s but may not be deployed (see skipped)", count(n, "service"), p.Repository, p.Tag)
		}
		return skipped(rep, why), nil
	case e.Config.DryRun:
		rep.Outcome = report.Planned
		rep.Changes = planned(pl)
		rep.Reason = "dry run: " + summary(rep.Changes, p.Digest, "would be")
		return rep, nil
	}

	res := e.applyAndReplan(ctx, pl, t, apply.Audit{Tag: p.Tag, Digest: p.Digest, EventID: p.EventID}, &rep)
	rep.Changes, rep.Failed = res.Changes, res.Failed
	rep.Skipped = append(rep.Skipped, res.Gone...)
	if err := res.Err(); err != nil {
		log.Error("apply failed", "error", err, "services_updated", len(res.Changes))
		return rep, err
	}
	for _, f := range res.Failed {
		log.Error("service cannot be deployed; no retry helps", "cluster", f.Cluster, "service", f.Service, "why", f.Why)
	}
	switch {
	case len(res.Changes) == 0 && len(res.Failed) > 0:
		// Not an error: redelivering the event cannot help, so it must not loop into the
		// dead-letter queue. The outcome, the log, the metric and the notification say it.
		rep.Outcome = report.EventFailed
		rep.Reason = fmt.Sprintf("no service deployed: %s refused by ECS for good (see failed)", count(len(res.Failed), "service"))
	default:
		rep.Outcome = report.Deployed
		rep.Reason = summary(res.Changes, p.Digest, "now")
		if n := len(res.Failed); n > 0 {
			rep.Reason += fmt.Sprintf("; %s failed for good (see failed)", count(n, "service"))
		}
	}
	log.Info("deployed", "services_updated", len(res.Changes), "services_failed", len(res.Failed))
	return rep, nil
}

// tagIsCurrent asks ECR whether the event's tag still points at its digest. One
// DescribeImages call by digest answers both questions: is the digest in this repository
// (else an error), and is the tag among its tags (else the event is stale).
func (e *Engine) tagIsCurrent(ctx context.Context, p trigger.Push) (bool, error) {
	out, err := e.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId:     aws.String(p.Account),
		RepositoryName: aws.String(p.Repository),
		ImageIds:       []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(p.Digest)}},
	})
	var notFound *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &notFound), errors.As(err, &noRepo):
		return false, &CurrencyError{Repository: p.Repository, Digest: p.Digest, Err: err}
	case err != nil:
		return false, fmt.Errorf("currency check: describe image %s in %s: %w", p.Digest, p.Repository, err)
	}
	for _, img := range out.ImageDetails {
		if aws.ToString(img.ImageDigest) == p.Digest && slices.Contains(img.ImageTags, p.Tag) {
			return true, nil
		}
	}
	if len(out.ImageDetails) == 0 {
		return false, &CurrencyError{Repository: p.Repository, Digest: p.Digest, Err: errors.New("ECR returned no image")}
	}
	return false, nil
}

func (e *Engine) allowedAccounts(home string) string {
	if len(e.Config.RegistryAccounts) == 0 {
		return home + " (this account; set " + config.EnvRegistryAccounts + " to allow others)"
	}
	return fmt.Sprint(e.Config.RegistryAccounts)
}

func skipped(rep report.Report, why string) report.Report {
	rep.Outcome, rep.Reason = report.Skipped, why
	return rep
}

// planned renders a dry-run plan as the changes it would make.
func planned(pl plan.Plan) []report.Change {
	var changes []report.Change
	for _, reg := range pl.Registrations {
		for _, svc := range reg.Services {
			changes = append(changes, report.Change{
				Cluster: svc.Cluster, Service: svc.Name,
				PreviousTaskDefinition: svc.TaskDefinition, Containers: reg.Containers,
			})
		}
	}
	return changes
}

func summary(changes []report.Change, digest, verb string) string {
	clusters := map[string]bool{}
	for _, c := range changes {
		clusters[c.Cluster] = true
	}
	return fmt.Sprintf("%s in %s %s pinned to %s", count(len(changes), "service"), count(len(clusters), "cluster"), verb, digest)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
