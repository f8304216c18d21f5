package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// strategyWorld is the default fleet with prod/api (2 tasks, circuit breaker with rollback)
// about to be deployed under a strategy, bakes lasting an hour a minute unless Advance ends them.
type strategyWorld struct {
	srv    *emulator.Server
	c      *ecs.Client
	events eventLog
	blue   string // prod/api's revision before the deployment
}

func newStrategyWorld(t *testing.T, opts emulator.Options) *strategyWorld {
	w := &strategyWorld{}
	opts.OnDeploymentEvent = w.events.sink
	if opts.BakeMinute == 0 {
		opts.BakeMinute = time.Hour
	}
	w.srv = startIncident(t, opts)
	w.c = ecsClient(w.srv.URL(), clientOptions{})
	w.blue = aws.ToString(describeService(t, w.c, "prod", "api").TaskDefinition)
	return w
}

// deploy updates prod/api to a revision pinned to digest under cfg.
func (w *strategyWorld) deploy(t *testing.T, digest string, cfg *types.DeploymentConfiguration) string {
	t.Helper()
	green := registerPinned(t, w.c, registry+"/content-marketing-swarm-backend:latest@"+digest)
	if _, err := w.c.UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(green), DeploymentConfiguration: cfg,
	}); err != nil {
		t.Fatal(err)
	}
	return green
}

// current describes prod/api's current service deployment.
func (w *strategyWorld) current(t *testing.T) types.ServiceDeployment {
	t.Helper()
	svc := describeService(t, w.c, "prod", "api")
	out, err := w.c.DescribeServiceDeployments(context.Background(), &ecs.DescribeServiceDeploymentsInput{
		ServiceDeploymentArns: []string{aws.ToString(svc.CurrentServiceDeployment)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ServiceDeployments) != 1 {
		t.Fatalf("current service deployment %s: %+v", aws.ToString(svc.CurrentServiceDeployment), out.Failures)
	}
	return out.ServiceDeployments[0]
}

func (w *strategyWorld) eventNames() string {
	var names []string
	for _, ev := range w.events.take() {
		names = append(names, strings.TrimPrefix(ev.Detail.EventName, "SERVICE_DEPLOYMENT_"))
	}
	return strings.Join(names, " ")
}

func blueGreen(bake int32) *types.DeploymentConfiguration {
	return &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(bake)}
}

func weight(r *types.ServiceRevisionSummary) float64 {
	return aws.ToFloat64(r.RequestedProductionTrafficWeight)
}

func TestBlueGreenKeepsBlueRunningThroughTheBakeAndCompletesOnlyAfterIt(t *testing.T) {
	w := newStrategyWorld(t, emulator.Options{DeployDelay: time.Hour})
	green := w.deploy(t, newImage, blueGreen(5))

	sd := w.current(t)
	if sd.LifecycleStage != types.ServiceDeploymentLifecycleStageScaleUp || sd.Status != types.ServiceDeploymentStatusInProgress ||
		sd.TargetServiceRevision.PendingTaskCount != 2 || sd.TargetServiceRevision.RunningTaskCount != 0 {
		t.Errorf("right after UpdateService: %s %s, target %+v; want SCALE_UP IN_PROGRESS with 2 pending", sd.LifecycleStage, sd.Status, sd.TargetServiceRevision)
	}

	w.srv.Emulator().Advance() // the green tasks start; all traffic shifts at once; the bake begins
	sd = w.current(t)
	if sd.LifecycleStage != types.ServiceDeploymentLifecycleStageBakeTime || sd.Status != types.ServiceDeploymentStatusInProgress {
		t.Fatalf("after the green tasks started: %s %s; want BAKE_TIME IN_PROGRESS", sd.LifecycleStage, sd.Status)
	}
	if len(sd.SourceServiceRevisions) != 1 || weight(sd.TargetServiceRevision) != 100 || weight(&sd.SourceServiceRevisions[0]) != 0 ||
		sd.TargetServiceRevision.RunningTaskCount != 2 || sd.SourceServiceRevisions[0].RunningTaskCount != 2 {
		t.Errorf("baking: target %+v, sources %+v; want green with 100%% of the traffic and blue still running its 2 tasks", sd.TargetServiceRevision, sd.SourceServiceRevisions)
	}
	svc := describeService(t, w.c, "prod", "api")
	if len(svc.Deployments) != 2 || aws.ToString(svc.Deployments[0].Status) != "PRIMARY" || aws.ToString(svc.Deployments[0].TaskDefinition) != green ||
		svc.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress || aws.ToString(svc.Deployments[1].Status) != "ACTIVE" ||
		aws.ToString(svc.Deployments[1].TaskDefinition) != w.blue || svc.RunningCount != 4 {
		t.Errorf("baking: deployments %+v, running %d; want green PRIMARY IN_PROGRESS and blue ACTIVE, 4 tasks", svc.Deployments, svc.RunningCount)
	}
	if got := runningDigests(t, w.c, "prod", "api", "app"); len(got) != 4 {
		t.Errorf("baking: running digests %v, want blue's 2 and green's 2", got)
	}
	w.srv.Emulator().Flush()
	if got := w.eventNames(); got != "IN_PROGRESS" {
		t.Fatalf("events before the bake ended: %s; want IN_PROGRESS only (COMPLETED comes after the bake)", got)
	}

	w.srv.Emulator().Advance() // the bake ends: clean-up
	if got := w.eventNames(); got != "COMPLETED" {
		t.Errorf("events when the bake ended: %s; want COMPLETED", got)
	}
	sd = w.current(t)
	if sd.LifecycleStage != types.ServiceDeploymentLifecycleStageCleanUp || sd.Status != types.ServiceDeploymentStatusSuccessful || sd.FinishedAt == nil ||
		sd.SourceServiceRevisions[0].RunningTaskCount != 0 {
		t.Errorf("after the bake: %s %s finished %v, sources %+v; want CLEAN_UP SUCCESSFUL, blue stopped", sd.LifecycleStage, sd.Status, sd.FinishedAt, sd.SourceServiceRevisions)
	}
	if got := runningDigests(t, w.c, "prod", "api", "app"); !allEqual(got, newImage, 2) {
		t.Errorf("after the bake prod/api runs %v, want green's 2 tasks of %s alone", got, newImage)
	}
	if svc := describeService(t, w.c, "prod", "api"); len(svc.Deployments) != 1 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
		t.Errorf("after the bake: deployments %+v; want green alone, COMPLETED", svc.Deployments)
	}
}

