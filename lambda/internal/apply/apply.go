// Package apply carries out a plan: it registers each new task-definition revision once and
// moves the services to it. It is idempotent: a retry after a partial failure finds the
// revision the first attempt registered and reuses it, so a redelivered event never
// registers a duplicate revision.
//
// Three rules keep it so under faults, duplicates and races:
//
//   - RegisterTaskDefinition is never retried blindly. The SDK does not retry it (a request
//     that timed out may have succeeded); after a failure pinroll first looks again for the
//     revision the failed attempt may have registered, and only then tries once more.
//   - Each service is re-read right before UpdateService. If its task definition changed since
//     discovery (another run, a person, a rollback), it is not updated but returned as Moved, so
//     the caller can plan again from the revision it runs now.
//   - UpdateService's answer is checked too: if the deployment it replaced ran a revision other
//     than the one planned from, a concurrent update landed in between, and the service is
//     returned as Moved as well. So two runs racing on one service lose neither's change.
//
// And with the index table, a fourth: of several invocations handling the same change at
// once, one registers it and the others reuse its revision (see Claims).
//
// The context's deadline bounds the work: once it is done, no further step starts, and the
// error lists what was done and what was not.
package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/sleep"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
)

// ECS is the part of the ECS API applying a plan uses.
type ECS interface {
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	RegisterTaskDefinition(context.Context, *ecs.RegisterTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	UpdateService(context.Context, *ecs.UpdateServiceInput, ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error)
	TagResource(context.Context, *ecs.TagResourceInput, ...func(*ecs.Options)) (*ecs.TagResourceOutput, error)
	ListTaskDefinitions(context.Context, *ecs.ListTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
	UntagResource(context.Context, *ecs.UntagResourceInput, ...func(*ecs.Options)) (*ecs.UntagResourceOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// Audit tags on every revision pinroll registers (README, "Idempotent by construction").
const (
	TagTag      = contract.TagTag
	TagDigest   = contract.TagDigest
	TagEvent    = contract.TagEvent
	TagPrevious = contract.TagPrevious
	TagHeld     = contract.TagHeld
	TagReleased = contract.TagReleased
)

// Audit is what the audit tags record.
type Audit struct {
	Tag, Digest, EventID string
	// Staged: the push is a staged rollout (plan.Staging.Staged), so every service it
	// deploys records the revision in its pinroll:released tag, which tells the later waves
	// whether this deployment held (see plan.Stage).
	Staged bool
}

// MaxTags is ECS's limit of user tags on one resource (aws: tags do not count).
const MaxTags = 50

// updateConcurrency keeps UpdateService calls well under ECS's 5/s sustained rate.
const updateConcurrency = 4

// describeBatchSize is DescribeServices' maximum of services per call.
const describeBatchSize = 10

// Pacer spaces calls so that ECS's per-account token buckets are never overrun (a
// discover.Pacer, shared with discovery: the buckets are the account's, not the step's).
type Pacer interface {
	Wait(ctx context.Context, op string) error
}

// Applier applies plans.
type Applier struct {
	ECS ECS
	// Pace, when set, is waited on before every ECS call that has a bucket: above all
	// RegisterTaskDefinition (burst 20, then 1 a second) and UpdateService (burst 50, then 5 a
	// second), which a push to thousands of task definitions would otherwise overrun.
	Pace Pacer
	// Retryer decides whether and when a failed RegisterTaskDefinition is tried again (after
	// looking for what the failed attempt may have registered). Nil: the retryer the ECS
	// client is configured with (the SDK's standard one by default).
	Retryer aws.Retryer
	// Claims coordinates registrations with other invocations through the index table (see
	// Claims). Nil: none, and nothing said about it (tests of one invocation).
	Claims *Claims
}

// Moved is a service whose task definition changed under the run: before its update (it was
// not updated) or between the re-read and the update (the update replaced someone else's).
// Service.TaskDefinition is the revision to plan again from; Running is what the service
// runs now (the same, or, when the update replaced someone else's, the revision it set).
type Moved struct {
	Service discover.Service
	Running string
}

// Result is what Apply did. Every service of the plan ends in exactly one of its lists:
// Changes (moved to the new revision, or found on it already), Held (the revision waits for
// its approval), Moved (changed under the run: plan again), Gone (deleted or no longer
// ACTIVE), Failed (refused for good) or Pending (a transient failure: a retry finishes it).
type Result struct {
	Changes []report.Change
	Held    []report.Service
	Moved   []Moved
	Gone    []report.Service
	Failed  []report.Service
	Pending []Step
}

// Step is a step that failed for a reason a retry can fix, and the services it left undone.
type Step struct {
	Name     string   // "register a new revision of api:7", "update service prod/api"
	Services []string // cluster/service
	Err      error
}

// Add appends o's lists to r's.
func (r *Result) Add(o Result) {
	r.Changes = append(r.Changes, o.Changes...)
	r.Held = append(r.Held, o.Held...)
	r.Moved = append(r.Moved, o.Moved...)
	r.Gone = append(r.Gone, o.Gone...)
	r.Failed = append(r.Failed, o.Failed...)
	r.Pending = append(r.Pending, o.Pending...)
}

// Err is nil when nothing is pending, else the IncompleteError that names every pending step.
func (r Result) Err() error {
	if len(r.Pending) == 0 {
		return nil
	}
	ie := &IncompleteError{Done: r.Changes}
	steps := make([]string, len(r.Pending))
	errs := make([]error, len(r.Pending))
	for i, st := range r.Pending {
		steps[i], errs[i] = st.Name, st.Err
		ie.Pending = append(ie.Pending, st.Services...)
	}
	ie.Step, ie.Err = strings.Join(steps, "; "), errs[0]
	if len(errs) > 1 {
		ie.Err = errors.Join(errs...)
	}
	return ie
}

// IncompleteError says that a plan was applied only in part, for reasons a retry can fix
// (throttling, 5xx, timeouts, lost answers): which steps failed, what had been done and what
// had not. Redelivering the same event finishes the job (Lambda does so). Result.Err builds it.
type IncompleteError struct {
	Step    string          // the failed steps, joined
	Done    []report.Change // services moved before the failure
	Pending []string        // services ("cluster/service") not moved
	Err     error
}

func (e *IncompleteError) Error() string {
	pending := ""
	if n := len(e.Pending); n > 0 {
		pending = fmt.Sprintf(", %d not yet: %s", n, abbreviate(e.Pending, 5))
	}
	return fmt.Sprintf("%s: %v (%d service(s) updated%s; redelivering the event finishes the job)", e.Step, e.Err, len(e.Done), pending)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// MovedStep is the pending step of services that kept moving under the run, when planning
// again has been tried often enough.
func MovedStep(moved []Moved) Step {
	services := make([]discover.Service, len(moved))
	for i, m := range moved {
		services[i] = m.Service
	}
	n := names(services)
	return Step{Name: "update service " + abbreviate(n, 5), Services: n,
		Err: errors.New("the service's task definition changed while pinroll was deploying; planning again from the new revision is needed")}
}

// Apply registers the plan's revisions, then moves its services to them. running maps a
// service to the task definition it is known to run now, when that is not the one its plan
// starts from (a plan made again after services moved); nil for a first plan.
//
// A failure in one task definition or service does not stop the others (unless the context
// is done). A request ECS refuses as invalid fails its services for good (Result.Failed); any
// other failure leaves them pending (Result.Pending, Result.Err).
func (a *Applier) Apply(ctx context.Context, p plan.Plan, audit Audit, running map[discover.ServiceID]string) Result {
	var res Result
	var targets []target
	var held []*claimed // claims this call holds: marked done once their services are updated
	type deferred struct {
		reg  plan.Registration
		mine *index.Claim
	}
	var later []deferred // registrations another invocation holds the claim of
	keep := a.Claims.keep(ctx)
	defer keep.close()
	for _, reg := range p.Registrations {
		r := resolution{err: ctx.Err()}
		if r.err == nil {
			r = a.settle(ctx, reg, audit, nil, false)
		}
		if r.later {
			later = append(later, deferred{reg: reg, mine: r.mine})
			continue
		}
		targets = a.place(ctx, reg, audit, r, running, targets, &res)
		if r.held != nil {
			held = append(held, r.held)
			keep.add(r.held)
		}
	}
	a.update(ctx, targets, &res)
	a.done(ctx, keep, held)
	// Only now, with none of its own claims pending, does this call wait for others' claims:
	// two invocations never wait on each other.
	for _, d := range later {
		r := resolution{err: ctx.Err()}
		if r.err == nil {
			r = a.settle(ctx, d.reg, audit, d.mine, true)
		}
		keep.add(r.held)
		a.update(ctx, a.place(ctx, d.reg, audit, r, running, nil, &res), &res)
		if r.held != nil {
			a.done(ctx, keep, []*claimed{r.held})
		}
	}
	return res
}

// place sorts the services of reg by how its registration was settled: to update (appended to
// targets, which it returns), to hold for approval, failed for good or pending.
func (a *Applier) place(ctx context.Context, reg plan.Registration, audit Audit, r resolution, running map[discover.ServiceID]string, targets []target, res *Result) []target {
	step := "register a new revision of " + report.Revision(reg.FromARN())
	all := slices.Clone(reg.Services)
	for _, h := range reg.Held {
		all = append(all, h.Service)
	}
	switch err := r.err; {
	case err == nil:
		for _, svc := range reg.Services {
			targets = append(targets, target{svc: svc, arn: r.arn, containers: reg.Containers, running: cmp.Or(running[svc.ID()], svc.TaskDefinition), staged: audit.Staged})
		}
		for _, h := range reg.Held {
			a.hold(ctx, h, r.arn, audit, res)
		}
	case Refused(err):
		for _, svc := range all {
			res.Failed = append(res.Failed, serviceEntry(svc, step+": "+Refusal(err)))
		}
	default:
		res.Pending = append(res.Pending, Step{Name: step, Services: names(all), Err: err})
	}
	return targets
}

// maxTagValue is ECS's limit on a tag value.
const maxTagValue = 256

// hold records on a service that waits for an approval or its wave the revision registered
// for it (its pinroll:held tag), unless it records that one already: approving or releasing
// it is then one UpdateService. A newer push holds its newer revision in the same tag.
func (a *Applier) hold(ctx context.Context, h plan.HeldService, arn string, audit Audit, res *Result) {
	svc, revision := h.Service, report.Revision(arn)
	why := fmt.Sprintf(report.WaitsForApproval+"%s (%s): pinroll approve --cluster %s --service %s", revision, audit.Digest, svc.Cluster, svc.Name)
	if !h.Approval {
		why = fmt.Sprintf("wave %d %s; %s (%s) is registered and held", h.Wave, h.Why, revision, audit.Digest)
	}
	waits := serviceEntry(svc, why)
	switch {
	case svc.Tags[TagHeld] == revision:
		res.Held = append(res.Held, waits)
		return
	case len(revision) > maxTagValue:
		res.Failed = append(res.Failed, serviceEntry(svc, fmt.Sprintf("cannot hold %s for approval: its name has %d characters, more than the %d of an ECS tag value", revision, len(revision), maxTagValue)))
		return
	}
	_, err := a.ECS.TagResource(ctx, &ecs.TagResourceInput{
		ResourceArn: aws.String(svc.ARN), Tags: []types.Tag{{Key: aws.String(TagHeld), Value: aws.String(revision)}},
	})
	switch {
	case err == nil:
		res.Held = append(res.Held, waits)
	case Refused(err):
		res.Failed = append(res.Failed, serviceEntry(svc, "hold: "+Refusal(err)))
	default:
		res.Pending = append(res.Pending, Step{Name: "hold " + svc.Cluster + "/" + svc.Name, Services: names([]discover.Service{svc}), Err: err})
	}
}

// Input builds the registration input for reg: a field-for-field copy of the original with
// the planned images and the audit tags.
func Input(reg plan.Registration, audit Audit) (*ecs.RegisterTaskDefinitionInput, error) {
	tags := taskdef.RegisterTags(reg.From.Tags, map[string]string{
		TagTag:      audit.Tag,
		TagDigest:   audit.Digest,
		TagEvent:    audit.EventID,
		TagPrevious: reg.FromARN(),
	})
	in, err := taskdef.Clone(reg.From.Definition, tags)
	if err != nil {
		return nil, err
	}
	return taskdef.WithImages(in, reg.Images)
}

// register returns the ARN of the revision the services should run: one that an earlier
// attempt registered for the same change, or a new one.
//
// RegisterTaskDefinition is not idempotent: a request that timed out, lost its connection or
// got a 5xx answer may have registered the revision (its answer was lost), or may still do so
// (it is in flight). So the SDK never retries it; pinroll looks first. Before every attempt
// the family's latest revision is checked for the one an earlier attempt registered. After a
// failure that proves nothing was registered (throttling, a refused connection) it tries again
// with the retryer's backoff; after any other failure it looks once more and, finding nothing,
// stops with an error rather than risk a duplicate: the event's redelivery (a minute or more
// later, when anything in flight has landed) looks again.
//
// firstLook is what the first look may use instead of asking ECS (discovery's view of the
// family's latest revision, reg.Latest), nil to ask ECS. deep makes the first look go past the
// latest revision (recentAttempt): for a change another invocation may have registered before
// others of the family landed (a claim taken over). An error that wraps errUnknownOutcome may
// have registered the revision; any other proves nothing was registered.
func (a *Applier) register(ctx context.Context, reg plan.Registration, audit Audit, firstLook *discover.TaskDefinition, deep bool) (string, error) {
	in, err := Input(reg, audit)
	if err != nil {
		return "", err
	}
	if len(in.Tags) > MaxTags {
		own := len(taskdef.RegisterTags(reg.From.Tags, nil))
		return "", &RefusedError{Reason: fmt.Sprintf("%s has %d tags of its own and pinroll adds %d (%s, %s, %s, %s); ECS allows %d a resource: remove %d of its tags to let pinroll deploy it",
			report.Revision(reg.FromARN()), own, len(in.Tags)-own, TagTag, TagDigest, TagEvent, TagPrevious, MaxTags, len(in.Tags)-MaxTags)}
	}
	retryer := a.Retryer
	once := func(o *ecs.Options) {
		if retryer == nil {
			retryer = o.Retryer
		}
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1)
	}
	for attempt := 1; ; attempt++ {
		// The first look may use what discovery saw a moment ago; every later one asks ECS.
		snapshot := firstLook
		if attempt > 1 {
			snapshot = nil
		}
		if arn, err := a.earlierAttempt(ctx, reg, audit, in, snapshot); err != nil || arn != "" {
			return arn, err
		}
		if deep && attempt == 1 {
			if arn, err := a.recentAttempt(ctx, reg, audit, in); err != nil || arn != "" {
				return arn, err
			}
		}
		if err := a.wait(ctx, "RegisterTaskDefinition"); err != nil {
			return "", fmt.Errorf("register task definition: %w", err)
		}
		out, err := a.ECS.RegisterTaskDefinition(ctx, in, once)
		if err == nil {
			if out.TaskDefinition == nil || out.TaskDefinition.TaskDefinitionArn == nil {
				return "", errors.New("RegisterTaskDefinition answered without a task definition ARN")
			}
			return *out.TaskDefinition.TaskDefinitionArn, nil
		}
		if retryer == nil {
			retryer = retry.NewStandard()
		}
		if ctx.Err() != nil || !retryer.IsErrorRetryable(err) {
			if !notRegistered(err) && !refusedByECS(err) && !Refused(err) {
				return "", fmt.Errorf("register task definition: %w: %w", errUnknownOutcome, err)
			}
			return "", fmt.Errorf("register task definition: %w", err)
		}
		if !notRegistered(err) {
			if refusedByECS(err) || Refused(err) {
				return "", fmt.Errorf("register task definition: %w", err) // answered: nothing registered
			}
			if arn, cerr := a.earlierAttempt(ctx, reg, audit, in, nil); cerr == nil && arn != "" {
				return arn, nil // the request succeeded; only its answer was lost
			}
			if a.Claims != nil && a.Claims.Store != nil {
				// Under a claim, others wait for this answer: look past revisions of the family
				// that concurrent runs registered meanwhile.
				if arn, cerr := a.recentAttempt(ctx, reg, audit, in); cerr == nil && arn != "" {
					return arn, nil
				}
			}
			return "", fmt.Errorf("register task definition: %w (not retried now so as not to register a duplicate; the redelivery looks for it first): %w", errUnknownOutcome, err)
		}
		if attempt >= retryer.MaxAttempts() {
			return "", fmt.Errorf("register task definition (%d attempts): %w", attempt, err)
		}
		delay, derr := retryer.RetryDelay(attempt, err)
		if derr != nil {
			return "", fmt.Errorf("register task definition: %w", errors.Join(err, derr))
		}
		if sleep.For(ctx, delay) != nil {
			return "", fmt.Errorf("register task definition: %w", errors.Join(err, ctx.Err()))
		}
	}
}

// errUnknownOutcome marks a registration that may have succeeded: its answer was lost.
var errUnknownOutcome = errors.New("outcome unknown")

// notRegistered reports whether a failed RegisterTaskDefinition certainly registered
// nothing: ECS refused it for throttling, or it never reached ECS (the connection was
// refused or could not be made).
func notRegistered(err error) bool {
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// recentRevisions is how many of a family's newest revisions recentAttempt looks at.
const recentRevisions = 10

// recentAttempt is earlierAttempt past the latest revision: the family's newest revisions
// (recentRevisions, newest first, down to the base), for one pinroll registered for the same
// change. Revisions registered for other changes of the family (concurrent pushes of its other
// images) may have landed after the one looked for.
func (a *Applier) recentAttempt(ctx context.Context, reg plan.Registration, audit Audit, want *ecs.RegisterTaskDefinitionInput) (string, error) {
	family := aws.ToString(reg.From.Definition.Family)
	out, err := a.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
		FamilyPrefix: aws.String(family), Sort: types.SortOrderDesc, MaxResults: aws.Int32(recentRevisions),
	})
	if err != nil {
		return "", fmt.Errorf("list recent revisions of %s: %w", family, err)
	}
	for _, arn := range out.TaskDefinitionArns {
		f, rev, ok := familyRevision(arn)
		if !ok || f != family {
			continue // FamilyPrefix matches longer family names too
		}
		if rev <= reg.From.Definition.Revision {
			break
		}
		if err := a.wait(ctx, "DescribeTaskDefinition"); err != nil {
			return "", fmt.Errorf("describe %s: %w", report.Revision(arn), err)
		}
		d, err := a.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		})
		if err != nil {
			return "", fmt.Errorf("describe %s: %w", report.Revision(arn), err)
		}
		if m, err := matches(reg, audit, want, &discover.TaskDefinition{Definition: d.TaskDefinition, Tags: d.Tags}); err != nil || m != "" {
			return m, err
		}
	}
	return "", nil
}

// familyRevision splits a task definition ARN's family:revision.
func familyRevision(arn string) (family string, revision int32, ok bool) {
	_, rest, found := strings.Cut(arn, ":task-definition/")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(rest[i+1:], 10, 32)
	return rest[:i], int32(n), err == nil
}

// refusedByECS reports whether ECS answered the request with a 4xx error: it refused it, and
// registered nothing.
func refusedByECS(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

// earlierAttempt looks at the family's latest revision — the one discovery saw when given,
// else ECS's answer now: if pinroll registered it from the same revision, for the same
// digest, with the same content, it is reused. This is what makes a redelivery after a
// partial failure register nothing twice.
func (a *Applier) earlierAttempt(ctx context.Context, reg plan.Registration, audit Audit, want *ecs.RegisterTaskDefinitionInput, seen *discover.TaskDefinition) (string, error) {
	if seen == nil {
		family := aws.ToString(reg.From.Definition.Family)
		if err := a.wait(ctx, "DescribeTaskDefinition"); err != nil {
			return "", fmt.Errorf("describe latest revision of %s: %w", family, err)
		}
		out, err := a.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(family),
			Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		})
		if err != nil {
			return "", fmt.Errorf("describe latest revision of %s: %w", family, err)
		}
		seen = &discover.TaskDefinition{Definition: out.TaskDefinition, Tags: out.Tags}
	}
	return matches(reg, audit, want, seen)
}

