package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// waveWorld is a hub whose push of app:latest rolls out in three waves across two target
// accounts: dev's prod/api (wave 0, untagged), then prod's prod/api (wave 1), then prod's
// prod/edge (wave 2). Deployments take an hour unless Settle completes them, so each step is
// the test's to take; every EventBridge event the emulator emits is kept, as a forwarding
// rule would deliver it to the hub.
type waveWorld struct {
	*hub
	srv    *emulator.Server
	cfg    aws.Config
	mu     sync.Mutex
	events [][]byte
}

func newWaveWorld(t *testing.T) (*waveWorld, string) {
	w := &waveWorld{}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{DeployDelay: time.Hour, OnEvent: func(_ context.Context, ev []byte) {
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w.srv, w.cfg = srv, awstest.Config(t, srv.URL())
	w.hub = newHub(t, w.cfg, devAccount, prodAccount)
	w.Repository("app")
	w.Push("app", "latest", "v1")
	dev, prod := w.targets[devAccount], w.targets[prodAccount]
	dev.Cluster("prod")
	dev.Service("prod", "api", dev.TaskDefinition("api", awstest.Container("app", w.Image("app", "latest"))))
	prod.Cluster("prod")
	prod.Service("prod", "api", prod.TaskDefinition("api", awstest.Container("app", w.Image("app", "latest"))), awstest.Tags("pinroll:wave", "1"))
	prod.Service("prod", "edge", prod.TaskDefinition("edge", awstest.Container("app", w.Image("app", "latest"))), awstest.Tags("pinroll:wave", "2"))
	w.take() // the services' first deployments
	return w, w.Push("app", "latest", "v2")
}

// take completes every deployment under way and returns the events delivered since last time.
func (w *waveWorld) take() [][]byte {
	w.srv.Emulator().Settle()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := w.events
	w.events = nil
	return evs
}

// deployment is one ECS Deployment State Change: its service ("account cluster/service"),
// its name (SERVICE_DEPLOYMENT_COMPLETED, …) and the raw event.
type deployment struct {
	service, name string
	raw           []byte
}

func deployments(t *testing.T, raws [][]byte) []deployment {
	t.Helper()
	var out []deployment
	for _, raw := range raws {
		var ev struct {
			DetailType string   `json:"detail-type"`
			Account    string   `json:"account"`
			Resources  []string `json:"resources"`
			Detail     struct {
				EventName string `json:"eventName"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DetailType != "ECS Deployment State Change" || len(ev.Resources) != 1 {
			continue
		}
		_, name, _ := strings.Cut(ev.Resources[0], ":service/")
		out = append(out, deployment{service: ev.Account + " " + name, name: ev.Detail.EventName, raw: raw})
	}
	return out
}

// deliver hands every deployment event to engine, in order, and returns the reports of the
// completed and failed ones by service (a failure's, when a service had both: the rollback's
// completion follows it).
func (w *waveWorld) deliver(t *testing.T, engine *rollout.Engine, evs []deployment) map[string]report.Report {
	t.Helper()
	reps, failed := map[string]report.Report{}, map[string]bool{}
	for _, d := range evs {
		rep, err := engine.HandleRaw(context.Background(), d.raw)
		if err != nil {
			t.Fatalf("%s %s: %v", d.service, d.name, err)
		}
		if d.name != "SERVICE_DEPLOYMENT_IN_PROGRESS" && !failed[d.service] {
			reps[d.service] = rep
			failed[d.service] = d.name == "SERVICE_DEPLOYMENT_FAILED"
		}
	}
	return reps
}

func changed(rep report.Report) []string {
	var out []string
	for _, c := range rep.Changes {
		out = append(out, c.Account+" "+c.Cluster+"/"+c.Service)
	}
	slices.Sort(out)
	return out
}

func heldWhy(rep report.Report) map[string]string {
	out := map[string]string{}
	for _, h := range rep.Held {
		out[h.Account+" "+h.Cluster+"/"+h.Service] = h.Why
	}
	return out
}

const (
	devAPI   = devAccount + " prod/api"
	prodAPI  = prodAccount + " prod/api"
	prodEdge = prodAccount + " prod/edge"
)

// A push rolls out wave by wave, across accounts: wave 0 at once, wave 1 only once wave 0's
// deployment completed and its tasks run the digest, then wave 2. A redelivered event and a
// cold start in the middle neither skip nor repeat a wave: each service is deployed once.
func TestWavesRollOutOneAfterAnotherAcrossAccounts(t *testing.T) {
	w, digest := newWaveWorld(t)
	push := awstest.PushEvent("w1", awstest.Account, "app", "latest", digest)
	dev, prod := w.targets[devAccount], w.targets[prodAccount]

	rep := w.mustHandle(push)
	if got := changed(rep); rep.Outcome != report.Deployed || !slices.Equal(got, []string{devAPI}) {
		t.Fatalf("push: %s (%s) changes %v; want wave 0 (%s) alone", rep.Outcome, rep.Reason, got, devAPI)
	}
	held := heldWhy(rep)
	if why := held[prodAPI]; !strings.HasPrefix(why, "wave 1 waits for wave 0, deployed now, to be verified; api:2 ("+digest+") is registered and held") {
		t.Errorf("%s held because %q", prodAPI, why)
	}
	if why := held[prodEdge]; !strings.HasPrefix(why, "wave 2 waits for wave 0") {
		t.Errorf("%s held because %q", prodEdge, why)
	}
	if got := image(prod.ServiceTaskDefinition("prod", "api"), "app"); strings.Contains(got, digest) {
		t.Fatalf("wave 1 moved with wave 0: %s", got)
	}
	if got := serviceTag(t, prod.Cfg, "prod", "api", "pinroll:held"); got != "api:2" {
		t.Errorf("%s pinroll:held = %q, want api:2 (registered up front)", prodAPI, got)
	}
	if got := serviceTag(t, dev.Cfg, "prod", "api", "pinroll:released"); got != "api:2" {
		t.Errorf("%s pinroll:released = %q, want api:2", devAPI, got)
	}

	// The push redelivered while wave 0 deploys: nothing moves, nothing is written.
	w.calls.Reset()
	if rep := w.mustHandle(push); len(rep.Changes) != 0 || len(rep.Held) != 2 || rep.IsFailure() {
		t.Errorf("redelivered push: %s (%s) changes %v held %v", rep.Outcome, rep.Reason, changed(rep), heldWhy(rep))
	} else if why := heldWhy(rep)[prodAPI]; !strings.Contains(why, "waits for wave 0 to be verified (0 of 1 verified; not yet: prod/api deploying)") {
		t.Errorf("redelivered push: %s held because %q", prodAPI, why)
	}
	if m := w.calls.Mutations(); len(m) != 0 {
		t.Errorf("redelivered push made mutating calls: %v", m)
	}

	// Wave 0 completes: its event verifies it and opens wave 1.
	first := deployments(t, w.take())
	reps := w.deliver(t, w.engine, first)
	if r := reps[devAPI]; r.Outcome != report.Verified || !slices.Equal(changed(r), []string{prodAPI}) {
		t.Fatalf("wave 0's deployment event: %s (%s) changes %v; want verified, wave 1 deployed", r.Outcome, r.Reason, changed(r))
	}
	if got := image(prod.ServiceTaskDefinition("prod", "api"), "app"); !strings.HasSuffix(got, "@"+digest) {
		t.Fatalf("wave 1 runs %s after wave 0 was verified", got)
	}
	if got := image(prod.ServiceTaskDefinition("prod", "edge"), "app"); strings.Contains(got, digest) {
		t.Fatalf("wave 2 moved with wave 1: %s", got)
	}

	// The same event again, while wave 1 deploys: nothing moves.
	w.calls.Reset()
	again := w.deliver(t, w.engine, first)
	if r := again[devAPI]; r.Outcome != report.Verified || len(r.Changes) != 0 {
		t.Errorf("redelivered wave-0 event: %s (%s) changes %v; want verified, nothing deployed", r.Outcome, r.Reason, changed(r))
	}
	if n := w.calls.Count("UpdateService"); n != 0 {
		t.Errorf("redelivered wave-0 event sent %d UpdateService calls", n)
	}

	// A cold start: a new process, nothing remembered, handles wave 1's completion.
	cold := atHome(rollout.FromAWSConfig(config.Config{TargetRoles: []string{roleOf(devAccount), roleOf(prodAccount)}}, w.cfg, slog.New(slog.DiscardHandler)))
	second := deployments(t, w.take())
	reps = w.deliver(t, cold, second)
	if r := reps[prodAPI]; r.Outcome != report.Verified || !slices.Equal(changed(r), []string{prodEdge}) {
		t.Fatalf("wave 1's deployment event after a cold start: %s (%s) changes %v; want verified, wave 2 deployed", r.Outcome, r.Reason, changed(r))
	}
	third := deployments(t, w.take())
	reps = w.deliver(t, cold, third)
	if r := reps[prodEdge]; r.Outcome != report.Verified || len(r.Changes) != 0 || len(r.Held) != 0 {
		t.Errorf("wave 2's deployment event: %s (%s) changes %v held %v; want verified, nothing left", r.Outcome, r.Reason, changed(r), heldWhy(r))
	}
	if got := serviceTag(t, prod.Cfg, "prod", "edge", "pinroll:held"); got != "" {
		t.Errorf("%s still holds %q", prodEdge, got)
	}

	// Every service was deployed exactly once: one deployment started per service.
	started := map[string]int{}
	for _, d := range slices.Concat(first, second, third) {
		if d.name == "SERVICE_DEPLOYMENT_IN_PROGRESS" {
			started[d.service]++
		}
	}
	if want := map[string]int{devAPI: 1, prodAPI: 1, prodEdge: 1}; started[devAPI] != 1 || started[prodAPI] != 1 || started[prodEdge] != 1 {
		t.Errorf("deployments started after the push: %v, want %v", started, want)
	}
	for _, f := range []string{"api", "edge"} {
		if n := len(prod.Revisions(f)); n != 2 {
			t.Errorf("prod %s has %d revisions, want 2", f, n)
		}
	}
}

// Wave 1's image cannot start (its pinned digest was deleted before the pull): the circuit
// breaker rolls it back, the event is a failure, and wave 2 is never deployed — not by a
// redelivery, not by reconciliation once the image is back, not by the rollback's own
// completion. The halted wave is listed in held, with the command that goes on anyway.
func TestAFailedWaveHaltsTheLaterWaves(t *testing.T) {
	w, digest := newWaveWorld(t)
	prod := w.targets[prodAccount]
	for _, s := range []string{"api", "edge"} { // the circuit breaker with rollback, as ECS's console sets it
		if _, err := prod.ECS.UpdateService(context.Background(), updateWithRollback("prod", s)); err != nil {
			t.Fatal(err)
		}
	}
	w.take()
	w.mustHandle(awstest.PushEvent("w1", awstest.Account, "app", "latest", digest))
	reps := w.deliver(t, w.engine, deployments(t, w.take()))
	if r := reps[devAPI]; !slices.Equal(changed(r), []string{prodAPI}) {
		t.Fatalf("wave 0's event: %s (%s) changes %v; want wave 1 deployed", r.Outcome, r.Reason, changed(r))
	}

	// The digest goes before wave 1's tasks pull it.
	if _, err := ecr.NewFromConfig(w.cfg).BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String("app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}},
	}); err != nil {
		t.Fatal(err)
	}
	failed := deployments(t, w.take())
	reps = w.deliver(t, w.engine, failed)
	r, ok := reps[prodAPI]
	if !ok || r.Outcome != report.RolledBack || !r.IsFailure() {
		t.Fatalf("wave 1's failed deployment: %s (%s); want rolled_back, a failure", r.Outcome, r.Reason)
	}
	if d := r.Deployment; d == nil || d.Account != prodAccount || d.Cluster != "prod" || d.Service != "api" || d.ID == "" || !strings.Contains(d.TaskDefinition, ":task-definition/") {
		t.Errorf("the rolled-back report names its deployment %+v; want prod's prod/api, its id and the revision it rolled out", d)
	}
	if got := image(prod.ServiceTaskDefinition("prod", "edge"), "app"); strings.Contains(got, digest) {
		t.Fatalf("wave 2 moved after wave 1 failed: %s", got)
	}

	// The image is pushed again (the same manifest, the same digest): the rollout stays
	// halted. The failure's redelivery and a reconciliation list wave 2 as halted, and
	// deploy nothing.
	if again := w.Push("app", "latest", "v2"); again != digest {
		t.Fatalf("re-push gave %s, want %s", again, digest)
	}
	w.calls.Reset()
	reps = w.deliver(t, w.engine, failed)
	if why := heldWhy(reps[prodAPI])[prodEdge]; !strings.Contains(why, "wave 2 waits: wave 1 halted: prod/api runs api:1, not api:2 it was deployed") ||
		!strings.Contains(why, "pinroll release --image "+w.Image("app", "latest")+"@"+digest) {
		t.Errorf("redelivered failure: %s held because %q", prodEdge, why)
	}
	rec, err := w.engine.Reconcile(context.Background(), recEvent())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Changes) != 0 || !strings.Contains(heldWhy(rec)[prodEdge], "wave 1 halted") {
		t.Errorf("reconcile: %s (%s) changes %v held %v; want nothing deployed, wave 2 halted", rec.Outcome, rec.Reason, changed(rec), heldWhy(rec))
	}
	if !slices.ContainsFunc(rec.Skipped, func(s report.Service) bool {
		return s.Account == prodAccount && s.Service == "api" && strings.Contains(s.Why, "not deployed again")
	}) {
		t.Errorf("reconcile did not say why the failed %s stays as it is: skipped %+v", prodAPI, rec.Skipped)
	}
	if n := w.calls.Count("UpdateService"); n != 0 {
		t.Errorf("%d UpdateService calls after the failure", n)
	}
	// The rollback's own completion moves nothing either.
	rest := w.deliver(t, w.engine, deployments(t, w.take()))
	for svc, r := range rest {
		if len(r.Changes) != 0 {
			t.Errorf("%s's event after the rollback deployed %v", svc, changed(r))
		}
	}
	if got := image(prod.ServiceTaskDefinition("prod", "edge"), "app"); strings.Contains(got, digest) {
		t.Fatalf("wave 2 moved after wave 1 failed: %s", got)
	}

	// Only an operator goes on: pinroll release names the wave it means, and deploys it.
	pinned := w.Image("app", "latest") + "@" + digest
	var refused *rollout.NotReleasableError
	if _, err := w.engine.Release(context.Background(), pinned, 1); !errors.As(err, &refused) || !strings.Contains(err.Error(), "the lowest wave of "+pinned+" that waits is 2, not 1") {
		t.Errorf("release of wave 1: %v; want a refusal naming wave 2", err)
	}
	if _, err := w.engine.Release(context.Background(), "app:latest", -1); !errors.As(err, &refused) {
		t.Errorf("release of an image that is not pinned: %v; want a refusal", err)
	}
	rel, err := w.engine.Release(context.Background(), pinned, 2)
	if err != nil || !slices.Equal(changed(rel), []string{prodEdge}) || !strings.HasPrefix(rel.Reason, "wave 2 released: ") {
		t.Fatalf("release of wave 2: %v, %s (%s) changes %v", err, rel.Outcome, rel.Reason, changed(rel))
	}
	if _, err := w.engine.Release(context.Background(), pinned, -1); !errors.As(err, &refused) || !strings.Contains(err.Error(), "waits for a wave") {
		t.Errorf("release with nothing left: %v; want a refusal", err)
	}
}

// updateWithRollback turns on the deployment circuit breaker with rollback.
func updateWithRollback(cluster, service string) *ecs.UpdateServiceInput {
	return &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(service), DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
		DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
	}}
}

func recEvent() trigger.Reconcile {
	return trigger.Reconcile{EventID: "rec-1", Time: time.Now().UTC()}
}

// Reconciliation is the safety net of a lost deployment event: it finds the services held
// for their wave and rolls their push out again, which opens the next wave once the one
// below it is verified — one wave a pass, never two.
func TestReconcileMovesAStagedRolloutOnWhenItsEventsWereLost(t *testing.T) {
	w, digest := newWaveWorld(t)
	w.mustHandle(awstest.PushEvent("w1", awstest.Account, "app", "latest", digest))
	for i, want := range [][]string{{prodAPI}, {prodEdge}, nil} {
		w.take() // completed, but the events are lost
		rep, err := w.engine.Reconcile(context.Background(), recEvent())
		if err != nil {
			t.Fatal(err)
		}
		if got := changed(rep); !slices.Equal(got, want) {
			t.Errorf("reconcile %d: %s (%s) changes %v, want %v", i+1, rep.Outcome, rep.Reason, got, want)
		}
	}
}

// Two processes handling wave 0's completion at the same moment release wave 1 once.
func TestConcurrentDeploymentEventsReleaseAWaveOnce(t *testing.T) {
	w, digest := newWaveWorld(t)
	w.mustHandle(awstest.PushEvent("w1", awstest.Account, "app", "latest", digest))
	evs := deployments(t, w.take())
	roles := config.Config{TargetRoles: []string{roleOf(devAccount), roleOf(prodAccount)}}
	var wg sync.WaitGroup
	for range 2 {
		engine := atHome(rollout.FromAWSConfig(roles, w.cfg, slog.New(slog.DiscardHandler)))
		wg.Go(func() {
			for _, d := range evs {
				if _, err := engine.HandleRaw(context.Background(), d.raw); err != nil {
					t.Errorf("%s %s: %v", d.service, d.name, err)
				}
			}
		})
	}
	wg.Wait()
	started := 0
	for _, d := range deployments(t, w.take()) {
		if d.service == prodAPI && d.name == "SERVICE_DEPLOYMENT_IN_PROGRESS" {
			started++
		}
	}
	if started != 1 {
		t.Errorf("wave 1 (%s) got %d deployments, want 1", prodAPI, started)
	}
}

// What needs no deployment events runs on moto too: a push moves its lowest wave, registers
// and holds the others, and its redelivery changes nothing. (moto's services start no tasks,
// so no wave is ever verified there, and nothing after wave 0 moves.)
func TestAStagedPushHoldsItsLaterWavesOnBothBackends(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Push("app", "1.0", "v1")
		h.Push("app", "latest", "v1")
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		h.Service("prod", "web", h.TaskDefinition("web", awstest.Container("app", h.Image("app", "latest"))), awstest.Tags("pinroll:wave", "1"))
		h.Service("prod", "odd", h.TaskDefinition("odd", awstest.Container("app", h.Image("app", "latest"))), awstest.Tags("pinroll:wave", "first"))
		push := awstest.PushEvent("s1", awstest.Account, "app", "latest", h.Push("app", "latest", "v2"))
		rep := h.mustHandle(push)
		if got := changed(rep); rep.Outcome != report.Deployed || !slices.Equal(got, []string{awstest.Account + " prod/api"}) {
			t.Fatalf("push: %s (%s) changes %v; want wave 0 alone", rep.Outcome, rep.Reason, got)
		}
		if why := heldWhy(rep)[awstest.Account+" prod/web"]; !strings.HasPrefix(why, "wave 1 waits for wave 0, deployed now, to be verified; web:2") {
			t.Errorf("prod/web held because %q", why)
		}
		if got := serviceTag(t, cfg, "prod", "web", "pinroll:held"); got != "web:2" {
			t.Errorf("prod/web pinroll:held = %q, want web:2", got)
		}
		if !slices.ContainsFunc(rep.Skipped, func(s report.Service) bool {
			return s.Service == "odd" && s.Why == "pinroll:wave=first is not a wave (a whole number, 0 or more)"
		}) {
			t.Errorf("prod/odd (pinroll:wave=first) not skipped with its reason: %+v", rep.Skipped)
		}
		// The emulator's deployments complete at once and its tasks run the digest, so the
		// redelivery finds wave 0 verified and opens wave 1; on moto nothing is ever verified.
		want := []string{awstest.Account + " prod/web"}
		if aws.ToString(cfg.BaseEndpoint) == moto.URL {
			want = nil
		}
		if rep := h.mustHandle(push); !slices.Equal(changed(rep), want) {
			t.Errorf("redelivery: %s (%s) changes %v, want %v", rep.Outcome, rep.Reason, changed(rep), want)
		}
		h.calls.Reset()
		if rep := h.mustHandle(push); len(rep.Changes) != 0 {
			t.Errorf("second redelivery: %s (%s) changes %v", rep.Outcome, rep.Reason, changed(rep))
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("second redelivery made mutating calls: %v", m)
		}
	})
}

// A wave below deployed BLUE_GREEN with a bake time gates the next until ECS says the bake is
// over (SERVICE_DEPLOYMENT_COMPLETED): while it bakes, with blue beside green, neither a
// redelivered push nor reconciliation deploys the next wave.
func TestAWaveWaitsForTheBakeOfTheWaveBelow(t *testing.T) {
	var mu sync.Mutex
	var events [][]byte
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{BakeMinute: time.Hour, OnEvent: func(_ context.Context, ev []byte) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := awstest.Config(t, srv.URL())
	h := newHarness(t, cfg, config.Config{})
	h.Repository("app")
	h.Push("app", "latest", "v1")
	h.Cluster("prod")
	h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))), func(in *ecs.CreateServiceInput) {
		in.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(5)}
	})
	h.Service("prod", "web", h.TaskDefinition("web", awstest.Container("app", h.Image("app", "latest"))), awstest.Tags("pinroll:wave", "1"))
	take := func() []deployment {
		srv.Emulator().Flush()
		mu.Lock()
		defer mu.Unlock()
		evs := deployments(t, events)
		events = nil
		return evs
	}
	take()
	push := awstest.PushEvent("bg", awstest.Account, "app", "latest", h.Push("app", "latest", "v2"))
	if rep := h.mustHandle(push); !slices.Equal(changed(rep), []string{awstest.Account + " prod/api"}) {
		t.Fatalf("push: %s (%s) changes %v; want wave 0 alone", rep.Outcome, rep.Reason, changed(rep))
	}
	web := func() string { return image(h.ServiceTaskDefinition("prod", "web"), "app") }
	before := web()
	var moved []string
	checked := 0
	for step := 0; step < 5 && moved == nil; step++ { // green's tasks, the traffic shift, the bake
		for _, d := range take() {
			rep := h.mustHandle(d.raw)
			if d.name == "SERVICE_DEPLOYMENT_COMPLETED" {
				moved = changed(rep)
			} else if len(rep.Changes) != 0 {
				t.Fatalf("%s %s before the bake ended deployed %v", d.service, d.name, changed(rep))
			}
		}
		if moved != nil {
			break
		}
		if rep := h.mustHandle(push); len(rep.Changes) != 0 {
			t.Fatalf("redelivered push during the bake deployed %v", changed(rep))
		}
		if rep, err := h.engine.Reconcile(context.Background(), recEvent()); err != nil || len(rep.Changes) != 0 {
			t.Fatalf("reconcile during the bake: %v, deployed %v", err, changed(rep))
		}
		if web() != before {
			t.Fatalf("wave 1 moved during wave 0's bake: %s", web())
		}
		checked++
		srv.Emulator().Advance()
	}
	if checked == 0 {
		t.Error("the bake ended before anything was checked during it")
	}
	if !slices.Equal(moved, []string{awstest.Account + " prod/web"}) {
		t.Errorf("after the bake, wave 0's completion deployed %v, want prod/web", moved)
	}
}

// Tags that name revisions that do not exist (edited by hand, or the revision deleted) are
// nobody's rollout: a push and reconciliation go on without them instead of failing for good.
func TestHeldAndReleasedTagsNamingNoRevisionAreIgnored(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Push("app", "1.0", "v1")
		h.Push("app", "latest", "v1")
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		h.Service("prod", "web", h.TaskDefinition("web", awstest.Container("app", h.Image("app", "latest"))),
			awstest.Tags("pinroll:wave", "1", "pinroll:held", "nope:9", "pinroll:released", "nope:3"))
		rep, err := h.handle(awstest.PushEvent("g1", awstest.Account, "app", "latest", h.Push("app", "latest", "v2")))
		if err != nil || !slices.Equal(changed(rep), []string{awstest.Account + " prod/api"}) {
			t.Fatalf("push: %v, %s (%s) changes %v; want wave 0 deployed", err, rep.Outcome, rep.Reason, changed(rep))
		}
		if why := heldWhy(rep)[awstest.Account+" prod/web"]; !strings.HasPrefix(why, "wave 1 waits for wave 0") {
			t.Errorf("prod/web held because %q", why)
		}
		if got := serviceTag(t, cfg, "prod", "web", "pinroll:held"); got != "web:2" {
			t.Errorf("prod/web pinroll:held = %q, want web:2 (the push's own)", got)
		}
		h.Service("prod", "odd", h.TaskDefinition("odd", awstest.Container("app", h.Image("app", "latest"))), awstest.Tags("pinroll:held", "gone:1"))
		if _, err := h.engine.Reconcile(context.Background(), recEvent()); err != nil {
			t.Errorf("reconcile with a held tag naming no revision: %v", err)
		}
	})
}
