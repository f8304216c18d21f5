// Package rollout is pinroll's engine: it turns one decoded event into one report, by way of
// the currency check, discovery, the plan and its application. The Lambda handler and the
// CLI both call it, so a local replay takes exactly the function's code path.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
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

// Engine handles events. Build it once per process (New, FromAWSConfig) and reuse it.
type Engine struct {
	Config config.Config
	// Targets are the accounts pinroll deploys in; the first is the one it runs in, the
	// others are reached through PINROLL_TARGET_ROLES. A single account is a list of one.
	Targets []*Target
	// ECR is the registry's: the account pinroll runs in, where pushes (and replicas) land.
	ECR ECR
	Log *slog.Logger
	// SSM receives write-backs when Config.ParameterPrefix is set.
	SSM SSM
	// Notifier receives every non-trivial report when set.
	Notifier Notifier
	// Queue sends continuations to Config.ContinueQueue (continue.go); nil: work that does
	// not fit one invocation is left to a redelivery of the event.
	Queue Queue
	// Joins collects, in the index table, the final parts of a push that continues in several
	// target accounts, so that one final report covers the event (join.go); nil: each
	// account's chain reports on its own.
	Joins Joins
	// Budget, when set, says how long the invocation may still start work, on the clock the
	// targets' pacers run on (a benchmark's scaled clock); nil: until the context's deadline.
	Budget func(context.Context) (time.Duration, bool)
}

// New wires an engine for one account from its clients. Its account is learnt later (see
// SetHomeAccount) or, for a local replay, taken from each event.
func New(cfg config.Config, ecsClient ECS, ecrClient ECR, log *slog.Logger) *Engine {
	return &Engine{
		Config:  cfg,
		Targets: []*Target{NewTarget("", "", ecsClient, ecrClient)},
		ECR:     ecrClient,
		Log:     log,
	}
}

// SetHomeAccount records the account pinroll runs in (the Lambda's own account, from its
// invocation's function ARN). Call it before handling events concurrently.
func (e *Engine) SetHomeAccount(account string) { e.Home().Account = account }