// matches returns the ARN of seen if pinroll registered it for reg — from the same revision,
// for the same digest, with the same content — and "" otherwise.
func matches(reg plan.Registration, audit Audit, want *ecs.RegisterTaskDefinitionInput, seen *discover.TaskDefinition) (string, error) {
	latest := seen.Definition
	if latest == nil || aws.ToString(latest.TaskDefinitionArn) == reg.FromARN() {
		return "", nil
	}
	tags := tagMap(seen.Tags)
	if tags[TagPrevious] != reg.FromARN() || tags[TagDigest] != audit.Digest {
		return "", nil
	}
	have, err := taskdef.Clone(latest, nil)
	if err != nil || !taskdef.Equal(have, want) {
		return "", err
	}
	return aws.ToString(latest.TaskDefinitionArn), nil
}

// target is one service to move to a registered revision.
type target struct {
	svc        discover.Service
	arn        string
	containers []report.ContainerChange
	running    string // the task definition the service is expected to run now
	staged     bool   // record the deploy in the service's pinroll:released tag
}

// update moves every target service to its new revision, ten services of a cluster at a
// time: the ten are re-read with one DescribeServices call right before they are updated, so
// what is checked is fresh even in a fleet of thousands. A service that runs the new revision
// already counts as done, one that runs neither it nor the planned-from revision is Moved.
// One service failing does not stop the others: each update is independent, and the more are
// done, the less a retry has to do.
func (a *Applier) update(ctx context.Context, targets []target, res *Result) {
	outcomes := make([]outcome, len(targets))
	byCluster := map[string][]int{}
	var clusters []string
	for i, t := range targets {
		c := cmp.Or(t.svc.ClusterARN, t.svc.Cluster)
		if _, ok := byCluster[c]; !ok {
			clusters = append(clusters, c)
		}
		byCluster[c] = append(byCluster[c], i)
	}
	var g errgroup.Group
	g.SetLimit(updateConcurrency)
	for _, c := range clusters {
		for batch := range slices.Chunk(byCluster[c], describeBatchSize) {
			g.Go(func() error {
				current, err := a.reread(ctx, c, targets, batch)
				for j, i := range batch {
					if err != nil {
						outcomes[i].err = err
						continue
					}
					outcomes[i] = a.updateService(ctx, targets[i], current[j])
				}
				return nil
			})
		}
	}
	_ = g.Wait() // the goroutines report through outcomes
	var failed []string
	var errs []error
	for i, t := range targets {
		o, svc := outcomes[i], t.svc
		switch {
		case o.err != nil && Refused(o.err):
			res.Failed = append(res.Failed, serviceEntry(svc, "update service: "+Refusal(o.err)))
		case o.err != nil:
			failed = append(failed, svc.Cluster+"/"+svc.Name)
			errs = append(errs, fmt.Errorf("%s/%s: %w", svc.Cluster, svc.Name, o.err))
		case o.planFrom != "":
			m := svc
			m.TaskDefinition = o.planFrom
			res.Moved = append(res.Moved, Moved{Service: m, Running: o.running})
		case o.gone:
			res.Gone = append(res.Gone, serviceEntry(svc, "deleted or no longer ACTIVE while pinroll was deploying"))
		default:
			res.Changes = append(res.Changes, report.Change{
				Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name,
				TaskDefinition: t.arn, PreviousTaskDefinition: t.running,
				Containers: t.containers,
			})
		}
	}
	if len(failed) > 0 {
		res.Pending = append(res.Pending, Step{Name: "update service " + abbreviate(failed, 5), Services: failed, Err: errors.Join(errs...)})
	}
}

