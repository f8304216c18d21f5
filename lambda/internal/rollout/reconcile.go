package rollout

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// pinnedTag is one repository:tag that containers in scope are pinned to, with the digests
// they are pinned to now.
type pinnedTag struct {
	account, region, repository, tag string
	pinned                           []string // digests, distinct
	// held: a service holds a revision pinned to this tag (for its wave or an approval), so
	// the tag's push is rolled out again even when every running container is current — the
	// safety net of a staged rollout whose deployment event was lost.
	held bool
}

func (p *pinnedTag) key() string { return p.account + "/" + p.repository + ":" + p.tag }

// Reconcile repairs pushes whose events ECR dropped: for every container in scope pinned to
// a tag of an ECR repository, it asks ECR which digest the tag has now (DescribeImages, up to
// 100 ids a call, grouped by repository) and, where that differs from the pinned digest,
// deploys it exactly as a push event would — unless the tag now points to an image pushed
// earlier than the pinned one: pinroll never rolls back, it reports. Paused, opted-out and
// excluded services are left alone, as for a push.
//
// The same calls guard the digests services pin: every digest of every service in scope, in
// its current revision and in the pinroll:previous revision a rollback restores, must still be
// in ECR and ACTIVE; those that are not (expired, deleted, archived) are listed in
// missing_images, which makes the report a failure to look at, whatever its outcome.
func (e *Engine) Reconcile(ctx context.Context, r trigger.Reconcile) (report.Report, error) {
	rep := report.Report{EventID: r.EventID, Kind: string(trigger.KindReconcile)}
	var mu sync.Mutex
	var all reconciled
	parts, err := e.eachTarget(ctx, func(ctx context.Context, t *Target) (report.Report, error) {
		part, done, err := e.reconcileTarget(ctx, t, r)
		mu.Lock()
		all.add(done)
		mu.Unlock()
		return part, err
	})
	rep.Merge(parts)
	if err != nil {
		return report.Report{}, err
	}
	// The missed pushes, each rolled out once across every target (waves span them).
	for _, key := range slices.Sorted(maps.Keys(all.pushes)) {
		push := all.pushes[key]
		sub, err := e.rollOut(ctx, push, all.fleets, false)
		rep.Changes = append(rep.Changes, sub.Changes...)
		rep.Failed = append(rep.Failed, sub.Failed...)
		rep.Held = append(rep.Held, sub.Held...)
		rep.Skipped = append(rep.Skipped, sub.Skipped...)
		if err != nil {
			return report.Report{}, fmt.Errorf("reconcile %s:%s to %s: %w", push.Repository, push.Tag, push.Digest, err)
		}
		if len(sub.Changes) > 0 {
			all.images[push.Repository+":"+push.Tag] = writeBackImage{push.Repository, push.Tag, push.Pushed().Pinned()}
		}
	}
	rep.LimitNearMisses(plan.DefaultNearMissLimit)
	for _, key := range slices.Sorted(maps.Keys(all.images)) {
		wb := all.images[key]
		if err := e.writeBack(ctx, wb.repository, wb.tag, wb.image); err != nil {
			return report.Report{}, err
		}
	}
	deployed := slices.Sorted(maps.Keys(all.images))
	switch {
	case len(rep.Changes) > 0 && e.Config.DryRun:
		rep.Outcome, rep.Reason = report.Planned, "dry run: reconciliation would deploy "+strings.Join(deployed, ", ")
	case len(rep.Changes) > 0:
		rep.Outcome, rep.Reason = report.Deployed, fmt.Sprintf("reconciled %s: a push event had been missed; %s updated", strings.Join(deployed, ", "), count(len(rep.Changes), "service"))
	case len(rep.Failed) > 0:
		rep.Outcome, rep.Reason = report.EventFailed, fmt.Sprintf("reconciliation deployed nothing: %s refused by ECS for good (see failed)", count(len(rep.Failed), "service"))
	case len(rep.Held) > 0:
		rep.Outcome, rep.Reason = report.AwaitingApproval, fmt.Sprintf("reconciliation found missed pushes; %s wait for approval (see held)", count(len(rep.Held), "service"))
	case len(all.backwards) > 0:
		rep.Outcome, rep.Reason = report.Skipped, "not rolled back: "+strings.Join(all.backwards, "; ")
	default:
		rep.Outcome, rep.Reason = report.Unchanged, fmt.Sprintf("%s pinned in scope, all current", count(all.tags, "repository tag"))
	}
	if n := len(rep.MissingImages); n > 0 {
		rep.Reason += fmt.Sprintf("; %s ECR can no longer serve (see missing_images): %s", count(n, "pinned image"), rep.MissingImages[0].Image)
	}
	return rep, nil
}

