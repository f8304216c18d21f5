// Package apply carries out a plan: it registers each new task-definition revision once and
// moves the services to it. It is idempotent: a retry after a partial failure finds the
// revision the first attempt registered and reuses it, so a redelivered event never
// registers a duplicate revision.
package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
)

// ECS is the part of the ECS API applying a plan uses.
type ECS interface {
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	RegisterTaskDefinition(context.Context, *ecs.RegisterTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	UpdateService(context.Context, *ecs.UpdateServiceInput, ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// Audit tags on every revision pinroll registers (DESIGN.md).
const (
	TagTag      = "pinroll:tag"
	TagDigest   = "pinroll:digest"
	TagEvent    = "pinroll:event"
	TagPrevious = "pinroll:previous"
)

// Audit is what the audit tags record.
type Audit struct {
	Tag, Digest, EventID string
}

// updateConcurrency keeps UpdateService calls well under ECS's 5/s sustained rate.
const updateConcurrency = 4

// Applier applies plans.
type Applier struct {
	ECS ECS
}

// IncompleteError says that a plan was applied only in part: which step failed, and what
// had been done before it. Retrying the same event finishes the job (Lambda does so).
type IncompleteError struct {
	Step string          // "register task definition api:7", "update service prod/api"
	Done []report.Change // services already moved before the failure
	Err  error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("%s: %v (%d service(s) updated before the failure; redelivering the event finishes the job)", e.Step, e.Err, len(e.Done))
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// Apply registers the plan's revisions and updates its services, returning the changes made.
// A failure in one task definition does not stop the others (unless the context is done);
// the error lists every step that failed and the changes made before and after it.
func (a *Applier) Apply(ctx context.Context, p plan.Plan, audit Audit) ([]report.Change, error) {
	var done []report.Change
	var failed []*IncompleteError
	for _, reg := range p.Registrations {
		if ctx.Err() != nil {
			failed = append(failed, &IncompleteError{Step: "register a new revision of " + shortARN(reg.FromARN()), Err: ctx.Err()})
			continue
		}
		arn, err := a.register(ctx, reg, audit)
		if err != nil {
			failed = append(failed, &IncompleteError{Step: "register a new revision of " + shortARN(reg.FromARN()), Err: err})
			continue
		}
		changes, err := a.update(ctx, reg, arn)
		done = append(done, changes...)
		var ie *IncompleteError
		if errors.As(err, &ie) {
			failed = append(failed, ie)
		}
	}
	switch len(failed) {
	case 0:
		return done, nil
	case 1:
		failed[0].Done = done
		return done, failed[0]
	}
	steps := make([]string, len(failed))
	errs := make([]error, len(failed))
	for i, f := range failed {
		steps[i], errs[i] = f.Step, f.Err
	}
	return done, &IncompleteError{Step: strings.Join(steps, "; "), Done: done, Err: errors.Join(errs...)}
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
func (a *Applier) register(ctx context.Context, reg plan.Registration, audit Audit) (string, error) {
	in, err := Input(reg, audit)
	if err != nil {
		return "", err
	}
	if arn, err := a.earlierAttempt(ctx, reg, audit, in); err != nil || arn != "" {
		return arn, err
	}
	out, err := a.ECS.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return "", err
	}
	if out.TaskDefinition == nil || out.TaskDefinition.TaskDefinitionArn == nil {
		return "", errors.New("RegisterTaskDefinition answered without a task definition ARN")
	}
	return *out.TaskDefinition.TaskDefinitionArn, nil
}

// earlierAttempt looks at the family's latest revision: if pinroll registered it from the
// same revision, for the same digest, with the same content, it is reused. This is what
// makes a redelivery after a partial failure register nothing twice.
func (a *Applier) earlierAttempt(ctx context.Context, reg plan.Registration, audit Audit, want *ecs.RegisterTaskDefinitionInput) (string, error) {
	family := aws.ToString(reg.From.Definition.Family)
	out, err := a.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(family),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return "", fmt.Errorf("describe latest revision of %s: %w", family, err)
	}
	latest := out.TaskDefinition
	if latest == nil || aws.ToString(latest.TaskDefinitionArn) == reg.FromARN() {
		return "", nil
	}
	tags := tagMap(out.Tags)
	if tags[TagPrevious] != reg.FromARN() || tags[TagDigest] != audit.Digest {
		return "", nil
	}
	have, err := taskdef.Clone(latest, nil)
	if err != nil || !taskdef.Equal(have, want) {
		return "", err
	}
	return aws.ToString(latest.TaskDefinitionArn), nil
}

// update moves every service of reg to arn, a few at a time. One service failing does not
// stop the others: each update is independent, and the more are done, the less a retry has
// to do.
func (a *Applier) update(ctx context.Context, reg plan.Registration, arn string) ([]report.Change, error) {
	errs := make([]error, len(reg.Services))
	var g errgroup.Group
	g.SetLimit(updateConcurrency)
	for i, svc := range reg.Services {
		g.Go(func() error {
			if err := a.updateService(ctx, svc, arn); err != nil {
				errs[i] = fmt.Errorf("%s/%s: %w", svc.Cluster, svc.Name, err)
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through errs
	var done []report.Change
	var failed []string
	for i, svc := range reg.Services {
		if errs[i] != nil {
			failed = append(failed, svc.Cluster+"/"+svc.Name)
			continue
		}
		done = append(done, report.Change{
			Cluster: svc.Cluster, Service: svc.Name,
			TaskDefinition: arn, PreviousTaskDefinition: svc.TaskDefinition,
			Containers: reg.Containers,
		})
	}
	if len(failed) > 0 {
		return done, &IncompleteError{Step: "update service " + strings.Join(failed, ", "), Err: errors.Join(errs...)}
	}
	return done, nil
}

func (a *Applier) updateService(ctx context.Context, svc discover.Service, arn string) error {
	_, err := a.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster:        aws.String(svc.ClusterARN),
		Service:        aws.String(svc.Name),
		TaskDefinition: aws.String(arn),
	})
	return err
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func shortARN(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