// outcome is what happened to one service: updated (zero value), moved, gone or failed.
type outcome struct {
	planFrom string // moved: the revision to plan again from
	running  string // moved: the revision it runs now
	gone     bool   // deleted or no longer ACTIVE: nothing to deploy to
	err      error
}

// reread describes the batch's services (at most ten, of one cluster) again and returns
// what each runs now (nil: not found).
func (a *Applier) reread(ctx context.Context, cluster string, targets []target, batch []int) ([]*types.Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	arns := make([]string, len(batch))
	for j, i := range batch {
		arns[j] = cmp.Or(targets[i].svc.ARN, targets[i].svc.Name)
	}
	if err := a.wait(ctx, "DescribeServices"); err != nil {
		return nil, err
	}
	out, err := a.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: arns})
	if err != nil {
		return nil, fmt.Errorf("re-read service before updating it: %w", err)
	}
	current := make([]*types.Service, len(batch))
	for j, i := range batch {
		for k := range out.Services {
			if s := &out.Services[k]; aws.ToString(s.ServiceName) == targets[i].svc.Name {
				current[j] = s
			}
		}
	}
	return current, nil
}

// updateService moves one service to its new revision unless it moved or went away since
// discovery.
func (a *Applier) updateService(ctx context.Context, t target, cur *types.Service) outcome {
	if cur == nil || aws.ToString(cur.Status) != "ACTIVE" {
		return outcome{gone: true}
	}
	switch now := aws.ToString(cur.TaskDefinition); {
	case now == t.arn:
		return outcome{err: a.deployed(ctx, t)} // an earlier or concurrent attempt moved it already
	case now != t.running:
		return outcome{planFrom: now, running: now}
	}
	if err := a.wait(ctx, "UpdateService"); err != nil {
		return outcome{err: err}
	}
	out, err := a.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster:        aws.String(t.svc.ClusterARN),
		Service:        aws.String(t.svc.Name),
		TaskDefinition: aws.String(t.arn),
	})
	if err != nil {
		return outcome{err: err}
	}
	if replaced := replacedTaskDefinition(out.Service); replaced != "" && replaced != t.running && replaced != t.arn {
		// Someone else's update landed between the re-read and ours, and ours replaced it:
		// plan again from their revision, or their change is lost.
		return outcome{planFrom: replaced, running: t.arn}
	}
	return outcome{err: a.deployed(ctx, t)}
}

