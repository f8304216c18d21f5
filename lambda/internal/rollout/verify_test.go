package rollout_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

const (
	oldDigest = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9"
	newDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
)

// Verification needs tasks that report an imageDigest, which only pinroll's emulator has
// (moto starts no tasks), so these scenarios run on the emulator alone.
type incidentWorld struct {
	srv    *emulator.Server
	cfg    aws.Config
	engine *rollout.Engine
	mu     sync.Mutex
	events [][]byte // ECS Deployment State Change events, in order
}

func newIncidentWorld(t *testing.T, opts emulator.Options) *incidentWorld {
	w := &incidentWorld{}
	opts.OnDeploymentEvent = func(_ context.Context, ev []byte) {
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}
	srv, err := emulator.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	f, err := fleet.Load("../../../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	w.srv, w.cfg = srv, awstest.Config(t, srv.URL())
	w.engine = rollout.New(config.Config{}, ecs.NewFromConfig(w.cfg), ecr.NewFromConfig(w.cfg), slog.New(slog.DiscardHandler))
	return w
}

// takeEvents returns the deployment events delivered so far and forgets them.
func (w *incidentWorld) takeEvents() [][]byte {
	w.srv.Emulator().Settle()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := w.events
	w.events = nil
	return evs
}

func (w *incidentWorld) verifyService(t *testing.T, cluster, name string) []report.Verification {
	t.Helper()
	ctx := context.Background()
	d := discover.New(ecs.NewFromConfig(w.cfg))
	f, err := d.Discover(ctx, []string{cluster})
	if err != nil {
		t.Fatal(err)
	}
	v := &verify.Verifier{ECS: ecs.NewFromConfig(w.cfg), ECR: ecr.NewFromConfig(w.cfg)}
	for _, svc := range f.Services {
		if svc.Name == name {
			vs, err := v.Service(ctx, svc, f.TaskDefinitions[svc.TaskDefinition].Definition, &verify.TagDigests{})
			if err != nil {
				t.Fatal(err)
			}
			return vs
		}
	}
	t.Fatalf("no service %s/%s", cluster, name)
	return nil
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestIncidentIsSeenAndFixedAndVerified(t *testing.T) {
	w := newIncidentWorld(t, emulator.Options{})

	// The incident: ECR's latest is the fix, the tasks still run the cached old image.
	before := w.verifyService(t, "prod", "api")
	if outcome, _ := verify.Outcome(before); outcome != report.Mismatch || before[0].Running != oldDigest || before[0].Want != newDigest {
		t.Fatalf("before the fix: %s %+v; want a mismatch, running %s instead of %s", outcome, before, oldDigest, newDigest)
	}

	rep, err := w.engine.HandleRaw(context.Background(), readEvent(t, "push-tagged.json"))
	if err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("push: %v %+v", err, rep)
	}
	verified := 0
	for _, ev := range w.takeEvents() {
		rep, err := w.engine.HandleRaw(context.Background(), ev)
		switch {
		case err != nil:
			t.Fatalf("deployment event: %v", err)
		case rep.Outcome == report.Skipped && strings.Contains(rep.Reason, "IN_PROGRESS"):
			continue
		case rep.Outcome != report.Verified:
			t.Errorf("deployment event: %s (%s)", rep.Outcome, rep.Reason)
		}
		verified++
		for _, v := range rep.Verifications {
			if v.Running != newDigest {
				t.Errorf("%s/%s task %s runs %s", v.Service, v.Container, v.Task, v.Running)
			}
		}
	}
	if verified != 2 {
		t.Errorf("%d deployments verified, want 2 (prod/api, prod/worker)", verified)
	}
	if outcome, reason := verify.Outcome(w.verifyService(t, "prod", "api")); outcome != report.Verified {
		t.Errorf("after the fix: %s (%s)", outcome, reason)
	}
}

func TestMissingPinnedDigestIsRolledBackAndReportedAsAFailure(t *testing.T) {
	w := newIncidentWorld(t, emulator.Options{DeployDelay: time.Hour}) // deployments wait for Settle
	rep, err := w.engine.HandleRaw(context.Background(), readEvent(t, "push-tagged.json"))
	if err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("push: %v %+v", err, rep)
	}
	// A lifecycle rule deletes the image before the tasks pull it.
	client := ecr.NewFromConfig(w.cfg)
	if _, err := client.BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String(backendRepo), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(newDigest)}},
	}); err != nil {
		t.Fatal(err)
	}
	var api []report.Report
	for _, ev := range w.takeEvents() {
		rep, err := w.engine.HandleRaw(context.Background(), ev)
		if err != nil {
			t.Fatalf("deployment event: %v", err)
		}
		if strings.Contains(string(ev), "service/prod/api") {
			api = append(api, rep)
		}
		if rep.Outcome == report.Verified || rep.Outcome == report.Deployed {
			t.Errorf("a deployment of a missing digest reported as success: %+v", rep)
		}
	}
	rolledBack := slices.ContainsFunc(api, func(r report.Report) bool {
		return r.Outcome == report.RolledBack && r.IsFailure() && strings.Contains(r.Reason, "rolled it back") && r.Image != ""
	})
	if !rolledBack {
		t.Fatalf("prod/api (circuit breaker with rollback): %+v; want one rolled_back report, a failure", api)
	}
}

