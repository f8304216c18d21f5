package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
)

const (
	backendRepo = "content-marketing-swarm-backend"
	devRepo     = "content-marketing-swarm-dev-backend"
)

// harness is one world plus an engine whose calls are recorded.
type harness struct {
	*awstest.World
	calls  *awstest.Recorder
	engine *rollout.Engine
}

func newHarness(t *testing.T, cfg aws.Config, pc config.Config) *harness {
	rec := &awstest.Recorder{}
	recorded := rec.Wrap(cfg)
	engine := atHome(rollout.New(pc, ecs.NewFromConfig(recorded), ecr.NewFromConfig(recorded), slog.New(slog.DiscardHandler)))
	return &harness{World: awstest.NewWorld(t, cfg), calls: rec, engine: engine}
}

func (h *harness) handle(raw []byte) (report.Report, error) {
	h.T.Helper()
	return h.engine.HandleRaw(h.ctx(), raw)
}

// ctx is the invocation context; as in Lambda, it knows the account pinroll runs in.
func (h *harness) ctx() context.Context {
	return context.Background()
}

func (h *harness) mustHandle(raw []byte) report.Report {
	h.T.Helper()
	rep, err := h.handle(raw)
	if err != nil {
		h.T.Fatalf("handle event: %v", err)
	}
	return rep
}

// incident builds the incident's world: two repositories whose names differ by "-dev", a
// service on each, both tracking :latest.
func incident(h *harness) (backend, dev string) {
	h.Repository(backendRepo)
	h.Repository(devRepo)
	h.Push(backendRepo, "latest", "backend v1")
	h.Push(devRepo, "latest", "dev v1")
	h.Cluster("prod")
	h.Cluster("dev")
	h.Service("prod", "api", h.TaskDefinition("backend", awstest.Container("app", h.Image(backendRepo, "latest"))))
	h.Service("dev", "api", h.TaskDefinition("backend-dev", awstest.Container("app", h.Image(devRepo, "latest"))))
	return h.Push(backendRepo, "latest", "backend v2"), h.Push(devRepo, "latest", "dev v2")
}

func image(r awstest.Running, container string) string {
	for _, c := range r.Definition.ContainerDefinitions {
		if aws.ToString(c.Name) == container {
			return aws.ToString(c.Image)
		}
	}
	return ""
}

func TestIncidentPushUpdatesOnlyItsOwnRepository(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		backendDigest, devDigest := incident(h)

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, backendRepo, "latest", backendDigest))
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 {
			t.Fatalf("push to %s: outcome %s, %d changes (%s)", backendRepo, rep.Outcome, len(rep.Changes), rep.Reason)
		}
		want := h.Image(backendRepo, "latest") + "@" + backendDigest
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); got != want {
			t.Errorf("prod/api runs %s, want %s", got, want)
		}
		if got := image(h.ServiceTaskDefinition("dev", "api"), "app"); got != h.Image(devRepo, "latest") {
			t.Errorf("dev/api was touched by a push to the look-alike repository: runs %s", got)
		}
		if !slices.ContainsFunc(rep.NearMisses, func(n report.NearMiss) bool { return n.Cluster == "dev" && n.Service == "api" }) {
			t.Errorf("dev/api is not listed as a near miss: %+v", rep.NearMisses)
		}

		// And the reverse: a push to the dev repository never touches prod.
		rep = h.mustHandle(awstest.PushEvent("e2", awstest.Account, devRepo, "latest", devDigest))
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Cluster != "dev" {
			t.Fatalf("push to %s: %+v", devRepo, rep)
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); got != want {
			t.Errorf("prod/api changed by a push to %s: runs %s", devRepo, got)
		}
	})
}

func TestSameRepositoryInAnotherAccountIsNotTouched(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		const other = "210987654321"
		h := newHarness(t, cfg, config.Config{RegistryAccounts: []string{awstest.Account, other}})
		h.Repository(backendRepo)
		h.Cluster("prod")
		foreign := other + ".dkr.ecr.us-east-1.amazonaws.com/" + backendRepo + ":latest"
		h.Service("prod", "foreign", h.TaskDefinition("foreign", awstest.Container("app", foreign)))
		h.Service("prod", "home", h.TaskDefinition("home", awstest.Container("app", h.Image(backendRepo, "latest"))))
		digest := h.Push(backendRepo, "latest", "v2")

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, backendRepo, "latest", digest))
		if got := image(h.ServiceTaskDefinition("prod", "foreign"), "app"); got != foreign {
			t.Errorf("service on another account's registry changed to %s", got)
		}
		if len(rep.Changes) != 1 || rep.Changes[0].Service != "home" {
			t.Errorf("changes = %+v, want only prod/home", rep.Changes)
		}

		// An event from a registry account that is not allowed changes nothing and asks nothing.
		h2 := newHarness(t, cfg, config.Config{})
		rep, err := h2.handle(awstest.PushEvent("e2", other, backendRepo, "latest", digest))
		if err != nil || rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, other) {
			t.Errorf("event from account %s: %+v, %v; want skipped naming the account", other, rep, err)
		}
		if calls := h2.calls.Calls(); len(calls) != 0 {
			t.Errorf("a disallowed registry caused AWS calls: %v", calls)
		}
	})
}

