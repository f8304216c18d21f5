package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Tagger is the part of the ECS API that pauses and resumes services.
type Tagger interface {
	TagResource(context.Context, *ecs.TagResourceInput, ...func(*ecs.Options)) (*ecs.TagResourceOutput, error)
	UntagResource(context.Context, *ecs.UntagResourceInput, ...func(*ecs.Options)) (*ecs.UntagResourceOutput, error)
}

var _ Tagger = (*ecs.Client)(nil)

// Rollback is what a rollback did.
type Rollback struct {
	Cluster, Service string
	From, To         string // task definition ARNs
	Paused           string // the pinroll:paused value set
}

// Rollback and Resume act in the engine's first target: the account the command runs in
// (the CLI's --role makes that a target account).

// Rollback moves a service back to the revision its current one replaced (the pinroll:previous
// audit tag) and pauses automatic deploys to it, so that neither a push nor reconciliation
// deploys it again until Resume. The pause is set first: a push arriving in between finds
// the service paused.
func (e *Engine) Rollback(ctx context.Context, tagger Tagger, cluster, service, who, why string, now time.Time) (Rollback, error) {
	svc, err := e.describeService(ctx, cluster, service)
	if err != nil {
		return Rollback{}, err
	}
	current := aws.ToString(svc.TaskDefinition)
	td, err := e.Home().Discoverer.Describe(ctx, current)
	if err != nil {
		return Rollback{}, err
	}
	previous := tagValue(td.Tags, apply.TagPrevious)
	if previous == "" {
		return Rollback{}, fmt.Errorf("rollback %s/%s: its revision %s was not registered by pinroll (no %s tag), so there is no recorded previous revision; use `aws ecs update-service --task-definition …`",
			cluster, service, report.Revision(current), apply.TagPrevious)
	}
	rb := Rollback{Cluster: cluster, Service: service, From: current, To: previous, Paused: PauseValue(who, why, now)}
	if _, err := tagger.TagResource(ctx, &ecs.TagResourceInput{
		ResourceArn: svc.ServiceArn,
		Tags:        []types.Tag{{Key: aws.String(plan.TagPaused), Value: aws.String(rb.Paused)}},
	}); err != nil {
		return Rollback{}, fmt.Errorf("pause %s/%s: %w", cluster, service, err)
	}
	if _, err := e.Home().ECS.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: svc.ClusterArn, Service: aws.String(service), TaskDefinition: aws.String(previous),
	}); err != nil {
		return rb, fmt.Errorf("roll %s/%s back to %s (the service is paused; run rollback again): %w", cluster, service, report.Revision(previous), err)
	}
	return rb, nil
}

// Resume lifts a pause: automatic deploys to the service start again with the next push or
// reconciliation. It reports the pause it lifted ("" when the service was not paused).
func (e *Engine) Resume(ctx context.Context, tagger Tagger, cluster, service string) (string, error) {
	svc, err := e.describeService(ctx, cluster, service)
	if err != nil {
		return "", err
	}
	paused := ""
	for _, t := range svc.Tags {
		if aws.ToString(t.Key) == plan.TagPaused {
			paused = aws.ToString(t.Value)
		}
	}
	if _, err := tagger.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: svc.ServiceArn, TagKeys: []string{plan.TagPaused}}); err != nil {
		return "", fmt.Errorf("resume %s/%s: %w", cluster, service, err)
	}
	return paused, nil
}

func (e *Engine) describeService(ctx context.Context, cluster, service string) (types.Service, error) {
	out, err := e.Home().ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster: aws.String(cluster), Services: []string{service}, Include: []types.ServiceField{types.ServiceFieldTags},
	})
	if err != nil {
		return types.Service{}, fmt.Errorf("describe service %s/%s: %w", cluster, service, err)
	}
	if len(out.Services) == 0 {
		return types.Service{}, fmt.Errorf("service %s/%s does not exist", cluster, service)
	}
	return out.Services[0], nil
}

// PauseValue is the pinroll:paused tag value: who, when, why — cut to what an ECS tag value
// may hold (256 characters: letters, numbers and spaces in UTF-8, and _ . : / = + - @).
func PauseValue(who, why string, now time.Time) string {
	v := strings.TrimSpace(fmt.Sprintf("%s %s %s", who, now.UTC().Format(time.RFC3339), why))
	runes := []rune(strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || r == ' ' || strings.ContainsRune("_.:/=+-@", r) {
			return r
		}
		return '_'
	}, v))
	return string(runes[:min(len(runes), 256)])
}