// reconciled is what reconciliation did in the targets, beyond the report's lists.
type reconciled struct {
	images    map[string]writeBackImage // repository:tag → what it was deployed as
	backwards []string                  // tags not deployed: they point to an older image (no rollbacks)
	tags      int                       // repository tags pinned in scope
	pushes    map[string]trigger.Push   // the missed pushes to roll out, by image
	fleets    map[*Target]*discover.Fleet
}

type writeBackImage struct{ repository, tag, image string }

func (r *reconciled) add(o reconciled) {
	if r.images == nil {
		r.images, r.pushes, r.fleets = map[string]writeBackImage{}, map[string]trigger.Push{}, map[*Target]*discover.Fleet{}
	}
	maps.Copy(r.images, o.images)
	maps.Copy(r.pushes, o.pushes)
	maps.Copy(r.fleets, o.fleets)
	r.backwards = append(r.backwards, o.backwards...)
	r.tags += o.tags
}

// reconcileTarget finds the missed pushes of one target's services (done.pushes) and checks
// the images they pin.
func (e *Engine) reconcileTarget(ctx context.Context, t *Target, r trigger.Reconcile) (report.Report, reconciled, error) {
	var rep report.Report
	done := reconciled{images: map[string]writeBackImage{}, pushes: map[string]trigger.Push{}, fleets: map[*Target]*discover.Fleet{}}
	fleet, err := t.Discoverer.Discover(ctx, e.Config.Clusters)
	if err != nil {
		return rep, done, fmt.Errorf("discover services: %w", err)
	}
	done.fleets[t] = fleet
	home := e.homeAccount(r.Account)
	if home == "" && len(fleet.Services) > 0 {
		home = AccountOf(fleet.Services[0].ClusterARN) // a local run: the account ECS answers for
	}
	tags, err := e.heldTags(ctx, t, fleet, home, e.pinnedTags(fleet, home))
	if err != nil {
		return rep, done, err
	}
	done.tags = len(tags)
	pins, err := e.pins(ctx, t, fleet, home)
	if err != nil {
		return rep, done, err
	}
	current, err := e.currentImages(ctx, tags, pins)
	if err != nil {
		return rep, done, err
	}
	rep.MissingImages = verify.Missing(pins, current)
	for _, pt := range tags {
		now, ok := current.Tag(pt.account, pt.repository, pt.tag)
		if !ok {
			rep.Skipped = append(rep.Skipped, report.Service{Account: t.Account, Why: fmt.Sprintf("%s:%s no longer exists in ECR; pinned services keep their digest", pt.repository, pt.tag)})
			continue
		}
		if slices.Equal(pt.pinned, []string{now.Digest}) && !pt.held {
			continue // every container pinned to this tag runs its current digest
		}
		if now.Status != ecrtypes.ImageStatusActive {
			rep.Skipped = append(rep.Skipped, report.Service{Account: t.Account, Why: fmt.Sprintf("%s:%s points to %s, which is %s in ECR: not deployed (tasks could not pull it)", pt.repository, pt.tag, now.Digest, strings.ToLower(string(now.Status)))})
			continue
		}
		if older := e.olderThanPinned(pt, now, current); older != "" {
			done.backwards = append(done.backwards, older)
			rep.Skipped = append(rep.Skipped, report.Service{Account: t.Account, Why: older})
			continue
		}
		push := trigger.Push{
			EventID: "reconcile-" + r.EventID, Time: now.PushedAt, Account: pt.account, Region: pt.region,
			Repository: pt.repository, Tag: pt.tag, Digest: now.Digest, ActionType: "PUSH", Result: "SUCCESS",
		}
		done.pushes[push.Pushed().Pinned()] = push
	}
	return rep, done, nil
}

// pinnedTags collects, from the services a push could deploy to, every ECR repository:tag
// that a container is pinned to (repo:tag@digest). Containers that are not pinned yet are
// left to the next push; images of registries that may not deploy here are ignored.
func (e *Engine) pinnedTags(fleet *discover.Fleet, home string) []*pinnedTag {
	var set tagSet
	for _, svc := range fleet.Services {
		td := fleet.TaskDefinitions[svc.TaskDefinition]
		if td == nil || plan.Excluded(svc, e.Config.RequireOptIn) != "" {
			continue
		}
		for _, c := range td.Definition.ContainerDefinitions {
			if pt, digest, ok := e.tagOf(&set, aws.ToString(c.Image), home); ok && !slices.Contains(pt.pinned, digest) {
				pt.pinned = append(pt.pinned, digest)
			}
		}
	}
	return set.sorted()
}

