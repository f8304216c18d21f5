package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// A push is rolled out in three steps, so that waves (pinroll:wave) can span target
// accounts: plan it in every target (planTargets), decide across all of them what moves now
// (stage, plan.Stage), then apply each target's share (applyTargets). Push, reconciliation,
// the deployment events that move a staged rollout on, and `pinroll release` all take this
// one path; the state it decides from is ECS's own: what each service runs and its
// deployment's state, its pinroll:held revision, and its pinroll:released revision.

// targetPlan is one target's share of a push.
type targetPlan struct {
	t     *Target
	fleet *discover.Fleet
	plan  plan.Plan
	err   error // planning failed here: its services are not known
}

// rollOut plans a current push in every target (discovering each, unless fleets has it),
// stages it across them and applies it. release opens the lowest wave that waits, whatever
// the one before it did (pinroll release).
func (e *Engine) rollOut(ctx context.Context, p trigger.Push, fleets map[*Target]*discover.Fleet, release bool) (report.Report, error) {
	plans := e.planTargets(ctx, p, fleets)
	staging, err := e.stage(ctx, p, plans, release)
	if err != nil {
		return report.Report{}, err
	}
	return e.applyTargets(ctx, p, plans, staging)
}

// planTargets discovers (unless fleets has it) and plans the push in every target, in
// parallel, at most maxParallelTargets at once (as eachTarget).
func (e *Engine) planTargets(ctx context.Context, p trigger.Push, fleets map[*Target]*discover.Fleet) []*targetPlan {
	plans := make([]*targetPlan, len(e.Targets))
	slots := make(chan struct{}, maxParallelTargets)
	var wg sync.WaitGroup
	for i, t := range e.Targets {
		plans[i] = &targetPlan{t: t, fleet: fleets[t]}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			tp := plans[i]
			defer func() {
				if r := recover(); r != nil {
					tp.err = fmt.Errorf("internal error: %v", r)
				}
			}()
			if tp.fleet == nil {
				if tp.fleet, tp.err = t.Discoverer.Discover(ctx, e.Config.Clusters); tp.err != nil {
					tp.err = fmt.Errorf("discover services: %w", tp.err)
					return
				}
			}
			times, err := e.pushTimes(ctx, p, tp.fleet)
			if err != nil {
				tp.err = err
				return
			}
			tp.plan = plan.Make(plan.Input{Pushed: p.Pushed(), Fleet: tp.fleet, RequireOptIn: e.Config.RequireOptIn, PushTimes: times})
		})
	}
	wg.Wait()
	return plans
}

// stageFleet plans a push against part of one target's fleet — a continuation's step — and
// stages it as the whole push is staged. When every service of the part is of wave 0 (the
// usual case), the part alone decides: wave 0 never waits for another. Otherwise only the
// whole push, across every target, can say whether the part's wave is open, so it is planned
// again everywhere.
func (e *Engine) stageFleet(ctx context.Context, t *Target, p trigger.Push, fleet *discover.Fleet) (plan.Plan, plan.Staging, error) {
	times, err := e.pushTimes(ctx, p, fleet)
	if err != nil {
		return plan.Plan{}, plan.Staging{}, err
	}
	part := &targetPlan{t: t, fleet: fleet, plan: plan.Make(plan.Input{Pushed: p.Pushed(), Fleet: fleet, RequireOptIn: e.Config.RequireOptIn, PushTimes: times})}
	plans := []*targetPlan{part}
	if slices.ContainsFunc(fleet.Services, func(svc discover.Service) bool { return plan.WaveOf(svc) > 0 }) {
		plans = e.planTargets(ctx, p, nil)
	}
	s, err := e.stage(ctx, p, plans, false)
	return part.plan, s, err
}

// member is one service of the push and where it lives.
type member struct {
	plan.Member
	t  *Target
	td *discover.TaskDefinition // what it runs
}