func TestCanaryAndLinearShiftTrafficStepByStepThenBake(t *testing.T) {
	type phase struct {
		stage  types.ServiceDeploymentLifecycleStage
		weight float64
	}
	tests := []struct {
		name string
		cfg  types.DeploymentConfiguration
		want []phase // after UpdateService, then after each Advance
	}{
		{"canary 10% for 3 minutes, then a bake of 2", types.DeploymentConfiguration{
			Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(2),
			CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(3)},
		}, []phase{{"PRODUCTION_TRAFFIC_SHIFT", 10}, {"BAKE_TIME", 100}, {"CLEAN_UP", 100}}},
		{"canary with ECS's defaults (5%)", types.DeploymentConfiguration{
			Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(1),
		}, []phase{{"PRODUCTION_TRAFFIC_SHIFT", 5}, {"BAKE_TIME", 100}, {"CLEAN_UP", 100}}},
		{"linear 25% a step, a minute between steps, none after the last", types.DeploymentConfiguration{
			Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(4),
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(25), StepBakeTimeInMinutes: aws.Int32(1)},
		}, []phase{{"PRODUCTION_TRAFFIC_SHIFT", 25}, {"PRODUCTION_TRAFFIC_SHIFT", 50}, {"PRODUCTION_TRAFFIC_SHIFT", 75}, {"BAKE_TIME", 100}, {"CLEAN_UP", 100}}},
		{"linear 40% a step: the last step is what is left", types.DeploymentConfiguration{
			Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(1),
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(40)},
		}, []phase{{"PRODUCTION_TRAFFIC_SHIFT", 40}, {"PRODUCTION_TRAFFIC_SHIFT", 80}, {"BAKE_TIME", 100}, {"CLEAN_UP", 100}}},
		{"linear without step bake time shifts at once", types.DeploymentConfiguration{
			Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(1),
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(20), StepBakeTimeInMinutes: aws.Int32(0)},
		}, []phase{{"BAKE_TIME", 100}, {"CLEAN_UP", 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStrategyWorld(t, emulator.Options{})
			cfg := tt.cfg
			w.deploy(t, newImage, &cfg)
			var got []phase
			for i := range tt.want {
				if i > 0 && w.srv.Emulator().Advance() != 1 {
					t.Fatalf("after %v nothing was waiting", got)
				}
				sd := w.current(t)
				got = append(got, phase{sd.LifecycleStage, weight(sd.TargetServiceRevision)})
				if blue := weight(&sd.SourceServiceRevisions[0]); sd.Status == types.ServiceDeploymentStatusInProgress && blue+got[i].weight != 100 {
					t.Errorf("phase %d: blue takes %v%%, green %v%%", i, blue, got[i].weight)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("phases %v, want %v", got, tt.want)
			}
			if events := w.eventNames(); events != "IN_PROGRESS COMPLETED" {
				t.Errorf("events %s, want IN_PROGRESS COMPLETED", events)
			}
			if n := w.srv.Emulator().Advance(); n != 0 {
				t.Errorf("%d deployments still waiting after the clean-up", n)
			}
		})
	}
}