// heldTags adds to tags the repository tags of the revisions that services in scope hold
// (pinroll:held), marked held.
func (e *Engine) heldTags(ctx context.Context, t *Target, fleet *discover.Fleet, home string, tags []*pinnedTag) ([]*pinnedTag, error) {
	var set tagSet
	for _, pt := range tags {
		set.add(pt)
	}
	for _, svc := range fleet.Services {
		revision := svc.Tags[plan.TagHeld]
		if revision == "" || plan.Excluded(svc, e.Config.RequireOptIn) != "" {
			continue
		}
		td, err := t.Discoverer.Describe(ctx, revisionARN(svc, revision))
		switch {
		case apply.Refused(err):
			continue // no such revision (deleted, or the tag was edited): nothing to roll out
		case err != nil:
			return nil, fmt.Errorf("describe %s, the revision %s/%s holds: %w", revision, svc.Cluster, svc.Name, err)
		}
		if pt, _, ok := e.tagOf(&set, pinnedImage(td.Definition, tagValue(td.Tags, apply.TagDigest)), home); ok {
			pt.held = true
		}
	}
	return set.sorted(), nil
}

// tagSet is a set of repository tags, each once.
type tagSet struct {
	byKey map[string]*pinnedTag
	list  []*pinnedTag
}

// add puts pt in the set, or returns the one already there under its key.
func (s *tagSet) add(pt *pinnedTag) *pinnedTag {
	if have, ok := s.byKey[pt.key()]; ok {
		return have
	}
	if s.byKey == nil {
		s.byKey = map[string]*pinnedTag{}
	}
	s.byKey[pt.key()] = pt
	s.list = append(s.list, pt)
	return pt
}

// sorted lists the set by key.
func (s *tagSet) sorted() []*pinnedTag {
	tags := slices.Clone(s.list)
	if tags == nil {
		tags = []*pinnedTag{}
	}
	slices.SortFunc(tags, func(a, b *pinnedTag) int { return cmp.Compare(a.key(), b.key()) })
	return tags
}

// tagOf is the repository tag in set of image, when image is pinned (repo:tag@digest) in an
// ECR registry that may deploy here, and its digest.
func (e *Engine) tagOf(set *tagSet, image, home string) (*pinnedTag, string, bool) {
	ref, err := imageref.Parse(image)
	if err != nil || ref.Digest == "" || ref.Tag == "" {
		return nil, "", false
	}
	registry, ok := imageref.ParseECRHost(ref.Host)
	if !ok || !e.Config.RegistryAllowed(registry.Account, home) {
		return nil, "", false
	}
	return set.add(&pinnedTag{account: registry.Account, region: registry.Region, repository: ref.Path, tag: ref.Tag}), ref.Digest, true
}

// currentImages asks ECR, per repository, about every digest pinned (the tag-pinned
// containers' and pins', current and previous revisions) and, only for the tags not found on
// one of those images (moved by a push whose event was lost, or deleted), about the tag: on a
// fleet whose tags are current that is ⌈digests/100⌉ DescribeImages calls per repository.
func (e *Engine) currentImages(ctx context.Context, tags []*pinnedTag, pins []verify.Pin) (*verify.Images, error) {
	var q verify.Query
	for _, pt := range tags {
		for _, d := range pt.pinned {
			q.Digest(pt.account, pt.repository, d)
		}
	}
	verify.Ask(&q, pins)
	images := &verify.Images{}
	if err := q.Describe(ctx, e.ECR, images); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	var moved verify.Query
	for _, pt := range tags {
		if _, ok := images.Tag(pt.account, pt.repository, pt.tag); !ok {
			moved.Tag(pt.account, pt.repository, pt.tag)
		}
	}
	if err := moved.Describe(ctx, e.ECR, images); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return images, nil
}

// olderThanPinned says why reconciliation must not deploy the tag's current image: it was
// pushed before an image some container is pinned to (the tag was moved back by hand, or
// an old image re-tagged). Returns "" when deploying is a move forward.
func (e *Engine) olderThanPinned(pt *pinnedTag, now verify.ImageState, current *verify.Images) string {
	for _, d := range pt.pinned {
		pinned, ok := current.Digest(pt.account, pt.repository, d)
		if ok && now.PushedAt.Before(pinned.PushedAt) {
			return fmt.Sprintf("%s:%s now points to %s, pushed %s, before the pinned %s (pushed %s); pinroll does not roll back — deploy it by hand if that is intended",
				pt.repository, pt.tag, now.Digest, now.PushedAt.UTC().Format(time.RFC3339), d, pinned.PushedAt.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

// AccountOf returns the account field of an ARN (arn:partition:service:region:account:…).
func AccountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
