package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// fakeDeployments answers DescribeServiceDeployments with sd (or err), and counts calls.
type fakeDeployments struct {
	sd    *types.ServiceDeployment
	err   error
	calls int
}

func (f *fakeDeployments) DescribeServiceDeployments(_ context.Context, in *ecs.DescribeServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if f.sd == nil || len(in.ServiceDeploymentArns) != 1 || in.ServiceDeploymentArns[0] != aws.ToString(f.sd.ServiceDeploymentArn) {
		return &ecs.DescribeServiceDeploymentsOutput{Failures: []types.Failure{{Reason: aws.String("MISSING")}}}, nil
	}
	return &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []types.ServiceDeployment{*f.sd}}, nil
}

func TestInProgressSaysTheStageAndWhenToVerifyAgain(t *testing.T) {
	started := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	baking := time.Date(2026, 12, 2, 1, 2, 30, 0, time.UTC)
	arn := "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/api/abc"
	svc := func(strategy string) discover.Service {
		return discover.Service{Cluster: "prod", Name: "api", Rollout: &discover.Rollout{
			ID: "ecs-svc/1", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:8", Strategy: strategy,
			BakeTimeInMinutes: 15, StartedAt: started, ServiceDeployment: arn}}
	}
	stage := func(s types.ServiceDeploymentLifecycleStage, weight float64) *fakeDeployments {
		return &fakeDeployments{sd: &types.ServiceDeployment{ServiceDeploymentArn: aws.String(arn), LifecycleStage: s, UpdatedAt: aws.Time(baking),
			TargetServiceRevision: &types.ServiceRevisionSummary{RequestedProductionTrafficWeight: aws.Float64(weight)}}}
	}
	const head = "deployment ecs-svc/1 of prod/api (%s, api:8, started 01:00:00 UTC)"
	tests := []struct {
		name   string
		svc    discover.Service
		client *fakeDeployments
		want   string
		calls  int
	}{
		{"no unfinished deployment", discover.Service{Cluster: "prod", Name: "api"}, &fakeDeployments{}, "", 0},
		{"a rolling update: no stages to ask for", svc("ROLLING"), &fakeDeployments{}, strings.ReplaceAll(head, "%s", "ROLLING") + " has not completed; verify again once it has", 0},
		{"baking: until when", svc("BLUE_GREEN"), stage("BAKE_TIME", 100), strings.ReplaceAll(head, "%s", "BLUE_GREEN") +
			" is in BAKE_TIME: the previous revision still runs beside it until a bake of 15 minutes ends; verify again after 01:17:30 UTC", 1},
		{"shifting traffic: how far", svc("LINEAR"), stage("PRODUCTION_TRAFFIC_SHIFT", 30), strings.ReplaceAll(head, "%s", "LINEAR") +
			" is in PRODUCTION_TRAFFIC_SHIFT (30% of production traffic on the new revision); verify again once it has shifted it all and completed a bake of 15 minutes", 1},
		{"starting green", svc("CANARY"), stage("SCALE_UP", 0), strings.ReplaceAll(head, "%s", "CANARY") +
			" is in SCALE_UP; verify again once it has completed a bake of 15 minutes", 1},
		{"no permission to ask: what DescribeServices said", svc("BLUE_GREEN"), &fakeDeployments{err: errors.New("AccessDeniedException")},
			strings.ReplaceAll(head, "%s", "BLUE_GREEN") + " has not completed; verify again once it has", 1},
		{"ECS does not know the service deployment", svc("BLUE_GREEN"), &fakeDeployments{},
			strings.ReplaceAll(head, "%s", "BLUE_GREEN") + " has not completed; verify again once it has", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InProgress(context.Background(), tt.client, tt.svc); got != tt.want {
				t.Errorf("InProgress:\n got %q\nwant %q", got, tt.want)
			}
			if tt.client.calls != tt.calls {
				t.Errorf("%d DescribeServiceDeployments calls, want %d", tt.client.calls, tt.calls)
			}
		})
	}
}

// noTasks fails the test if the verifier looks at tasks.
type noTasks struct{ t *testing.T }

func (n noTasks) ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error) {
	n.t.Error("ListTasks called for a service whose deployment has not completed")
	return &ecs.ListTasksOutput{}, nil
}

func (n noTasks) DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error) {
	n.t.Error("DescribeTasks called for a service whose deployment has not completed")
	return &ecs.DescribeTasksOutput{}, nil
}

// While blue and green both run, neither is judged: the service is not verified yet, and no
// task of the previous revision counts as a mismatch.
func TestAServiceWhoseDeploymentHasNotCompletedIsNotVerifiedYet(t *testing.T) {
	v := &Verifier{ECS: noTasks{t}}
	svc := discover.Service{Cluster: "prod", Name: "api", DesiredCount: 2, Rollout: &discover.Rollout{ID: "ecs-svc/1", Strategy: "BLUE_GREEN"}}
	td := &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("r/app@sha256:" + strings.Repeat("a", 64))}}}
	vs, err := v.Service(context.Background(), svc, td, &TagDigests{})
	if err != nil {
		t.Fatal(err)
	}
	outcome, reason := Outcome(vs)
	if outcome != report.Unverified || !strings.Contains(reason, "prod/api: deployment ecs-svc/1 (BLUE_GREEN) has not completed") {
		t.Errorf("%s (%s), want unverified: the deployment has not completed", outcome, reason)
	}
}
