package rollout

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// Approval is what Approve or Reject did.
type Approval struct {
	Cluster, Service string
	Revision         string // the held revision (family:revision)
	Image            string // its pinned image
	From             string // approve: the revision the service ran before (family:revision)
	Done             bool   // false: nothing was held (or it was deployed already); see Note
	Note             string
}

// NotApprovableError says why a held revision may not be deployed now. Nothing was changed.
type NotApprovableError struct{ Why string }

func (e *NotApprovableError) Error() string { return e.Why }

// Approve deploys the revision held for a service that needs approval (its pinroll:held
// tag), after checking that it may still go: the service is not paused, its tag in ECR still
// points to the held digest (an approval never deploys a stale image: a newer push holds its
// own revision in its place), and the service still runs the revision the held one was made
// from (else someone deployed meanwhile, and the next push holds a new one). Then it updates
// the service and removes the tag. It acts in the engine's first target, like Rollback.
func (e *Engine) Approve(ctx context.Context, tagger Tagger, cluster, service string) (Approval, error) {
	t := e.Home()
	svc, a, where, err := e.held(ctx, cluster, service)
	if err != nil || a.Revision == "" {
		return a, err
	}
	if who := tagValue(svc.Tags, plan.TagPaused); who != "" {
		return a, &NotApprovableError{fmt.Sprintf("%s is paused (%s=%s): nothing deployed; resume it first (pinroll resume --cluster %s --service %s), or reject the held revision", where, plan.TagPaused, who, cluster, service)}
	}
	held, err := t.Discoverer.Describe(ctx, a.Revision)
	if err != nil {
		return a, fmt.Errorf("describe the held revision %s: %w", a.Revision, err)
	}
	heldARN := aws.ToString(held.Definition.TaskDefinitionArn)
	digest, from := tagValue(held.Tags, apply.TagDigest), tagValue(held.Tags, apply.TagPrevious)
	a.Image, a.From = pinnedImage(held.Definition, digest), report.Revision(from)
	running := aws.ToString(svc.TaskDefinition)
	if running == heldARN {
		a.Note = fmt.Sprintf("%s runs %s already; removing the hold", where, a.Revision)
		return a, e.unhold(ctx, tagger, svc.ServiceArn, where)
	}
	push, err := heldPush(a.Image, tagValue(held.Tags, apply.TagEvent))
	if err != nil || digest == "" || from == "" {
		return a, &NotApprovableError{fmt.Sprintf("%s's held revision %s was not registered by pinroll for a push (its %s/%s tags are missing or its image is not pinned): nothing deployed; reject it", where, a.Revision, apply.TagDigest, apply.TagPrevious)}
	}
	current, why, err := e.tagIsCurrent(ctx, push)
	if err != nil {
		return a, err
	}
	if !current {
		return a, &NotApprovableError{fmt.Sprintf("%s: the held image is stale, nothing deployed — %s; the newer push holds its own revision when its event arrives (or run pinroll reconcile)", where, why)}
	}
	if running != from {
		return a, &NotApprovableError{fmt.Sprintf("%s now runs %s, not %s that the held revision was made from: nothing deployed; the next push holds a revision made from what it runs now (or reject this one)", where, report.Revision(running), a.From)}
	}
	if _, err := t.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: svc.ClusterArn, Service: aws.String(service), TaskDefinition: aws.String(heldARN)}); err != nil {
		return a, fmt.Errorf("deploy %s to %s: %w", a.Revision, where, err)
	}
	a.Done = true
	// Recorded like a wave's deploy, so that the service's deployment event moves a staged
	// rollout on from here, or halts it.
	if err := tagService(ctx, t.ECS, aws.ToString(svc.ServiceArn), plan.TagReleased, a.Revision); err != nil {
		return a, fmt.Errorf("deployed %s to %s, but recording it in %s failed: %w", a.Revision, where, plan.TagReleased, err)
	}
	return a, e.unhold(ctx, tagger, svc.ServiceArn, where)
}

// Reject drops the revision held for a service: the tag goes, the service keeps what it runs,
// and the next push holds again. The registered revision stays (revisions are cheap and
// immutable; a later push of the same digest reuses it).
func (e *Engine) Reject(ctx context.Context, tagger Tagger, cluster, service string) (Approval, error) {
	svc, a, where, err := e.held(ctx, cluster, service)
	if err != nil || a.Revision == "" {
		return a, err
	}
	a.Done = true
	return a, e.unhold(ctx, tagger, svc.ServiceArn, where)
}

// held reads a service and the revision it holds for approval (a.Revision; "" with a note
// when it holds none).
func (e *Engine) held(ctx context.Context, cluster, service string) (types.Service, Approval, string, error) {
	svc, err := e.describeService(ctx, cluster, service)
	if err != nil {
		return types.Service{}, Approval{}, "", err
	}
	a := Approval{Cluster: cluster, Service: service, Revision: tagValue(svc.Tags, plan.TagHeld)}
	where := cluster + "/" + service
	if a.Revision == "" {
		a.Note = fmt.Sprintf("nothing waits for approval on %s (no %s tag): it was approved or rejected already, or no push has been held", where, plan.TagHeld)
	}
	return svc, a, where, nil
}

func (e *Engine) unhold(ctx context.Context, tagger Tagger, serviceARN *string, where string) error {
	if _, err := tagger.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: serviceARN, TagKeys: []string{plan.TagHeld}}); err != nil {
		return fmt.Errorf("remove %s from %s: %w", plan.TagHeld, where, err)
	}
	return nil
}

// heldPush is the push a held revision was registered for, rebuilt from its pinned image, to
// ask ECR whether it is still current.
func heldPush(image, eventID string) (trigger.Push, error) {
	ref, err := imageref.Parse(image)
	if err != nil {
		return trigger.Push{}, err
	}
	registry, ok := imageref.ParseECRHost(ref.Host)
	if !ok || ref.Tag == "" || ref.Digest == "" {
		return trigger.Push{}, fmt.Errorf("%s is not a pinned ECR image", image)
	}
	return trigger.Push{EventID: eventID, Account: registry.Account, Region: registry.Region, Repository: ref.Path, Tag: ref.Tag, Digest: ref.Digest}, nil
}
