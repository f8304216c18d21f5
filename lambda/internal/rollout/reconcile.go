package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// describeImagesBatch is DescribeImages' maximum number of image ids.
const describeImagesBatch = 100

// pinnedTag is one repository:tag that containers in scope are pinned to, with the digests
// they are pinned to now.
type pinnedTag struct {
	account, region, repository, tag string
	pinned                           []string // digests, distinct
}

func (p *pinnedTag) key() string { return tagKey(p.account, p.repository, p.tag) }

// Keys of the images currentImages found: by tag and by digest.
func tagKey(account, repository, tag string) string { return account + "/" + repository + ":" + tag }

func digestKey(account, repository, digest string) string {
	return account + "/" + repository + "@" + digest
}

// Reconcile repairs pushes whose events ECR dropped: for every container in scope pinned to
// a tag of an ECR repository, it asks ECR which digest the tag has now (DescribeImages, up to
// 100 ids a call, grouped by repository) and, where that differs from the pinned digest,
// deploys it exactly as a push event would — unless the tag now points to an image pushed
// earlier than the pinned one: pinroll never rolls back, it reports. Paused, opted-out and
// excluded services are left alone, as for a push.
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
	return rep, nil
}

// reconciled is what reconciliation did in the targets, beyond the report's lists.
type reconciled struct {
	images    map[string]writeBackImage // repository:tag → what it was deployed as
	backwards []string                  // tags not deployed: they point to an older image (no rollbacks)
	tags      int                       // repository tags pinned in scope
}

type writeBackImage struct{ repository, tag, image string }

func (r *reconciled) add(o reconciled) {
	if r.images == nil {
		r.images = map[string]writeBackImage{}
	}
	maps.Copy(r.images, o.images)
	r.backwards = append(r.backwards, o.backwards...)
	r.tags += o.tags
}

// reconcileTarget reconciles one target's services.
func (e *Engine) reconcileTarget(ctx context.Context, t *Target, r trigger.Reconcile) (report.Report, reconciled, error) {
	var rep report.Report
	done := reconciled{images: map[string]writeBackImage{}}
	fleet, err := t.Discoverer.Discover(ctx, e.Config.Clusters)
	if err != nil {
		return rep, done, fmt.Errorf("discover services: %w", err)
	}
	home := e.homeAccount(r.Account)
	if home == "" && len(fleet.Services) > 0 {
		home = AccountOf(fleet.Services[0].ClusterARN) // a local run: the account ECS answers for
	}
	tags := e.pinnedTags(fleet, home)
	done.tags = len(tags)
	current, err := e.currentImages(ctx, tags)
	if err != nil {
		return rep, done, err
	}
	for _, pt := range tags {
		now, ok := current[pt.key()]
		if !ok {
			rep.Skipped = append(rep.Skipped, report.Service{Account: t.Account, Why: fmt.Sprintf("%s:%s no longer exists in ECR; pinned services keep their digest", pt.repository, pt.tag)})
			continue
		}
		if slices.Equal(pt.pinned, []string{now.digest}) {
			continue // every container pinned to this tag runs its current digest
		}
		if older := e.olderThanPinned(pt, now, current); older != "" {
			done.backwards = append(done.backwards, older)
			rep.Skipped = append(rep.Skipped, report.Service{Account: t.Account, Why: older})
			continue
		}
		push := trigger.Push{
			EventID: "reconcile-" + r.EventID, Time: now.pushedAt, Account: pt.account, Region: pt.region,
			Repository: pt.repository, Tag: pt.tag, Digest: now.digest, ActionType: "PUSH", Result: "SUCCESS",
		}
		sub, err := e.deploy(ctx, t, push, fleet)
		rep.Changes = append(rep.Changes, sub.Changes...)
		rep.Failed = append(rep.Failed, sub.Failed...)
		rep.Held = append(rep.Held, sub.Held...)
		if err != nil {
			return rep, done, fmt.Errorf("reconcile %s:%s to %s: %w", pt.repository, pt.tag, now.digest, err)
		}
		if len(sub.Changes) > 0 {
			key := pt.repository + ":" + pt.tag
			done.images[key] = writeBackImage{pt.repository, pt.tag, imageref.Pinned(imageref.ECRHost(pt.account, pt.region)+"/"+pt.repository, pt.tag, now.digest)}
		}
		rep.Skipped = append(rep.Skipped, sub.Skipped...)
	}
	return rep, done, nil
}