// stage decides, across every target, what moves now. A push whose services are all of one
// wave needs no more than their tags; a staged one asks ECS how far each service has come:
// what it runs, its deployment's state, and — for the services of the wave that gates the
// next, once ECS says their deployments completed — their running tasks.
func (e *Engine) stage(ctx context.Context, p trigger.Push, plans []*targetPlan, release bool) (plan.Staging, error) {
	var members []*member
	waves := map[int]bool{}
	for _, tp := range plans {
		if tp.err != nil {
			continue
		}
		byName := map[string]discover.Service{}
		for _, svc := range tp.fleet.Services {
			byName[svc.Cluster+"/"+svc.Name] = svc
		}
		for _, m := range plan.Members(tp.plan) {
			members = append(members, &member{Member: m, t: tp.t})
			waves[m.Wave] = true
		}
		for _, u := range tp.plan.Unchanged { // already on the digest: how far did it come?
			svc, ok := byName[u.Cluster+"/"+u.Service]
			if !ok {
				continue
			}
			m := &member{Member: plan.Member{Service: svc, Wave: plan.WaveOf(svc), Progress: plan.Deployed}, t: tp.t, td: tp.fleet.TaskDefinitions[svc.TaskDefinition]}
			members = append(members, m)
			waves[m.Wave] = true
		}
	}
	in := plan.StageInput{Release: release}
	if len(waves) > 1 {
		for _, m := range members {
			if err := e.progress(ctx, p, m); err != nil {
				return plan.Staging{}, err
			}
		}
	}
	for _, m := range members {
		in.Members = append(in.Members, m.Member)
	}
	s := plan.Stage(in)
	if len(s.Check) > 0 {
		if err := e.check(ctx, members, s.Check); err != nil {
			return plan.Staging{}, err
		}
		in.Members = in.Members[:0]
		for _, m := range members {
			in.Members = append(in.Members, m.Member)
		}
		s = plan.Stage(in)
	}
	e.holdForUnknownTargets(&s, plans)
	if len(s.Halted) > 0 {
		for id, h := range s.Hold {
			if !h.Approval {
				h.Why += "; to go on anyway: pinroll release --image " + p.Pushed().Pinned()
				s.Hold[id] = h
			}
		}
	}
	return s, nil
}

// progress fills in how far a service of a staged push has come, from ECS's state: one that
// does not run the digest waits — unless this rollout deployed it already (its
// pinroll:released revision carries the digest), and it runs something else now: failed.
// One on the digest is as far as its PRIMARY deployment (discover.Service.Rollout: under
// BLUE_GREEN, LINEAR and CANARY through the bake time too).
func (e *Engine) progress(ctx context.Context, p trigger.Push, m *member) error {
	svc := m.Service
	if m.Progress == plan.Waiting {
		released := svc.Tags[plan.TagReleased]
		if released == "" {
			return nil
		}
		td, err := m.t.Discoverer.Describe(ctx, revisionARN(svc, released))
		switch {
		case apply.Refused(err):
			return nil // no such revision (deleted, or the tag was edited): not this rollout's
		case err != nil:
			// Not guessed: taken for waiting, a failed service would be deployed again.
			return fmt.Errorf("describe %s, the revision %s/%s was deployed: %w", released, svc.Cluster, svc.Name, err)
		}
		if tagValue(td.Tags, apply.TagDigest) == p.Digest {
			m.Progress = plan.Failed
			m.Why = fmt.Sprintf("runs %s, not %s it was deployed", report.Revision(svc.TaskDefinition), released)
			if svc.RolloutReason != "" {
				m.Why += " (" + strings.TrimSuffix(svc.RolloutReason, ".") + ")"
			}
		}
		return nil
	}
	switch {
	case svc.Rollout != nil: // still rolling out, or baking (BLUE_GREEN, LINEAR, CANARY)
		m.Progress = plan.Deploying
	case svc.RolloutState == "FAILED":
		m.Progress, m.Why = plan.Failed, "deployment failed: "+svc.RolloutReason
	default: // COMPLETED, or no state given: its tasks tell
		m.Progress = plan.Deployed
	}
	return nil
}