func TestBakeEndsInTheBackgroundAfterItsMinutes(t *testing.T) {
	w := newStrategyWorld(t, emulator.Options{BakeMinute: 50 * time.Millisecond})
	start := time.Now()
	w.deploy(t, newImage, blueGreen(2))
	deadline := time.Now().Add(10 * time.Second)
	for w.current(t).Status != types.ServiceDeploymentStatusSuccessful {
		if time.Now().After(deadline) {
			t.Fatalf("the bake of 2 × 50ms did not end within 10s: %+v", w.current(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("the deployment completed after %v, before its bake of 2 minutes × 50ms", took)
	}
}

func TestStopServiceDeploymentDuringTheBakeRestoresBlue(t *testing.T) {
	w := newStrategyWorld(t, emulator.Options{})
	w.deploy(t, newImage, blueGreen(10))
	ctx := context.Background()
	sd := w.current(t)
	blueRevision := aws.ToString(sd.SourceServiceRevisions[0].Arn)
	blueID := aws.ToString(describeService(t, w.c, "prod", "api").Deployments[1].Id)

	out, err := w.c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{
		ServiceDeploymentArn: sd.ServiceDeploymentArn, StopType: types.StopServiceDeploymentStopTypeRollback,
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ServiceDeploymentArn) != aws.ToString(sd.ServiceDeploymentArn) {
		t.Errorf("stopped %s, want %s", aws.ToString(out.ServiceDeploymentArn), aws.ToString(sd.ServiceDeploymentArn))
	}
	svc := describeService(t, w.c, "prod", "api")
	if aws.ToString(svc.TaskDefinition) != w.blue || len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Id) != blueID ||
		aws.ToString(svc.Deployments[0].Status) != "PRIMARY" {
		t.Errorf("after the rollback: %s, deployments %+v; want blue's deployment %s PRIMARY alone", aws.ToString(svc.TaskDefinition), svc.Deployments, blueID)
	}
	if got := runningDigests(t, w.c, "prod", "api", "app"); !allEqual(got, oldImage, 2) {
		t.Errorf("after the rollback prod/api runs %v, want blue's 2 tasks of %s", got, oldImage)
	}
	sd = w.current(t)
	if sd.Status != types.ServiceDeploymentStatusRollbackSuccessful || sd.Rollback == nil || aws.ToString(sd.Rollback.ServiceRevisionArn) != blueRevision ||
		!strings.Contains(aws.ToString(sd.Rollback.Reason), "StopServiceDeployment") || sd.FinishedAt == nil {
		t.Errorf("service deployment after the rollback: %s rollback %+v; want ROLLBACK_SUCCESSFUL to %s", sd.Status, sd.Rollback, blueRevision)
	}
	w.srv.Emulator().Settle()
	evs := w.events.take()
	if len(evs) != 2 || evs[0].Detail.EventName != "SERVICE_DEPLOYMENT_IN_PROGRESS" || evs[1].Detail.EventName != "SERVICE_DEPLOYMENT_FAILED" ||
		evs[1].Detail.EventType != "ERROR" || !strings.HasSuffix(evs[1].Detail.Reason, "Rolling back to deployment "+blueID+".") {
		t.Fatalf("events %+v; want IN_PROGRESS, then FAILED rolling back to %s, and no COMPLETED", evs, blueID)
	}

	_, err = w.c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: sd.ServiceDeploymentArn})
	wantCode(t, err, "ConflictException")
	_, err = w.c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{
		ServiceDeploymentArn: aws.String(aws.ToString(sd.ServiceDeploymentArn) + "x"),
	})
	wantCode(t, err, "ServiceDeploymentNotFoundException")
}