// pinnedTags collects, from the services a push could deploy to, every ECR repository:tag
// that a container is pinned to (repo:tag@digest). Containers that are not pinned yet are
// left to the next push; images of registries that may not deploy here are ignored.
func (e *Engine) pinnedTags(fleet *discover.Fleet, home string) []*pinnedTag {
	byKey := map[string]*pinnedTag{}
	for _, svc := range fleet.Services {
		td := fleet.TaskDefinitions[svc.TaskDefinition]
		if td == nil || plan.Excluded(svc, e.Config.RequireOptIn) != "" {
			continue
		}
		for _, c := range td.Definition.ContainerDefinitions {
			ref, err := imageref.Parse(aws.ToString(c.Image))
			if err != nil || ref.Digest == "" || ref.Tag == "" {
				continue
			}
			registry, ok := imageref.ParseECRHost(ref.Host)
			if !ok || !e.Config.RegistryAllowed(registry.Account, home) {
				continue
			}
			pt := &pinnedTag{account: registry.Account, region: registry.Region, repository: ref.Path, tag: ref.Tag}
			if have, ok := byKey[pt.key()]; ok {
				pt = have
			} else {
				byKey[pt.key()] = pt
			}
			if !slices.Contains(pt.pinned, ref.Digest) {
				pt.pinned = append(pt.pinned, ref.Digest)
			}
		}
	}
	tags := make([]*pinnedTag, 0, len(byKey))
	for _, pt := range byKey {
		tags = append(tags, pt)
	}
	slices.SortFunc(tags, func(a, b *pinnedTag) int { return cmp.Compare(a.key(), b.key()) })
	return tags
}

type imageState struct {
	digest   string
	pushedAt time.Time
}

// currentImages asks ECR, per repository, for each pinned tag and each pinned digest: what
// the tag points to now, and when each image was pushed (keys: tagKey and digestKey).
func (e *Engine) currentImages(ctx context.Context, tags []*pinnedTag) (map[string]imageState, error) {
	type repo struct{ account, name string }
	ids := map[repo][]ecrtypes.ImageIdentifier{}
	var order []repo
	for _, pt := range tags {
		r := repo{pt.account, pt.repository}
		if _, ok := ids[r]; !ok {
			order = append(order, r)
		}
		ids[r] = append(ids[r], ecrtypes.ImageIdentifier{ImageTag: aws.String(pt.tag)})
		for _, d := range pt.pinned {
			if !slices.ContainsFunc(ids[r], func(id ecrtypes.ImageIdentifier) bool { return aws.ToString(id.ImageDigest) == d }) {
				ids[r] = append(ids[r], ecrtypes.ImageIdentifier{ImageDigest: aws.String(d)})
			}
		}
	}
	out := map[string]imageState{}
	for _, r := range order {
		for batch := range slices.Chunk(ids[r], describeImagesBatch) {
			details, err := e.describeImages(ctx, r.account, r.name, batch)
			if err != nil {
				return nil, err
			}
			for _, d := range details {
				st := imageState{digest: aws.ToString(d.ImageDigest), pushedAt: aws.ToTime(d.ImagePushedAt)}
				out[digestKey(r.account, r.name, st.digest)] = st
				for _, tag := range d.ImageTags {
					out[tagKey(r.account, r.name, tag)] = st
				}
			}
		}
	}
	return out, nil
}

// describeImages describes a batch of image ids. ECR fails the whole call when one id is
// unknown (a tag deleted, a pinned digest expired by a lifecycle rule); then the batch is
// split until the unknown ids are isolated and left out.
func (e *Engine) describeImages(ctx context.Context, account, repository string, batch []ecrtypes.ImageIdentifier) ([]ecrtypes.ImageDetail, error) {
	out, err := e.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: aws.String(account), RepositoryName: aws.String(repository), ImageIds: batch,
	})
	var notFound *ecrtypes.ImageNotFoundException
	switch {
	case err == nil:
		return out.ImageDetails, nil
	case !errors.As(err, &notFound):
		return nil, fmt.Errorf("reconcile: describe images of %s: %w", repository, err)
	case len(batch) == 1:
		return nil, nil
	}
	half := len(batch) / 2
	first, err := e.describeImages(ctx, account, repository, batch[:half])
	if err != nil {
		return nil, err
	}
	second, err := e.describeImages(ctx, account, repository, batch[half:])
	return append(first, second...), err
}

// olderThanPinned says why reconciliation must not deploy the tag's current image: it was
// pushed before an image some container is pinned to (the tag was moved back by hand, or
// an old image re-tagged). Returns "" when deploying is a move forward.
func (e *Engine) olderThanPinned(pt *pinnedTag, now imageState, current map[string]imageState) string {
	for _, d := range pt.pinned {
		pinned, ok := current[digestKey(pt.account, pt.repository, d)]
		if ok && now.pushedAt.Before(pinned.pushedAt) {
			return fmt.Sprintf("%s:%s now points to %s, pushed %s, before the pinned %s (pushed %s); pinroll does not roll back — deploy it by hand if that is intended",
				pt.repository, pt.tag, now.digest, now.pushedAt.UTC().Format(time.RFC3339), d, pinned.pushedAt.UTC().Format(time.RFC3339))
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