// check verifies the running tasks of the services whose deployments completed.
func (e *Engine) check(ctx context.Context, members []*member, ids []discover.ServiceID) error {
	want := map[discover.ServiceID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, m := range members {
		if !want[m.Service.ID()] || m.td == nil {
			continue
		}
		vs, err := m.t.Verifier.Service(ctx, m.Service, m.td.Definition, &verify.TagDigests{})
		if err != nil {
			return fmt.Errorf("verify %s/%s: %w", m.Service.Cluster, m.Service.Name, err)
		}
		switch outcome, why := verify.Outcome(vs); outcome {
		case report.Verified:
			m.Progress = plan.Verified
		case report.Mismatch:
			m.Progress, m.Why = plan.Failed, "mismatch: "+why
		}
	}
	return nil
}

// holdForUnknownTargets keeps every wave but the first from moving while a target could not
// be planned: its services are not known, and one of them may be of a lower wave still
// deploying, or failed. The event's redelivery (or the next deployment event) decides again.
func (e *Engine) holdForUnknownTargets(s *plan.Staging, plans []*targetPlan) {
	var unknown []string
	for _, tp := range plans {
		if tp.err != nil {
			unknown = append(unknown, tp.t.String())
		}
	}
	if len(unknown) == 0 || s.Open <= 0 {
		return
	}
	for id := range s.Move {
		s.Hold[id] = plan.Hold{Why: fmt.Sprintf("waits: %s could not be planned, so whether the waves below are verified is not known", strings.Join(unknown, ", ")), Wave: s.Open}
		delete(s.Move, id)
	}
	s.Open = -1
}

// applyTargets applies each target's share of a staged push, in parallel, and reports. It
// fills the report's lists; conclude decides the outcome once every target has reported.
// staged records each deploy on its service for the later waves (apply.Audit). What does not
// fit the invocation's time continues on the continuation queue, once every target is done
// (continueTargets).
func (e *Engine) applyTargets(ctx context.Context, p trigger.Push, plans []*targetPlan, s plan.Staging) (report.Report, error) {
	byTarget := map[*Target]*targetPlan{}
	for _, tp := range plans {
		byTarget[tp.t] = tp
	}
	var mu sync.Mutex
	done := map[*Target]*targetDone{}
	rep, err := e.eachTarget(ctx, func(ctx context.Context, t *Target) (report.Report, error) {
		tp := byTarget[t]
		if tp.err != nil {
			return report.Report{}, tp.err
		}
		rep, rest, err := e.deployPart(ctx, t, p, tp.fleet, plan.Gate(tp.plan, s), s.Staged)
		if err == nil && s.Staged && !e.Config.DryRun {
			err = e.recordReleased(ctx, t, p, tp)
		}
		mu.Lock()
		done[t] = &targetDone{rep: rep, rest: rest, ok: err == nil}
		mu.Unlock()
		return rep, err
	})
	continuing, sendErrs := e.continueTargets(ctx, p, done)
	rep.Continuing += continuing
	return rep, e.withTargetErrors(err, sendErrs)
}

// recordReleased makes sure each service of a staged push that runs the digest records it in
// its pinroll:released tag (apply sets it with each deploy; this repairs a tag whose write
// was lost, and takes in services that ran the digest before the push was staged).
func (e *Engine) recordReleased(ctx context.Context, t *Target, p trigger.Push, tp *targetPlan) error {
	byName := map[string]discover.Service{}
	for _, svc := range tp.fleet.Services {
		byName[svc.Cluster+"/"+svc.Name] = svc
	}
	for _, u := range tp.plan.Unchanged {
		svc, ok := byName[u.Cluster+"/"+u.Service]
		if !ok || svc.Tags[plan.TagReleased] == report.Revision(svc.TaskDefinition) {
			continue
		}
		if err := tagService(ctx, t.ECS, svc.ARN, plan.TagReleased, report.Revision(svc.TaskDefinition)); err != nil {
			return fmt.Errorf("record %s on %s/%s: %w", plan.TagReleased, svc.Cluster, svc.Name, err)
		}
	}
	return nil
}

// tagService sets one tag on a service.
func tagService(ctx context.Context, c apply.ECS, serviceARN, key, value string) error {
	_, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(serviceARN), Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(value)}}})
	return err
}

// revisionARN is the ARN of revision (family:revision) in svc's account and region.
func revisionARN(svc discover.Service, revision string) string {
	a, err := arn.Parse(svc.ARN)
	if err != nil {
		return revision
	}
	return arn.ARN{Partition: a.Partition, Service: "ecs", Region: a.Region, AccountID: a.AccountID, Resource: "task-definition/" + revision}.String()
}

// waveMu serialises, in one process, the steps that move staged rollouts on, so two
// deployment events handled at once never release a wave twice. Across processes the
// release is idempotent on its own: each service is re-read right before its update, and a
// service that runs the held revision already is done.
var waveMu sync.Mutex