func TestGreenTasksThatCannotStartRestoreBlueWithoutRedeployingIt(t *testing.T) {
	w := newStrategyWorld(t, emulator.Options{})
	blueID := aws.ToString(describeService(t, w.c, "prod", "api").Deployments[0].Id)
	w.deploy(t, "sha256:"+strings.Repeat("d", 64), blueGreen(10)) // not in ECR
	svc := describeService(t, w.c, "prod", "api")
	if aws.ToString(svc.TaskDefinition) != w.blue || len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Id) != blueID {
		t.Errorf("deployments %+v; want blue's %s alone", svc.Deployments, blueID)
	}
	w.srv.Emulator().Settle()
	if got := w.eventNames(); got != "IN_PROGRESS FAILED" {
		t.Errorf("events %s; want IN_PROGRESS FAILED (blue is restored, not deployed again)", got)
	}
	if sd := w.current(t); sd.Status != types.ServiceDeploymentStatusRollbackSuccessful || sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered {
		t.Errorf("service deployment %s, circuit breaker %+v; want ROLLBACK_SUCCESSFUL, TRIGGERED", sd.Status, sd.DeploymentCircuitBreaker)
	}
}

func TestListServiceDeploymentsNewestFirstWithFilters(t *testing.T) {
	w := newStrategyWorld(t, emulator.Options{})
	ctx := context.Background()
	w.deploy(t, newImage, blueGreen(10))
	list, err := w.c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("prod"), Service: aws.String("api")})
	if err != nil {
		t.Fatal(err)
	}
	svc := describeService(t, w.c, "prod", "api")
	if len(list.ServiceDeployments) != 2 || aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn) != aws.ToString(svc.CurrentServiceDeployment) ||
		list.ServiceDeployments[0].Status != types.ServiceDeploymentStatusInProgress || list.ServiceDeployments[1].Status != types.ServiceDeploymentStatusSuccessful ||
		!strings.HasPrefix(aws.ToString(svc.CurrentServiceDeployment), "arn:aws:ecs:us-east-1:"+account+":service-deployment/prod/api/") {
		t.Fatalf("service deployments %+v (current %s); want the baking one, then the fleet's first", list.ServiceDeployments, aws.ToString(svc.CurrentServiceDeployment))
	}
	if got, want := aws.ToString(list.ServiceDeployments[0].TargetServiceRevisionArn), aws.ToString(svc.CurrentServiceRevisions[0].Arn); got != want ||
		!strings.Contains(got, ":service-revision/prod/api/") {
		t.Errorf("target revision %s, want the PRIMARY deployment's %s", got, want)
	}
	done, err := w.c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String("prod"), Service: aws.String("api"), Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusSuccessful},
	})
	if err != nil || len(done.ServiceDeployments) != 1 || done.ServiceDeployments[0].FinishedAt == nil {
		t.Errorf("SUCCESSFUL only: %+v %v", done, err)
	}
	page, err := w.c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("prod"), Service: aws.String("api"), MaxResults: aws.Int32(1)})
	if err != nil || len(page.ServiceDeployments) != 1 || page.NextToken == nil {
		t.Errorf("a page of 1: %+v %v", page, err)
	}
	_, err = w.c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("prod"), Service: aws.String("nope")})
	wantCode(t, err, "ServiceNotFoundException")

	arns := []string{aws.ToString(svc.CurrentServiceDeployment), aws.ToString(svc.CurrentServiceDeployment) + "x"}
	desc, err := w.c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: arns})
	if err != nil || len(desc.ServiceDeployments) != 1 || len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" {
		t.Errorf("describe a known and an unknown ARN: %+v %v", desc, err)
	}
	if cfg := desc.ServiceDeployments[0].DeploymentConfiguration; cfg == nil || cfg.Strategy != types.DeploymentStrategyBlueGreen || aws.ToInt32(cfg.BakeTimeInMinutes) != 10 {
		t.Errorf("the deployment's configuration %+v, want BLUE_GREEN with a bake of 10", cfg)
	}
	_, err = w.c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: make([]string, 21)})
	wantCode(t, err, "InvalidParameterException")
}