// The calls one push makes in the incident's world, operation by operation: the lower bound
// plus one DescribeServices per cluster and ten services updated (the re-read that protects
// concurrent runs).
func TestIncidentPushCallCount(t *testing.T) {
	w := newIncidentWorld(t, emulator.Options{})
	w.srv.Emulator().ResetCalls()
	if rep, err := w.engine.HandleRaw(context.Background(), readEvent(t, "push-tagged.json")); err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("push: %v %+v", err, rep)
	}
	want := map[string]int{
		"DescribeImages":         1,     // currency check
		"ListClusters":           1,     // prod, dev
		"ListServices":           2,     // one page per cluster
		"DescribeServices":       2 + 1, // one batch per cluster; then prod's services re-read before they are updated
		"DescribeTaskDefinition": 4,     // backend, backend-worker, backend-dev, storefront, each by family name: the latest, so no earlier attempt to look for
		"RegisterTaskDefinition": 2,     // backend, backend-worker
		"UpdateService":          2,     // prod/api, prod/worker
	}
	got := w.srv.Emulator().Calls()
	total := 0
	for op, n := range got {
		total += n
		if want[op] != n {
			t.Errorf("%s: %d calls, want %d", op, n, want[op])
		}
	}
	t.Logf("one push in the incident world: %d AWS calls %v", total, got)
}

// A completed deployment whose tasks cannot be seen (here: the service was scaled to zero
// before the event was handled) is not verified: an all-clear from zero checks is the
// incident's own failure.
func TestDeploymentWithNoTaskToCheckIsUnverified(t *testing.T) {
	w := newIncidentWorld(t, emulator.Options{})
	if rep, err := w.engine.HandleRaw(context.Background(), readEvent(t, "push-tagged.json")); err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("push: %v %+v", err, rep)
	}
	var completed []byte
	for _, ev := range w.takeEvents() {
		if strings.Contains(string(ev), "service/prod/api") && strings.Contains(string(ev), "SERVICE_DEPLOYMENT_COMPLETED") {
			completed = ev
		}
	}
	if completed == nil {
		t.Fatal("no SERVICE_DEPLOYMENT_COMPLETED event for prod/api")
	}
	if _, err := ecs.NewFromConfig(w.cfg).UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Cluster: aws.String("prod"), Service: aws.String("api"), DesiredCount: aws.Int32(0),
	}); err != nil {
		t.Fatal(err)
	}
	w.takeEvents()
	rep, err := w.engine.HandleRaw(context.Background(), completed)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != report.Unverified || !rep.IsFailure() || !strings.Contains(rep.Reason, "prod/api") {
		t.Errorf("deployment with no task to check: %s (%s); want unverified, a failure, naming prod/api", rep.Outcome, rep.Reason)
	}
}
