package rollout_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// ECS's BLUE_GREEN, LINEAR and CANARY strategies deploy through the same UpdateService as a
// rolling update; what differs is when the deployment completes: after the traffic shifts and
// the bake time, while the previous revision's tasks (blue) still run. These run on the
// emulator, whose bakes last an hour a minute unless Advance ends them.

// newStrategyWorld is the incident's world with prod/api deployed under cfg from now on.
func newStrategyWorld(t *testing.T, cfg *types.DeploymentConfiguration) *incidentWorld {
	t.Helper()
	w := newIncidentWorld(t, emulator.Options{BakeMinute: time.Hour})
	if _, err := ecs.NewFromConfig(w.cfg).UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Cluster: aws.String("prod"), Service: aws.String("api"), DeploymentConfiguration: cfg,
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

// delivered hands every event delivered so far to the engine, advancing nothing, and returns
// the reports about prod/api.
func (w *incidentWorld) delivered(t *testing.T) []report.Report {
	t.Helper()
	w.srv.Emulator().Flush()
	w.mu.Lock()
	evs := w.events
	w.events = nil
	w.mu.Unlock()
	var api []report.Report
	for _, ev := range evs {
		rep, err := w.engine.HandleRaw(context.Background(), ev)
		if err != nil {
			t.Fatalf("deployment event: %v\n%s", err, ev)
		}
		if strings.Contains(string(ev), "service/prod/api") {
			api = append(api, rep)
		}
	}
	return api
}

func (w *incidentWorld) push(t *testing.T) {
	t.Helper()
	rep, err := w.engine.HandleRaw(context.Background(), readEvent(t, "push-tagged.json"))
	if err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("push: %v %+v", err, rep)
	}
}

func outcomes(reps []report.Report) string {
	var out []string
	for _, r := range reps {
		out = append(out, string(r.Outcome))
	}
	return strings.Join(out, " ")
}

func TestNativeStrategiesAreVerifiedOnlyAfterTheirBake(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   types.DeploymentConfiguration
		steps int // Advances before the deployment completes: traffic steps, then the bake
	}{
		{"BLUE_GREEN", types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(5)}, 1},
		{"CANARY", types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(5),
			CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)}}, 2},
		{"LINEAR", types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(5),
			LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(50), StepBakeTimeInMinutes: aws.Int32(1)}}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			w := newStrategyWorld(t, &cfg)
			w.push(t)
			for step := 0; step < tt.steps; step++ {
				reps := w.delivered(t)
				for _, r := range reps {
					if r.Outcome != report.Skipped || !strings.Contains(r.Reason, "IN_PROGRESS") {
						t.Fatalf("step %d, before the bake ended: %s (%s); the function must hear of no completion yet", step, r.Outcome, r.Reason)
					}
				}
				// Blue and green both run: verification now judges neither, and finds no mismatch.
				if outcome, reason := verify.Outcome(w.verifyService(t, "prod", "api")); outcome != report.Unverified || !strings.Contains(reason, "has not completed") {
					t.Errorf("step %d: verifying prod/api mid-deployment: %s (%s), want unverified: not completed", step, outcome, reason)
				}
				if w.srv.Emulator().Advance() == 0 {
					t.Fatalf("step %d: nothing was waiting", step)
				}
			}
			reps := w.delivered(t)
			if got := outcomes(reps); got != "verified" {
				t.Fatalf("after the bake prod/api's reports are %q, want one verified: %+v", got, reps)
			}
			if vs := reps[0].Verifications; len(vs) != 2 || vs[0].Running != newDigest || vs[1].Running != newDigest {
				t.Errorf("verified %+v; want green's 2 tasks on %s, blue's gone", vs, newDigest)
			}
		})
	}
}

func TestRollbackDuringTheBakeIsRolledBackNamingTheRevisionRunningNow(t *testing.T) {
	w := newStrategyWorld(t, &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(30)})
	client := ecs.NewFromConfig(w.cfg)
	blue := describeAPI(t, client).TaskDefinition
	w.push(t)
	if got := outcomes(w.delivered(t)); got != "skipped" {
		t.Fatalf("before the rollback: %q, want the IN_PROGRESS skipped alone", got)
	}
	// The operator sees trouble during the bake and rolls back, as ECS's console or CLI does.
	current := describeAPI(t, client).CurrentServiceDeployment
	if _, err := client.StopServiceDeployment(context.Background(), &ecs.StopServiceDeploymentInput{
		ServiceDeploymentArn: current, StopType: types.StopServiceDeploymentStopTypeRollback,
	}); err != nil {
		t.Fatal(err)
	}
	reps := w.delivered(t)
	if len(reps) != 1 || reps[0].Outcome != report.RolledBack || !reps[0].IsFailure() {
		t.Fatalf("after the rollback: %+v; want one rolled_back report, a failure", reps)
	}
	r := reps[0]
	if !strings.Contains(r.Reason, "ECS rolled it back") || !strings.Contains(r.Reason, "the service now runs "+report.Revision(aws.ToString(blue))) ||
		!strings.Contains(r.Image, "@"+newDigest) {
		t.Errorf("rolled_back report %q (image %s); want it to say ECS rolled it back and that prod/api runs %s again", r.Reason, r.Image, report.Revision(aws.ToString(blue)))
	}
	w.srv.Emulator().Settle()
	if got := outcomes(w.delivered(t)); got != "" {
		t.Errorf("after the rollback settled: %q, want no further report (no completion)", got)
	}
}

func describeAPI(t *testing.T, c *ecs.Client) types.Service {
	t.Helper()
	out, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe prod/api: %v %+v", err, out)
	}
	return out.Services[0]
}