func TestStrategyConfigurationIsValidatedAsDocumented(t *testing.T) {
	hooks := func(h ...types.DeploymentLifecycleHook) *types.DeploymentConfiguration {
		return &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(1), LifecycleHooks: h}
	}
	lambda := func(stages ...types.DeploymentLifecycleHookStage) types.DeploymentLifecycleHook {
		return types.DeploymentLifecycleHook{HookTargetArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:check"),
			RoleArn: aws.String("arn:aws:iam::123456789012:role/hooks"), LifecycleStages: stages}
	}
	tests := []struct {
		name    string
		service string
		cfg     *types.DeploymentConfiguration
		lbs     []types.LoadBalancer
		want    string // "" accepted, else a piece of the InvalidParameterException's message
	}{
		{"an unknown strategy", "api", &types.DeploymentConfiguration{Strategy: "PURPLE"}, nil, "strategy"},
		{"BLUE_GREEN without a bake time", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}, nil, "bakeTimeInMinutes is required"},
		{"a bake longer than a day", "api", blueGreen(1441), nil, "between 0 and 1440"},
		{"a negative bake", "api", blueGreen(-1), nil, "between 0 and 1440"},
		{"linear settings with CANARY", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary,
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(10)}}, nil, "linearConfiguration is only valid"},
		{"canary settings with ROLLING", "api", &types.DeploymentConfiguration{
			CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10)}}, nil, "canaryConfiguration is only valid"},
		{"a linear step under 3%", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear,
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(2.5)}}, nil, "stepPercent"},
		{"a linear step not a multiple of 0.1", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear,
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(10.05)}}, nil, "stepPercent"},
		{"a step bake over a day", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear,
			LinearConfiguration: &types.LinearConfiguration{StepBakeTimeInMinutes: aws.Int32(1441)}}, nil, "stepBakeTimeInMinutes"},
		{"a canary of 0%", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary,
			CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(0)}}, nil, "canaryPercent"},
		{"BLUE_GREEN under the CODE_DEPLOY controller", "legacy-codedeploy", blueGreen(1), nil, "ECS deployment controller"},
		{"a load balancer without an alternate target group", "api", blueGreen(1), []types.LoadBalancer{{
			TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80),
		}}, "alternateTargetGroupArn"},
		{"a hook at BAKE_TIME", "api", hooks(lambda("BAKE_TIME")), nil, "BAKE_TIME"},
		{"a Lambda hook without its function", "api", hooks(types.DeploymentLifecycleHook{LifecycleStages: []types.DeploymentLifecycleHookStage{"POST_SCALE_UP"}}), nil, "hookTargetArn"},
		{"a PAUSE hook at PRODUCTION_TRAFFIC_SHIFT", "api", hooks(types.DeploymentLifecycleHook{TargetType: types.DeploymentLifecycleHookTargetTypePause,
			LifecycleStages: []types.DeploymentLifecycleHookStage{"PRODUCTION_TRAFFIC_SHIFT"}}), nil, "PAUSE hook"},
		{"a hook without stages", "api", hooks(lambda()), nil, "lifecycleStages is required"},

		{"BLUE_GREEN with a bake", "api", blueGreen(15), nil, ""},
		{"BLUE_GREEN with a bake of 0", "api", blueGreen(0), nil, ""},
		{"LINEAR with ECS's defaults", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear}, nil, ""},
		{"CANARY of 0.1%", "api", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary,
			CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(0.1), CanaryBakeTimeInMinutes: aws.Int32(1440)}}, nil, ""},
		{"a load balancer with its advanced configuration", "api", blueGreen(1), []types.LoadBalancer{{
			TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80),
			AdvancedConfiguration: &types.AdvancedConfiguration{
				AlternateTargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2"),
				ProductionListenerRule:  aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/1/2/3"),
				RoleArn:                 aws.String("arn:aws:iam::123456789012:role/ecsInfrastructureRole"),
			},
		}}, ""},
		{"hooks at their stages", "api", hooks(lambda("PRE_SCALE_UP", "TEST_TRAFFIC_SHIFT"), types.DeploymentLifecycleHook{
			TargetType: types.DeploymentLifecycleHookTargetTypePause, LifecycleStages: []types.DeploymentLifecycleHookStage{"POST_TEST_TRAFFIC_SHIFT"}}), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startIncident(t, emulator.Options{})
			c := ecsClient(srv.URL(), clientOptions{})
			before := describeService(t, c, "prod", tt.service)
			_, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{
				Cluster: aws.String("prod"), Service: aws.String(tt.service), DeploymentConfiguration: tt.cfg, LoadBalancers: tt.lbs,
			})
			after := describeService(t, c, "prod", tt.service)
			if tt.want != "" {
				wantCode(t, err, "InvalidParameterException")
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q does not say %q", err, tt.want)
				}
				if b, a := asJSON(before.DeploymentConfiguration), asJSON(after.DeploymentConfiguration); a != b {
					t.Errorf("a refused update changed the configuration: %s → %s", b, a)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := after.DeploymentConfiguration
			if got.Strategy != tt.cfg.Strategy || asJSON(got.LinearConfiguration) != asJSON(tt.cfg.LinearConfiguration) ||
				asJSON(got.CanaryConfiguration) != asJSON(tt.cfg.CanaryConfiguration) || len(got.LifecycleHooks) != len(tt.cfg.LifecycleHooks) {
				t.Errorf("DescribeServices shows %s, want what was set: %s", asJSON(got), asJSON(tt.cfg))
			}
		})
	}
}

