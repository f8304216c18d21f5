package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const fixedDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d" // ECR's latest in the default fleet

// deployPinned starts a deployment of prod/api pinned to the fleet's fixed image under cfg.
func deployPinned(t *testing.T, url string, cfg *types.DeploymentConfiguration) {
	t.Helper()
	ctx := context.Background()
	c := ecs.NewFromConfig(awstest.Config(t, url))
	cur, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("backend:1")})
	if err != nil {
		t.Fatal(err)
	}
	td := cur.TaskDefinition
	containers := append([]types.ContainerDefinition(nil), td.ContainerDefinitions...)
	containers[0].Image = aws.String("123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest@" + fixedDigest)
	reg, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: td.Family, ContainerDefinitions: containers, Cpu: td.Cpu, Memory: td.Memory, NetworkMode: td.NetworkMode,
		RequiresCompatibilities: td.RequiresCompatibilities, TaskRoleArn: td.TaskRoleArn, ExecutionRoleArn: td.ExecutionRoleArn,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn, DeploymentConfiguration: cfg,
	}); err != nil {
		t.Fatal(err)
	}
}

// A deployment that has not completed is neither verified nor a mismatch: verify names its
// stage and, while it bakes, when to verify again (exit 3); once it completed, it verifies.
func TestVerifyDuringANativeDeploymentSaysItIsNotDoneYet(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   types.DeploymentConfiguration
		steps [][]string // what verify says at each step until the deployment completes
	}{
		{"BLUE_GREEN bakes", types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(5)}, [][]string{{
			"not verified: deployment ecs-svc/", "of prod/api (BLUE_GREEN, backend:2, started ",
			"is in BAKE_TIME: the previous revision still runs beside it until a bake of 5 minutes ends; verify again after ",
		}}},
		{"LINEAR shifts, then bakes", types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(2),
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(50)}}, [][]string{
			{"is in PRODUCTION_TRAFFIC_SHIFT (50% of production traffic on the new revision); verify again once it has shifted it all and completed a bake of 2 minutes"},
			{"(LINEAR, backend:2, started ", "is in BAKE_TIME"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			localEnv(t)
			world, err := fleet.Load(root + "/events/fleet.json")
			if err != nil {
				t.Fatal(err)
			}
			srv, err := emulator.Start("127.0.0.1:0", emulator.Options{BakeMinute: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			if err := srv.Emulator().Load(world); err != nil {
				t.Fatal(err)
			}
			cfg := tt.cfg
			deployPinned(t, srv.URL(), &cfg)
			for i, want := range tt.steps {
				code, stdout, stderr := runCLI(t, "verify", "--endpoint-url", srv.URL(), "--cluster", "prod", "--service", "api")
				if code != exitUnverified || strings.Contains(stdout, "MISMATCH") || !strings.Contains(stdout, "UNVERIFIED: nothing could be verified: deployment ") {
					t.Errorf("step %d: exit %d, want %d (not verified, no mismatch)\n%s\n%s", i, code, exitUnverified, stdout, stderr)
				}
				for _, w := range want {
					if !strings.Contains(stdout, w) {
						t.Errorf("step %d: verify does not say %q:\n%s", i, w, stdout)
					}
				}
				srv.Emulator().Advance()
			}
			code, stdout, _ := runCLI(t, "verify", "--endpoint-url", srv.URL(), "--cluster", "prod", "--service", "api")
			if code != exitOK || !strings.Contains(stdout, "VERIFIED: every running container checked (2)") {
				t.Errorf("once the deployment completed: exit %d\n%s", code, stdout)
			}
		})
	}
}