func TestOnlyTheAppContainerChangesAndEveryOtherByteStays(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		in := &ecs.RegisterTaskDefinitionInput{
			Family:      aws.String("web"),
			NetworkMode: types.NetworkModeBridge,
			ContainerDefinitions: []types.ContainerDefinition{
				{Name: aws.String("app"), Image: aws.String(h.Image("app", "latest")), Memory: aws.Int32(512), Essential: aws.Bool(true),
					Environment:  []types.KeyValuePair{{Name: aws.String("EMPTY"), Value: aws.String("")}, {Name: aws.String("MODE"), Value: aws.String("prod")}},
					PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8000), Protocol: types.TransportProtocolTcp}}},
				{Name: aws.String("envoy"), Image: aws.String("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29"), Memory: aws.Int32(128), Essential: aws.Bool(true)},
				{Name: aws.String("app-dev-shadow"), Image: aws.String(h.Image("app-dev", "latest")), Memory: aws.Int32(128), Essential: aws.Bool(false)},
			},
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
		}
		before := h.Register(in)
		h.Service("prod", "web", before)
		digest := h.Push("app", "latest", "v2")
		orig := h.ServiceTaskDefinition("prod", "web")

		h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		after := h.ServiceTaskDefinition("prod", "web")
		if after.ARN == before {
			t.Fatal("the service still runs the original revision")
		}
		wantIn, err := taskdef.Clone(orig.Definition, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantIn, err = taskdef.WithImages(wantIn, map[string]string{"app": h.Image("app", "latest") + "@" + digest})
		if err != nil {
			t.Fatal(err)
		}
		gotIn, err := taskdef.Clone(after.Definition, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(jsonOf(t, wantIn), jsonOf(t, gotIn)); diff != "" {
			t.Errorf("the new revision differs from the original in more than the app image (-want +got):\n%s", diff)
		}
		wantTags := map[string]string{"team": "web", "pinroll:tag": "latest", "pinroll:digest": digest, "pinroll:event": "e1", "pinroll:previous": before}
		if diff := cmp.Diff(wantTags, after.Tags); diff != "" {
			t.Errorf("tags of the new revision (-want +got):\n%s", diff)
		}
	})
}

func jsonOf(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSharedTaskDefinitionIsRegisteredOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		td := h.TaskDefinition("shared", awstest.Container("app", h.Image("app", "latest")))
		for _, name := range []string{"a", "b", "c"} {
			h.Service("prod", name, td)
		}
		digest := h.Push("app", "latest", "v2")

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		if n := h.calls.Count("RegisterTaskDefinition"); n != 1 {
			t.Errorf("RegisterTaskDefinition called %d times, want 1", n)
		}
		if n := h.calls.Count("UpdateService"); n != 3 {
			t.Errorf("UpdateService called %d times, want 3", n)
		}
		if len(rep.Changes) != 3 {
			t.Errorf("report lists %d changes, want 3", len(rep.Changes))
		}
		arns := map[string]bool{}
		for _, name := range []string{"a", "b", "c"} {
			arns[h.ServiceTaskDefinition("prod", name).ARN] = true
		}
		if len(arns) != 1 || arns[td] {
			t.Errorf("services run %v, want all three on one new revision", arns)
		}
		if revs := h.Revisions("shared"); len(revs) != 2 {
			t.Errorf("family has %d revisions, want 2: %v", len(revs), revs)
		}
	})
}

func TestRedeliveryRegistersNothingTwice(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		digest := h.Push("app", "latest", "v2")
		event := awstest.PushEvent("e1", awstest.Account, "app", "latest", digest)

		var outcomes []report.Outcome
		for range 5 {
			outcomes = append(outcomes, h.mustHandle(event).Outcome)
		}
		want := []report.Outcome{report.Deployed, report.Unchanged, report.Unchanged, report.Unchanged, report.Unchanged}
		if diff := cmp.Diff(want, outcomes); diff != "" {
			t.Errorf("outcomes of five deliveries (-want +got):\n%s", diff)
		}
		if revs := h.Revisions("api"); len(revs) != 2 {
			t.Errorf("five deliveries left %d revisions, want 2", len(revs))
		}
		if n := h.calls.Count("RegisterTaskDefinition"); n != 1 {
			t.Errorf("RegisterTaskDefinition called %d times, want 1", n)
		}
	})
}

func TestOlderEventAfterNewerChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		// v1 keeps a version tag, so the image stays in the repository when latest moves on
		// (moto, unlike ECR, drops an image whose last tag moves).
		h.Push("app", "1.0.0", "v1")
		d1 := h.Push("app", "latest", "v1")
		d2 := h.Push("app", "latest", "v2")

		if rep := h.mustHandle(awstest.PushEvent("new", awstest.Account, "app", "latest", d2)); rep.Outcome != report.Deployed {
			t.Fatalf("newer event: %s (%s)", rep.Outcome, rep.Reason)
		}
		h.calls.Reset()
		rep := h.mustHandle(awstest.PushEvent("old", awstest.Account, "app", "latest", d1))
		if rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "stale") {
			t.Errorf("late older event: %s (%s), want skipped as stale", rep.Outcome, rep.Reason)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("late older event made mutating calls: %v", m)
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); !strings.HasSuffix(got, d2) {
			t.Errorf("prod/api runs %s, want the newer digest %s", got, d2)
		}
	})
}