func TestCreateServiceRefusesAnInvalidStrategy(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	_, err := c.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("bg"), TaskDefinition: aws.String("backend:1"), DesiredCount: aws.Int32(1),
		DeploymentConfiguration: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen},
	})
	wantCode(t, err, "InvalidParameterException")
	if out, _ := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"bg"}}); len(out.Services) != 0 {
		t.Errorf("a refused CreateService created %+v", out.Services)
	}
	created, err := c.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("bg"), TaskDefinition: aws.String("backend:1"), DesiredCount: aws.Int32(1),
		DeploymentConfiguration: blueGreen(3),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first deployment has no blue: nothing to bake beside, but the stages are the same.
	if cfg := created.Service.DeploymentConfiguration; cfg.Strategy != types.DeploymentStrategyBlueGreen || aws.ToInt32(cfg.BakeTimeInMinutes) != 3 {
		t.Errorf("created with %s", asJSON(cfg))
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A fleet declares a service's strategy; Load and Seed (the SDK's CreateService) build it so,
// and a configuration ECS would refuse is refused when the fleet loads, naming the service.
func TestFleetServicesMayUseTheNativeStrategies(t *testing.T) {
	world := func(cfg string) *fleet.Fleet {
		f, err := fleet.Load("../../../events/fleet.json")
		if err != nil {
			t.Fatal(err)
		}
		var dc fleet.DeploymentConfiguration
		if err := json.Unmarshal([]byte(cfg), &dc); err != nil {
			t.Fatal(err)
		}
		f.Services = append(f.Services, fleet.Service{Cluster: "prod", Name: "canary", TaskDefinition: "backend:1", DesiredCount: 1, DeploymentConfiguration: &dc})
		return f
	}
	good := world(`{"strategy": "CANARY", "bakeTimeInMinutes": 3, "canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": 2}}`)
	loaded := start(t, emulator.Options{})
	if err := loaded.Emulator().Load(good); err != nil {
		t.Fatal(err)
	}
	seeded := start(t, emulator.Options{})
	cfg := sdkConfig(seeded.URL(), clientOptions{})
	if err := good.Seed(context.Background(), ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	for name, srv := range map[string]*emulator.Server{"loaded": loaded, "seeded": seeded} {
		got := describeService(t, ecsClient(srv.URL(), clientOptions{}), "prod", "canary").DeploymentConfiguration
		if got.Strategy != types.DeploymentStrategyCanary || aws.ToInt32(got.BakeTimeInMinutes) != 3 || got.CanaryConfiguration == nil ||
			aws.ToFloat64(got.CanaryConfiguration.CanaryPercent) != 20 || aws.ToInt32(got.CanaryConfiguration.CanaryBakeTimeInMinutes) != 2 {
			t.Errorf("%s: prod/canary's configuration %s, want the fleet's", name, asJSON(got))
		}
	}
	err := start(t, emulator.Options{}).Emulator().Load(world(`{"strategy": "BLUE_GREEN"}`))
	if err == nil || !strings.Contains(err.Error(), "service prod/canary") || !strings.Contains(err.Error(), "bakeTimeInMinutes is required") {
		t.Errorf("a BLUE_GREEN service without a bake time loaded: %v", err)
	}
	if _, err := fleet.Parse([]byte(`{"services": [{"cluster": "c", "name": "s", "taskDefinition": "t:1", "deploymentConfiguration": {"strategy": "PURPLE"}}]}`)); err == nil ||
		!strings.Contains(err.Error(), `deploymentConfiguration.strategy "PURPLE"`) {
		t.Errorf("a fleet with an unknown strategy: %v", err)
	}
}