// releaseAfter is what a deployment event does for a staged rollout: when the service it is
// about carries a pinroll:released revision (it was deployed by a staged push) pinned to
// digest, the push is rolled out again from ECS's state, which opens the next wave when this
// one is verified, or lists the later waves as halted when it failed. A push whose tag has
// moved on since is left to the newer push's own rollout.
func (e *Engine) releaseAfter(ctx context.Context, svcTags map[string]string, deployed *discover.TaskDefinition, failed bool, rep *report.Report) error {
	released := svcTags[plan.TagReleased]
	if released == "" || released != report.Revision(aws.ToString(deployed.Definition.TaskDefinitionArn)) {
		return nil
	}
	digest := tagValue(deployed.Tags, apply.TagDigest)
	push, err := heldPush(pinnedImage(deployed.Definition, digest), tagValue(deployed.Tags, apply.TagEvent))
	if err != nil {
		return nil // not a revision pinroll pinned for a push: nothing staged to move on
	}
	waveMu.Lock()
	defer waveMu.Unlock()
	current, why, err := e.tagIsCurrent(ctx, push)
	var gone *CurrencyError
	switch {
	case failed && errors.As(err, &gone):
		// The image itself is gone (the usual reason its tasks could not start): nothing of
		// this rollout can deploy any more, and its held services stay as they are.
		rep.Reason += "; the later waves stay held: " + push.Digest + " is no longer in " + push.Repository
		return nil
	case err != nil:
		return err
	case !current:
		rep.Reason += "; the later waves are left to the newer push (" + why + ")"
		return nil
	}
	next, err := e.rollOut(ctx, push, nil, false)
	if err != nil {
		return err
	}
	rep.Changes = append(rep.Changes, next.Changes...)
	rep.Held = append(rep.Held, next.Held...)
	rep.Failed = append(rep.Failed, next.Failed...)
	if n := len(next.Changes); n > 0 {
		rep.Reason += fmt.Sprintf("; next wave deployed: %s (see changes)", count(n, "service"))
	}
	if n := len(next.Held); n > 0 {
		rep.Reason += fmt.Sprintf("; %s %s (see held)", count(n, "service"), plural(n, "waits", "wait"))
	}
	return nil
}

// NotReleasableError says why `pinroll release` deployed nothing. Nothing was changed.
type NotReleasableError struct{ Why string }

func (e *NotReleasableError) Error() string { return e.Why }

// Release is an operator's `pinroll release`: it deploys the lowest wave of the staged
// rollout of image (a pinned image, <registry>/<repository>:<tag>@sha256:…) that waits,
// whatever the wave before it did — past a failure, or before a verification that cannot
// come. wave, when 0 or more, is the wave the operator means: another is refused. The image
// must still be what its tag points to (a newer push has its own rollout); services that
// need approval keep waiting for it, paused ones are left alone. From there the rollout goes
// on by itself: the released wave gates the next.
func (e *Engine) Release(ctx context.Context, image string, wave int) (report.Report, error) {
	push, err := heldPush(image, "")
	if err != nil {
		return report.Report{}, &NotReleasableError{fmt.Sprintf("%s: want the pinned image of a push, <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>@sha256:<digest> (the report's image)", err)}
	}
	push.EventID = "release-" + push.Digest
	waveMu.Lock()
	defer waveMu.Unlock()
	current, why, err := e.tagIsCurrent(ctx, push)
	if err != nil {
		return report.Report{}, err
	}
	if !current {
		return report.Report{}, &NotReleasableError{"nothing deployed: " + why}
	}
	plans := e.planTargets(ctx, push, nil)
	s, err := e.stage(ctx, push, plans, true)
	if err != nil {
		return report.Report{}, err
	}
	switch {
	case s.Open < 0 && len(s.Hold) == 0:
		return report.Report{}, &NotReleasableError{fmt.Sprintf("nothing of %s waits for a wave: nothing deployed", image)}
	case s.Open < 0:
		return report.Report{}, &NotReleasableError{"nothing can be released now: " + firstHold(s)}
	case wave >= 0 && s.Open != wave:
		return report.Report{}, &NotReleasableError{fmt.Sprintf("the lowest wave of %s that waits is %d, not %d: nothing deployed", image, s.Open, wave)}
	}
	if !holdsAny(plans, s) {
		// Not a staged rollout halted or waiting: what moves would be a push's first wave.
		return report.Report{}, &NotReleasableError{fmt.Sprintf("no service holds %s for its wave: nothing deployed (a push deploys it: its event, or pinroll replay)", image)}
	}
	rep, err := e.applyTargets(ctx, push, plans, s)
	rep.EventID, rep.Kind, rep.Image = push.EventID, "release", push.Pushed().Pinned()
	if err != nil {
		return rep, err
	}
	e.conclude(&rep, push)
	rep.Reason = fmt.Sprintf("wave %d released: ", s.Open) + rep.Reason
	return rep, nil
}

// holdsAny reports whether a service the staging moves holds a revision (pinroll:held).
func holdsAny(plans []*targetPlan, s plan.Staging) bool {
	for _, tp := range plans {
		for _, reg := range tp.plan.Registrations {
			for _, svc := range reg.Services {
				if s.Move[svc.ID()] && svc.Tags[plan.TagHeld] != "" {
					return true
				}
			}
		}
	}
	return false
}

func firstHold(s plan.Staging) string {
	for _, h := range s.Hold {
		return h.Why
	}
	return ""
}