func TestIrrelevantEventsChangeNothing(t *testing.T) {
	files := []string{"untagged-empty-tag.json", "untagged-no-tag.json", "untagged-multiarch-amd64.json", "signature-cosign.json", "delete.json", "failure.json"}
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		incident(h)
		for _, name := range files {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "events", name))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := h.handle(raw)
			if err != nil || rep.Outcome != report.Skipped || rep.Reason == "" {
				t.Errorf("%s: outcome %q (%s), error %v; want skipped with a reason", name, rep.Outcome, rep.Reason, err)
			}
		}
		if calls := h.calls.Calls(); len(calls) != 0 {
			t.Errorf("irrelevant events caused AWS calls: %v", calls)
		}
	})
}

func TestCodeDeployServiceIsSkippedWithAReason(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		td := h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest")))
		h.Service("prod", "blue-green", td, awstest.Controller(types.DeploymentControllerTypeCodeDeploy))
		h.Service("prod", "opted-out", td, awstest.Tags("pinroll:enabled", "false"))
		h.Service("prod", "api", td)
		digest := h.Push("app", "latest", "v2")

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		want := []report.Service{
			{Account: awstest.Account, Cluster: "prod", Service: "blue-green", Why: "deployment controller is CODE_DEPLOY; pinroll deploys only services that ECS itself deploys"},
			{Account: awstest.Account, Cluster: "prod", Service: "opted-out", Why: "pinroll:enabled=false"},
		}
		if diff := cmp.Diff(want, rep.Skipped); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		for _, name := range []string{"blue-green", "opted-out"} {
			if got := h.ServiceTaskDefinition("prod", name).ARN; got != td {
				t.Errorf("%s was updated to %s", name, got)
			}
		}
		if got := h.ServiceTaskDefinition("prod", "api").ARN; got == td {
			t.Error("prod/api was not updated")
		}
	})
}

func TestOptInRequired(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{RequireOptIn: true})
		h.Repository("app")
		h.Cluster("prod")
		td := h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest")))
		h.Service("prod", "untagged", td)
		h.Service("prod", "opted-in", td, awstest.Tags("pinroll:enabled", "true"))
		digest := h.Push("app", "latest", "v2")

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		if len(rep.Changes) != 1 || rep.Changes[0].Service != "opted-in" {
			t.Errorf("changes = %+v, want only prod/opted-in", rep.Changes)
		}
		if h.ServiceTaskDefinition("prod", "untagged").ARN != td {
			t.Error("an untagged service was updated although opt-in is required")
		}
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{DryRun: true})
		backendDigest, _ := incident(h)
		h.calls.Reset()
		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, backendRepo, "latest", backendDigest))
		if rep.Outcome != report.Planned || len(rep.Changes) != 1 {
			t.Errorf("dry run: %s with %d changes, want planned with 1", rep.Outcome, len(rep.Changes))
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("dry run made mutating calls: %v", m)
		}
		if revs := h.Revisions("backend"); len(revs) != 1 {
			t.Errorf("dry run registered revisions: %v", revs)
		}
	})
}

func TestMissingDigestIsAnError(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		incident(h)
		missing := "sha256:" + strings.Repeat("ab", 32)
		_, err := h.handle(awstest.PushEvent("e1", awstest.Account, backendRepo, "latest", missing))
		var ce *rollout.CurrencyError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("push of a digest ECR does not hold: error %v, want a CurrencyError naming the digest", err)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("mutating calls: %v", m)
		}
	})
}

// A late event whose image is gone since — the tag moved on and the old image was expired
// (moto drops an image whose last tag moves; on the emulator it is deleted) — is stale: a
// skip, not an error, since nothing can deploy it and an error would page someone for nothing.
func TestStaleEventWhoseImageIsGoneIsSkipped(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		d1 := h.Push("app", "latest", "v1")
		var ev map[string]any
		if err := json.Unmarshal(awstest.PushEvent("old", awstest.Account, "app", "latest", d1), &ev); err != nil {
			t.Fatal(err)
		}
		ev["time"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		old, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // the newer image is pushed in a later second than the event
		h.Push("app", "latest", "v2")
		if _, err := ecr.NewFromConfig(cfg).BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
			RepositoryName: aws.String("app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(d1)}},
		}); err != nil {
			t.Fatal(err)
		}
		h.calls.Reset()
		rep, err := h.handle(old)
		if err != nil || rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "stale") || !strings.Contains(rep.Reason, "no longer in app") {
			t.Fatalf("late event of an expired image: %v, %s (%s); want skipped as stale", err, rep.Outcome, rep.Reason)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("mutating calls: %v", m)
		}
	})
}