// Handle dispatches a decoded event to the code for its kind.
func (e *Engine) Handle(ctx context.Context, ev trigger.Event) (report.Report, error) {
	switch {
	case ev.Kind == trigger.KindPush:
		return e.Push(ctx, *ev.Push)
	case ev.Kind == trigger.KindDeployment && ev.SkipReason() != "":
		return skipped(report.Report{EventID: ev.ID, Kind: string(ev.Kind)}, ev.SkipReason()), nil
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

// Push deploys a pushed image (or a replica: the same thing in its own registry) to every
// service, in every target account, that tracks its repository and tag.
func (e *Engine) Push(ctx context.Context, p trigger.Push) (report.Report, error) {
	pushed := p.Pushed()
	rep := report.Report{EventID: p.EventID, Kind: string(trigger.KindPush), Image: pushed.Pinned()}
	if why := p.SkipReason(); why != "" {
		rep.Image = ""
		return skipped(rep, why), nil
	}
	if home := e.homeAccount(p.Account); !e.Config.RegistryAllowed(p.Account, home) {
		return skipped(rep, fmt.Sprintf("registry account %s may not deploy here (allowed: %s)", p.Account, e.allowedAccounts(home))), nil
	}

	current, why, err := e.tagIsCurrent(ctx, p)
	if err != nil {
		return report.Report{}, err
	}
	if !current {
		return skipped(rep, why), nil
	}

	parts, err := e.rollOut(ctx, p, nil, false)
	rep.Merge(parts)
	rep.LimitNearMisses(plan.DefaultNearMissLimit)
	if err != nil {
		return rep, err
	}
	e.conclude(&rep, p)
	concludeContinuing(&rep)
	if o := p.ReplicatedFrom; o != nil {
		rep.Reason += fmt.Sprintf(" (the replica from %s in %s)", o.Account, o.Region)
	}
	if rep.Outcome == report.Deployed || rep.Outcome == report.Unchanged {
		if err := e.writeBack(ctx, p.Repository, p.Tag, pushed.Pinned()); err != nil {
			return report.Report{}, err
		}
	}
	return rep, nil
}

// deployFleet plans a push against part of one target's fleet (a continuation's step), gates
// it as the whole push is gated (stageFleet), and deploys it without sending what is left.
func (e *Engine) deployFleet(ctx context.Context, t *Target, p trigger.Push, fleet *discover.Fleet) (report.Report, []discover.Service, error) {
	pl, s, err := e.stageFleet(ctx, t, p, fleet)
	if err != nil {
		return report.Report{}, nil, err
	}
	return e.deployPart(ctx, t, p, fleet, plan.Gate(pl, s), s.Staged)
}

// deployPart is deploy without sending what is left: it returns the services it did not
// start moving before the invocation's time ran out (none without a continuation queue).
func (e *Engine) deployPart(ctx context.Context, t *Target, p trigger.Push, fleet *discover.Fleet, pl plan.Plan, staged bool) (report.Report, []discover.Service, error) {
	pushed := p.Pushed()
	log := e.Log.With("event_id", p.EventID, "target", t.String(), "repository", p.Repository, "tag", p.Tag, "digest", p.Digest)
	rep := report.Report{Unchanged: pl.Unchanged, Skipped: pl.Skipped, NearMisses: pl.NearMisses, NearMissesOmitted: pl.NearMissesOmitted}
	log.Info("planned", "services_in_scope", len(fleet.Services), "task_definitions", len(fleet.TaskDefinitions),
		"registrations", len(pl.Registrations), "updates", pl.Services(), "held", pl.HeldServices(), "unchanged", len(pl.Unchanged), "skipped", len(pl.Skipped))
	switch {
	case pl.Empty():
		return rep, nil, nil
	case e.Config.DryRun:
		rep.Changes, rep.Held = planned(pl)
		return rep, nil, nil
	}

	res, rest := e.applyInTime(ctx, t, pl, pushed, apply.Audit{Tag: p.Tag, Digest: p.Digest, EventID: p.EventID, Staged: staged}, &rep)
	rest = e.carryPending(&res, rest, pl)
	rep.Changes, rep.Held, rep.Failed = res.Changes, res.Held, res.Failed
	rep.Skipped = append(rep.Skipped, res.Gone...)
	for _, f := range res.Failed {
		log.Error("service cannot be deployed; no retry helps", "cluster", f.Cluster, "service", f.Service, "why", f.Why)
	}
	if err := res.Err(); err != nil {
		log.Error("apply failed", "error", err, "services_updated", len(res.Changes))
		return rep, nil, err
	}
	log.Info("deployed", "services_updated", len(res.Changes), "services_held", len(res.Held), "services_failed", len(res.Failed), "services_left", len(rest))
	return rep, rest, nil
}

// pushTimes asks ECR when the images that glob-policy containers run were pushed, and the
// pushed one (plan.Input.PushTimes): one DescribeImages call per 100 images, none at all when
// no service in the fleet has a glob policy.
func (e *Engine) pushTimes(ctx context.Context, p trigger.Push, fleet *discover.Fleet) (map[string]time.Time, error) {
	pushed := p.Pushed()
	ids := map[string]ecrtypes.ImageIdentifier{}
	for _, svc := range fleet.Services {
		policy, err := plan.ParsePolicy(svc.Tags[plan.TagPolicy])
		td := fleet.TaskDefinitions[svc.TaskDefinition]
		if err != nil || policy.Glob == "" || td == nil || td.Definition == nil {
			continue
		}
		for _, c := range td.Definition.ContainerDefinitions {
			ref, err := imageref.Parse(aws.ToString(c.Image))
			if err != nil || !pushed.Names(ref) || ref.Tag == "" || ref.Tag == p.Tag {
				continue
			}
			if ref.Digest != "" {
				ids[ref.Digest] = ecrtypes.ImageIdentifier{ImageDigest: aws.String(ref.Digest)}
			} else {
				ids[plan.ImageID(ref)] = ecrtypes.ImageIdentifier{ImageTag: aws.String(ref.Tag)}
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ids[p.Digest] = ecrtypes.ImageIdentifier{ImageDigest: aws.String(p.Digest)}
	list := slices.Collect(maps.Values(ids))
	times := map[string]time.Time{}
	details, err := verify.DescribeImages(ctx, e.ECR, p.Account, p.Repository, list)
	if err != nil {
		return nil, fmt.Errorf("push times for glob policies: %w", err)
	}
	for _, d := range details {
		at := aws.ToTime(d.ImagePushedAt)
		times[aws.ToString(d.ImageDigest)] = at
		for _, tag := range d.ImageTags {
			times[":"+tag] = at
		}
	}
	return times, nil
}

// conclude sets the outcome and reason of a push's report from its lists.
func (e *Engine) conclude(rep *report.Report, p trigger.Push) {
	extra, approvals := "", 0
	for _, h := range rep.Held {
		if h.ForApproval() {
			approvals++
		}
	}
	if n := len(rep.Held); n > 0 {
		extra = fmt.Sprintf("; %s %s for an approval or a wave (see held)", count(n, "service"), plural(n, "waits", "wait"))
	}
	if n := len(rep.Failed); n > 0 {
		extra += fmt.Sprintf("; %s failed for good (see failed)", count(n, "service"))
	}
	switch {
	case len(rep.Changes) > 0 && e.Config.DryRun:
		rep.Outcome = report.Planned
		rep.Reason = "dry run: " + summary(rep.Changes, p.Digest, "would be")
	case len(rep.Changes) > 0:
		rep.Outcome = report.Deployed
		rep.Reason = summary(rep.Changes, p.Digest, "now") + extra
	case approvals > 0 && len(rep.Failed) == 0:
		rep.Outcome = report.AwaitingApproval
		rep.Reason = fmt.Sprintf("%s registered for %s, waiting for approval (see held: pinroll approve --cluster C --service S)", count(len(rep.Held), "service"), p.Digest)
		if e.Config.DryRun {
			rep.Outcome, rep.Reason = report.Planned, "dry run: "+rep.Reason
		}
	case len(rep.Failed) > 0:
		// Not an error: redelivering the event cannot help, so it must not loop into the
		// dead-letter queue. The outcome, the log, the metric and the notification say it.
		rep.Outcome = report.EventFailed
		rep.Reason = fmt.Sprintf("no service deployed: %s refused by ECS for good (see failed)", count(len(rep.Failed), "service"))
	case len(rep.Unchanged) > 0:
		rep.Outcome = report.Unchanged
		rep.Reason = fmt.Sprintf("%s already pinned to %s", count(len(rep.Unchanged), "service"), p.Digest) + extra
	case len(rep.Held) > 0:
		// Every service waits for a lower wave that another push of this digest deployed.
		rep.Outcome = report.Unchanged
		rep.Reason = fmt.Sprintf("%s registered for %s, waiting for their wave (see held)", count(len(rep.Held), "service"), p.Digest)
	case len(rep.Skipped) > 0:
		rep.Outcome = report.Skipped
		rep.Reason = fmt.Sprintf("%s tracks %s:%s but may not be deployed (see skipped)", count(len(rep.Skipped), "service"), p.Repository, p.Tag)
	default:
		rep.Outcome = report.Skipped
		rep.Reason = fmt.Sprintf("no service in scope tracks %s:%s", p.Pushed().Repository(), p.Tag)
	}
}

// tagIsCurrent asks ECR whether the event's tag still points at its digest. One
// DescribeImages call by digest answers both questions: is the digest in this repository
// (else an error), and is the tag among its tags (else the event is stale, and why says so).
// When the digest is gone, one more call by tag tells a stale event whose image has since
// been expired or deleted — the tag now points to an image pushed after the event: a skip,
// since nothing can deploy it and an error would page someone for nothing — from a digest
// ECR should hold but does not, or a tag that points nowhere (an error).
func (e *Engine) tagIsCurrent(ctx context.Context, p trigger.Push) (current bool, why string, err error) {
	out, err := e.describeImage(ctx, p, ecrtypes.ImageIdentifier{ImageDigest: aws.String(p.Digest)})
	var notFound *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &notFound):
		if now, terr := e.describeImage(ctx, p, ecrtypes.ImageIdentifier{ImageTag: aws.String(p.Tag)}); terr == nil && len(now.ImageDetails) > 0 {
			// Event times have whole seconds: only an image pushed in a later second is newer.
			if img := now.ImageDetails[0]; aws.ToTime(img.ImagePushedAt).Truncate(time.Second).After(p.Time) {
				return false, fmt.Sprintf("stale event: %s is no longer in %s (expired or deleted) and tag %s now points to %s, pushed after the event; nothing to deploy",
					p.Digest, p.Repository, p.Tag, aws.ToString(img.ImageDigest)), nil
			}
		}
		return false, "", &CurrencyError{Repository: p.Repository, Digest: p.Digest, Err: err}
	case errors.As(err, &noRepo):
		return false, "", &CurrencyError{Repository: p.Repository, Digest: p.Digest, Err: err}
	case err != nil:
		return false, "", fmt.Errorf("currency check: describe image %s in %s: %w", p.Digest, p.Repository, err)
	}
	for _, img := range out.ImageDetails {
		if aws.ToString(img.ImageDigest) == p.Digest && slices.Contains(img.ImageTags, p.Tag) {
			return true, "", nil
		}
	}
	if len(out.ImageDetails) == 0 {
		return false, "", &CurrencyError{Repository: p.Repository, Digest: p.Digest, Err: errors.New("ECR returned no image")}
	}
	return false, fmt.Sprintf("stale event: tag %s of %s no longer points to %s; a newer push has moved it", p.Tag, p.Repository, p.Digest), nil
}

func (e *Engine) describeImage(ctx context.Context, p trigger.Push, id ecrtypes.ImageIdentifier) (*ecr.DescribeImagesOutput, error) {
	return e.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: aws.String(p.Account), RepositoryName: aws.String(p.Repository), ImageIds: []ecrtypes.ImageIdentifier{id},
	})
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

// planned renders a dry-run plan as the changes it would make and the services it would hold.
func planned(pl plan.Plan) (changes []report.Change, held []report.Service) {
	for _, reg := range pl.Registrations {
		for _, svc := range reg.Services {
			changes = append(changes, report.Change{
				Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name,
				PreviousTaskDefinition: svc.TaskDefinition, Containers: reg.Containers,
			})
		}
		for _, h := range reg.Held {
			why := report.WouldWaitForApproval
			if !h.Approval {
				why = fmt.Sprintf("would wait: wave %d %s", h.Wave, h.Why)
			}
			held = append(held, report.Service{Account: h.Service.Account(), Cluster: h.Service.Cluster, Service: h.Service.Name, Why: why})
		}
	}
	return changes, held
}

func summary(changes []report.Change, digest, verb string) string {
	clusters, accounts := map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		clusters[c.Account+"/"+c.Cluster] = true
		accounts[c.Account] = true
	}
	where := count(len(clusters), "cluster")
	if len(accounts) > 1 {
		where += " of " + count(len(accounts), "account")
	}
	return fmt.Sprintf("%s in %s %s pinned to %s", count(len(changes), "service"), where, verb, digest)
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
