package discover_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
)

func TestRolloutIsThePrimaryDeploymentECSHasNotFinished(t *testing.T) {
	started := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	deployment := func(status string, state types.DeploymentRolloutState) types.Deployment {
		return types.Deployment{Id: aws.String("ecs-svc/" + status), Status: aws.String(status), RolloutState: state,
			TaskDefinition: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/api:" + status), CreatedAt: aws.Time(started)}
	}
	blueGreen := &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(15)}
	sd := aws.String("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/api/abc")
	tests := []struct {
		name string
		svc  types.Service
		want *discover.Rollout
	}{
		{"no deployment", types.Service{}, nil},
		{"a completed deployment", types.Service{Deployments: []types.Deployment{deployment("PRIMARY", types.DeploymentRolloutStateCompleted)}}, nil},
		{"a failed deployment has finished", types.Service{Deployments: []types.Deployment{
			deployment("PRIMARY", types.DeploymentRolloutStateFailed), deployment("ACTIVE", types.DeploymentRolloutStateCompleted)}}, nil},
		{"a rolling update in progress", types.Service{Deployments: []types.Deployment{
			deployment("PRIMARY", types.DeploymentRolloutStateInProgress), deployment("ACTIVE", types.DeploymentRolloutStateCompleted)}},
			&discover.Rollout{ID: "ecs-svc/PRIMARY", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:PRIMARY", Strategy: "ROLLING", StartedAt: started}},
		{"blue/green baking, with its service deployment", types.Service{DeploymentConfiguration: blueGreen, CurrentServiceDeployment: sd, Deployments: []types.Deployment{
			deployment("PRIMARY", types.DeploymentRolloutStateInProgress), deployment("ACTIVE", types.DeploymentRolloutStateCompleted)}},
			&discover.Rollout{ID: "ecs-svc/PRIMARY", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:PRIMARY", Strategy: "BLUE_GREEN",
				BakeTimeInMinutes: 15, StartedAt: started, ServiceDeployment: aws.ToString(sd)}},
		{"no rolloutState but blue still listed", types.Service{DeploymentConfiguration: blueGreen, Deployments: []types.Deployment{
			deployment("PRIMARY", ""), deployment("ACTIVE", "")}},
			&discover.Rollout{ID: "ecs-svc/PRIMARY", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:PRIMARY", Strategy: "BLUE_GREEN",
				BakeTimeInMinutes: 15, StartedAt: started}},
		{"no rolloutState and alone (moto)", types.Service{Deployments: []types.Deployment{deployment("PRIMARY", "")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, discover.FromSDK(tt.svc).Rollout); d != "" {
				t.Errorf("Rollout (-want +got):\n%s", d)
			}
		})
	}
}