// deployed brings a deployed service's tags up to date, after the update (recorded first, a
// failed update would look like a deployment that failed): a staged rollout's deploy is
// recorded in its pinroll:released tag, and a revision it held (for its wave) is no longer
// waiting.
func (a *Applier) deployed(ctx context.Context, t target) error {
	if revision := report.Revision(t.arn); t.staged && t.svc.Tags[TagReleased] != revision {
		_, err := a.ECS.TagResource(ctx, &ecs.TagResourceInput{
			ResourceArn: aws.String(t.svc.ARN), Tags: []types.Tag{{Key: aws.String(TagReleased), Value: aws.String(revision)}},
		})
		if err != nil {
			return fmt.Errorf("record the deploy in %s: %w", TagReleased, err)
		}
	}
	if t.svc.Tags[TagHeld] != "" {
		if _, err := a.ECS.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(t.svc.ARN), TagKeys: []string{TagHeld}}); err != nil {
			return fmt.Errorf("remove %s: %w", TagHeld, err)
		}
	}
	return nil
}

// replacedTaskDefinition is the task definition of the deployment an update just replaced:
// the newest deployment other than the PRIMARY one ("" when none is listed, e.g. when the
// previous one had completed and been drained already).
func replacedTaskDefinition(s *types.Service) string {
	if s == nil {
		return ""
	}
	var newest *types.Deployment
	for i := range s.Deployments {
		d := &s.Deployments[i]
		if aws.ToString(d.Status) == "PRIMARY" {
			continue
		}
		if newest == nil || aws.ToTime(d.CreatedAt).After(aws.ToTime(newest.CreatedAt)) {
			newest = d
		}
	}
	if newest == nil {
		return ""
	}
	return aws.ToString(newest.TaskDefinition)
}

// wait waits for op's bucket (Pace), or only checks the context when nothing paces.
func (a *Applier) wait(ctx context.Context, op string) error {
	if a.Pace == nil {
		return ctx.Err()
	}
	return a.Pace.Wait(ctx, op)
}

func serviceEntry(svc discover.Service, why string) report.Service {
	return report.Service{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Why: why}
}

func names(services []discover.Service) []string {
	out := make([]string, len(services))
	for i, s := range services {
		out[i] = s.Cluster + "/" + s.Name
	}
	return out
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
