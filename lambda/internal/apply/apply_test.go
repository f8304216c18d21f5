package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
)

func TestRefusedTellsPermanentFromTransient(t *testing.T) {
	api := func(code string, fault smithy.ErrorFault) error {
		return fmt.Errorf("register task definition: %w", &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault})
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"ECS refusing the request as invalid is permanent", api("ClientException", smithy.FaultClient), true},
		{"an invalid parameter is permanent", api("InvalidParameterException", smithy.FaultClient), true},
		{"pinroll's own refusal is permanent", &RefusedError{Reason: "too many tags"}, true},
		{"throttling is transient", api("ThrottlingException", smithy.FaultClient), false},
		{"a server error is transient", api("ServerException", smithy.FaultServer), false},
		{"a timeout is transient", context.DeadlineExceeded, false},
		{"a missing permission is fixed by an operator, then retried", api("AccessDeniedException", smithy.FaultClient), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Refused(tc.err); got != tc.want {
				t.Errorf("Refused(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// fakeECS answers RegisterTaskDefinition with err (or a new revision) and keeps services on
// the revision they run until UpdateService moves them.
type fakeECS struct {
	registerErr map[string]error // family → error
	running     map[string]string
	registered  int
	updated     []string
}

func (f *fakeECS) DescribeTaskDefinition(_ context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	return &ecs.DescribeTaskDefinitionOutput{TaskDefinition: &types.TaskDefinition{
		Family: in.TaskDefinition, TaskDefinitionArn: aws.String(arnOf(*in.TaskDefinition, 1))}}, nil
}

func (f *fakeECS) RegisterTaskDefinition(_ context.Context, in *ecs.RegisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	if err := f.registerErr[*in.Family]; err != nil {
		return nil, err
	}
	f.registered++
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: &types.TaskDefinition{TaskDefinitionArn: aws.String(arnOf(*in.Family, 2))}}, nil
}

func (f *fakeECS) DescribeServices(_ context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out := &ecs.DescribeServicesOutput{}
	for _, name := range in.Services {
		name = name[strings.LastIndex(name, "/")+1:]
		out.Services = append(out.Services, types.Service{ServiceName: aws.String(name), Status: aws.String("ACTIVE"), TaskDefinition: aws.String(f.running[name])})
	}
	return out, nil
}

func (f *fakeECS) UpdateService(_ context.Context, in *ecs.UpdateServiceInput, _ ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.updated = append(f.updated, *in.Service)
	f.running[*in.Service] = *in.TaskDefinition
	return &ecs.UpdateServiceOutput{Service: &types.Service{}}, nil
}

func (f *fakeECS) TagResource(context.Context, *ecs.TagResourceInput, ...func(*ecs.Options)) (*ecs.TagResourceOutput, error) {
	return &ecs.TagResourceOutput{}, nil
}

func (f *fakeECS) ListTaskDefinitions(context.Context, *ecs.ListTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	return &ecs.ListTaskDefinitionsOutput{}, nil
}

func (f *fakeECS) UntagResource(context.Context, *ecs.UntagResourceInput, ...func(*ecs.Options)) (*ecs.UntagResourceOutput, error) {
	return &ecs.UntagResourceOutput{}, nil
}

func arnOf(family string, revision int) string {
	return fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/%s:%d", family, revision)
}

func registration(family string) plan.Registration {
	svc := discover.Service{Cluster: "prod", ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/prod", Name: family,
		ARN: "arn:aws:ecs:us-east-1:123456789012:service/prod/" + family, Status: "ACTIVE", TaskDefinition: arnOf(family, 1)}
	td := &types.TaskDefinition{Family: aws.String(family), TaskDefinitionArn: aws.String(arnOf(family, 1)),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("r/app:latest")}}}
	return plan.Registration{From: &discover.TaskDefinition{Definition: td}, Images: map[string]string{"app": "r/app:latest@sha256:x"}, Services: []discover.Service{svc}}
}

// Every service of a plan ends in exactly one list: a refused registration fails its services
// for good, a throttled one leaves them pending (the event's error), the rest deploy.
func TestApplySortsEveryServiceIntoOneList(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	f := &fakeECS{
		registerErr: map[string]error{
			"refused":   &smithy.GenericAPIError{Code: "ClientException", Message: "Too many tags"},
			"throttled": throttled,
		},
		running: map[string]string{"ok": arnOf("ok", 1), "refused": arnOf("refused", 1), "throttled": arnOf("throttled", 1)},
	}
	a := &Applier{ECS: f, Retryer: noRetry{}}
	p := plan.Plan{Registrations: []plan.Registration{registration("ok"), registration("refused"), registration("throttled")}}
	res := a.Apply(context.Background(), p, Audit{Tag: "latest", Digest: "sha256:x", EventID: "e1"}, nil)

	if len(res.Changes) != 1 || res.Changes[0].Service != "ok" || res.Changes[0].Account != "123456789012" {
		t.Errorf("changes = %+v; want prod/ok in 123456789012", res.Changes)
	}
	if len(res.Failed) != 1 || res.Failed[0].Service != "refused" || !strings.Contains(res.Failed[0].Why, "Too many tags") {
		t.Errorf("failed = %+v; want prod/refused with ECS's reason", res.Failed)
	}
	var ie *IncompleteError
	if err := res.Err(); !errors.As(err, &ie) || len(ie.Pending) != 1 || ie.Pending[0] != "prod/throttled" || len(ie.Done) != 1 {
		t.Errorf("Err() = %v; want an IncompleteError with prod/throttled pending and 1 done", err)
	}
	if f.registered != 1 || len(f.updated) != 1 {
		t.Errorf("%d registrations, updates %v; want 1 and [ok]", f.registered, f.updated)
	}
}

func TestTooManyTagsIsRefusedBeforeAskingECS(t *testing.T) {
	reg := registration("tagged")
	for i := range 47 {
		reg.From.Tags = append(reg.From.Tags, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
	}
	f := &fakeECS{running: map[string]string{"tagged": arnOf("tagged", 1)}}
	res := (&Applier{ECS: f, Retryer: noRetry{}}).Apply(context.Background(), plan.Plan{Registrations: []plan.Registration{reg}}, Audit{Tag: "latest", Digest: "sha256:x", EventID: "e1"}, nil)
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Why, "47 tags of its own and pinroll adds 4") || f.registered != 0 {
		t.Errorf("failed = %+v, %d registered; want tagged refused with the numbers and no call", res.Failed, f.registered)
	}
	if res.Err() != nil {
		t.Errorf("Err() = %v; a refusal is not an error to retry", res.Err())
	}
}

// noRetry gives up at once: the tests decide what a failure is, not the backoff.
type noRetry struct{}

func (noRetry) IsErrorRetryable(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
}
func (noRetry) MaxAttempts() int                                   { return 1 }
func (noRetry) RetryDelay(int, error) (d time.Duration, err error) { return 0, nil }
func (noRetry) GetRetryToken(context.Context, error) (func(error) error, error) {
	return func(error) error { return nil }, nil
}
func (noRetry) GetInitialToken() func(error) error { return func(error) error { return nil } }
