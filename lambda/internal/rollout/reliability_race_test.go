package rollout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// sidecarWorld: one task definition, web, whose app and sidecar containers come from two
// repositories; both were just pushed. With deployDelay, the deployment an update replaces is
// still listed in its answer, as on ECS; with 0, deployments complete within UpdateService.
func sidecarWorld(t testing.TB, deployDelay time.Duration) (w *rworld, appEvent, sidecarEvent []byte) {
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}, "sidecar": {"sidecar v1", "sidecar v2"}},
		clusters: []string{"prod"},
		tds:      []string{taskDefJSON("web", containerJSON("app", "{{registry}}/app:latest"), containerJSON("sidecar", "{{registry}}/sidecar:latest"))},
		services: []string{serviceJSON("prod", "web", "web:1")},
	}.build(t)
	w = newRWorld(t, f, config.Config{}, emulator.Options{DeployDelay: deployDelay})
	return w,
		awstest.PushEvent("push-app", awstest.Account, "app", "latest", digestOf("app v2")),
		awstest.PushEvent("push-sidecar", awstest.Account, "sidecar", "latest", digestOf("sidecar v2"))
}

// bothPinned fails the test unless prod/web runs both pushed digests.
func (w *rworld) bothPinned(t *testing.T) {
	t.Helper()
	arn, images := w.images("prod", "web")
	reg := w.fleet.Registry()
	if images["app"] != reg+"/app:latest@"+digestOf("app v2") || images["sidecar"] != reg+"/sidecar:latest@"+digestOf("sidecar v2") {
		t.Errorf("prod/web runs %s with app %s and sidecar %s: a concurrent update was lost", arn, images["app"], images["sidecar"])
	}
}

// interleaving is an ECS client that, once, runs another event to completion just before
// the named operation — the worst moment for the run it belongs to.
type interleaving struct {
	*ecs.Client
	op    string
	other func()
	once  sync.Once
}

func (c *interleaving) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	if c.op == "RegisterTaskDefinition" {
		c.once.Do(c.other)
	}
	return c.Client.RegisterTaskDefinition(ctx, in, opts...)
}

func (c *interleaving) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	if c.op == "UpdateService" {
		c.once.Do(c.other)
	}
	return c.Client.UpdateService(ctx, in, opts...)
}

// Issue 6, item 3: the app push is handled completely while the sidecar push is between
// discovery and its RegisterTaskDefinition (caught by the re-read before UpdateService), or
// between that re-read and its UpdateService (caught by the deployment the update replaced).
// Either way the sidecar run plans again from the app run's revision: both digests end up
// deployed, and each run registered what it needed and nothing twice.
func TestConcurrentPushesToOneTaskDefinitionLoseNothing(t *testing.T) {
	for _, tc := range []struct {
		op    string
		delay time.Duration // 0: the replaced deployment is gone at once, only the re-read sees the change
	}{{"RegisterTaskDefinition", 0}, {"UpdateService", time.Hour}} {
		op := tc.op
		t.Run("app push lands before the sidecar run's "+op, func(t *testing.T) {
			w, appEvent, sidecarEvent := sidecarWorld(t, tc.delay)
			ctx := context.Background()
			client := &interleaving{Client: ecs.NewFromConfig(w.cfg), op: op, other: func() {
				if _, err := w.engine.HandleRaw(ctx, appEvent); err != nil {
					t.Errorf("app push: %v", err)
				}
			}}
			sidecarEngine := atHome(rollout.New(config.Config{}, client, w.engine.ECR, w.engine.Log))
			rep, err := sidecarEngine.HandleRaw(ctx, sidecarEvent)
			if err != nil {
				t.Fatalf("sidecar push: %v", err)
			}
			w.bothPinned(t)
			if len(rep.Changes) != 1 {
				t.Errorf("sidecar run reports %d changes, want 1: %+v", len(rep.Changes), rep)
			}
			// web:1, the sidecar run's first revision, the app run's, and the one with both:
			// never more than one revision per run and plan.
			if n := w.revisions("web"); n > 4 {
				t.Errorf("web has %d revisions, want at most 4", n)
			}
		})
	}
}

// The same two pushes, handled truly concurrently over and over (run with -race).
func TestConcurrentPushesUnderRace(t *testing.T) {
	for round := range 6 {
		w, appEvent, sidecarEvent := sidecarWorld(t, time.Hour)
		other := w.newEngine(config.Config{})
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, run := range []struct {
			e  *rollout.Engine
			ev []byte
		}{{w.engine, appEvent}, {other, sidecarEvent}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = run.e.HandleRaw(ctx, run.ev)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v / %v", round, errs[0], errs[1])
		}
		w.bothPinned(t)
	}
}
