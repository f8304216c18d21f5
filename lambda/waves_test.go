package main

import (
	"context"
	"encoding/json"
	"maps"
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
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// wavesUnderRIE is the built function under the Runtime Interface Emulator, pointed at
// pinroll's emulator, where prod/api (wave 0), prod/web (wave 1) and prod/edge (wave 2) track
// app:latest. Deployments take an hour unless Settle completes them; the emulator's deployment
// events are kept for the test to deliver, as EventBridge would.
type wavesUnderRIE struct {
	t                *testing.T
	srv              *emulator.Server
	world            *awstest.World
	rie, bootstrap   string
	env              []string
	fn               *awstest.Function
	mu               sync.Mutex
	events           [][]byte
	started          map[string]int // deployments started since the push, by service
	digest, topicARN string
}

func newWavesUnderRIE(t *testing.T, rie, bootstrap string) *wavesUnderRIE {
	w := &wavesUnderRIE{t: t, rie: rie, bootstrap: bootstrap}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{DeployDelay: time.Hour, OnEvent: func(_ context.Context, ev []byte) {
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w.srv, w.world = srv, awstest.NewWorld(t, awstest.Config(t, srv.URL()))
	w.topicARN = srv.Emulator().CreateTopic(awstest.Account, awstest.Region, "pinroll")
	w.world.Repository("app")
	w.world.Push("app", "latest", "v1")
	w.world.Cluster("prod")
	for wave, name := range []string{"api", "web", "edge"} {
		td := w.world.TaskDefinition(name, awstest.Container("app", w.world.Image("app", "latest")))
		w.world.Service("prod", name, td, awstest.Tags("pinroll:wave", string(rune('0'+wave))), func(in *ecs.CreateServiceInput) {
			in.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
		})
	}
	w.take()
	w.started = map[string]int{}
	w.digest = w.world.Push("app", "latest", "v2")
	w.env = []string{"AWS_ENDPOINT_URL=" + srv.URL(), "AWS_REGION=" + awstest.Region,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_SESSION_TOKEN=",
		"PINROLL_REGISTRY_ACCOUNTS=" + awstest.Account, "PINROLL_NOTIFY_TOPIC_ARN=" + w.topicARN}
	w.coldStart()
	return w
}

// coldStart runs the function in a new process: nothing it learnt before is remembered.
func (w *wavesUnderRIE) coldStart() {
	w.fn = awstest.StartFunction(w.t, w.rie, w.bootstrap, w.env...)
}

// take completes the deployments under way and returns the deployment events delivered since.
func (w *wavesUnderRIE) take() [][]byte {
	w.srv.Emulator().Settle()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := w.events
	w.events = nil
	return evs
}

// deliver invokes the function with each event and returns, by service, what it answered to
// the service's completed or failed deployment (its failure, when it had both).
func (w *wavesUnderRIE) deliver(evs [][]byte) map[string]map[string]any {
	out, failed := map[string]map[string]any{}, map[string]bool{}
	for _, ev := range evs {
		var env struct {
			Resources []string `json:"resources"`
			Detail    struct {
				EventName string `json:"eventName"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(ev, &env); err != nil || len(env.Resources) != 1 {
			continue
		}
		got := w.fn.Invoke(w.t, ev)
		if got["errorType"] != nil {
			w.t.Fatalf("%s: %v", env.Detail.EventName, got)
		}
		svc := env.Resources[0][strings.LastIndex(env.Resources[0], "/")+1:]
		if env.Detail.EventName == "SERVICE_DEPLOYMENT_IN_PROGRESS" {
			w.started[svc]++
		}
		if env.Detail.EventName != "SERVICE_DEPLOYMENT_IN_PROGRESS" && !failed[svc] {
			out[svc] = got
			failed[svc] = env.Detail.EventName == "SERVICE_DEPLOYMENT_FAILED"
		}
	}
	return out
}

func (w *wavesUnderRIE) runs(service string) string {
	return aws.ToString(w.world.ServiceTaskDefinition("prod", service).Definition.ContainerDefinitions[0].Image)
}

func (w *wavesUnderRIE) moved(service string) bool {
	return strings.HasSuffix(w.runs(service), "@"+w.digest)
}

func changedServices(rep map[string]any) []string {
	var out []string
	changes, _ := rep["changes"].([]any)
	for _, c := range changes {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m["service"].(string))
		}
	}
	slices.Sort(out)
	return out
}

// The function itself, under the Runtime Interface Emulator, with the emulator's deployment
// events delivered to it: a three-wave push moves wave 0, then wave 1 once wave 0 is verified,
// then wave 2; a redelivered event and a cold start in the middle neither skip nor repeat a
// wave. The same push with wave 1's pinned digest deleted before its tasks pull it stops at
// wave 1, rolled back, with wave 2 untouched, a failure report and a notification.
func TestFunctionRollsOutWavesUnderRuntimeInterfaceEmulator(t *testing.T) {
	bootstrap, rie := awstest.BuildLambda(t, "..", t.TempDir())
	for _, tc := range []struct {
		name      string
		failWave1 bool
	}{
		{"three waves, one after another", false},
		{"wave 1 cannot pull its image", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWavesUnderRIE(t, rie, bootstrap)
			push := awstest.PushEvent("waves-1", awstest.Account, "app", "latest", w.digest)
			got := w.fn.Invoke(t, push)
			if got["outcome"] != "deployed" || !slices.Equal(changedServices(got), []string{"api"}) {
				t.Fatalf("push: %v; want wave 0 (prod/api) deployed alone", got)
			}
			if w.moved("web") || w.moved("edge") {
				t.Fatal("a later wave moved with wave 0")
			}
			if again := w.fn.Invoke(t, push); len(changedServices(again)) != 0 {
				t.Fatalf("redelivered push deployed %v", changedServices(again))
			}

			wave0 := w.take()
			reps := w.deliver(wave0)
			if r := reps["api"]; r["outcome"] != "verified" || !slices.Equal(changedServices(r), []string{"web"}) {
				t.Fatalf("wave 0's deployment: %v; want verified, wave 1 deployed", r)
			}
			// The same events again, from a new process: wave 1 deploys, nothing moves.
			w.coldStart()
			if again := w.deliver(wave0)["api"]; again["outcome"] != "verified" || len(changedServices(again)) != 0 {
				t.Fatalf("wave 0's deployment redelivered after a cold start: %v; want verified, nothing deployed", again)
			}
			if w.moved("edge") {
				t.Fatal("wave 2 moved before wave 1 was verified")
			}
			w.started = map[string]int{} // from here on, every deployment started is counted once

			if tc.failWave1 {
				if _, err := w.world.ECR.BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
					RepositoryName: aws.String("app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(w.digest)}},
				}); err != nil {
					t.Fatal(err)
				}
				before := len(w.srv.Emulator().Published())
				r := w.deliver(w.take())["web"]
				if r["outcome"] != "rolled_back" || !strings.Contains(r["reason"].(string), "ECS rolled it back") {
					t.Fatalf("wave 1's failed deployment: %v; want rolled_back", r)
				}
				if w.moved("web") || w.moved("edge") {
					t.Fatalf("after wave 1 failed: web runs %s, edge runs %s; want both on what they ran", w.runs("web"), w.runs("edge"))
				}
				var subjects []string
				for _, p := range w.srv.Emulator().Published()[before:] {
					subjects = append(subjects, p.Subject)
				}
				if !slices.ContainsFunc(subjects, func(s string) bool { return strings.Contains(strings.ToLower(s), "rolled") }) {
					t.Errorf("no notification of the failure: published %q", subjects)
				}
				// The rollback's own completion, and whatever else comes, moves nothing.
				for svc, r := range w.deliver(w.take()) {
					if len(changedServices(r)) != 0 {
						t.Errorf("%s's event after the failure deployed %v", svc, changedServices(r))
					}
				}
				if w.moved("edge") {
					t.Fatal("wave 2 moved after wave 1 failed")
				}
				return
			}

			r := w.deliver(w.take())["web"]
			if r["outcome"] != "verified" || !slices.Equal(changedServices(r), []string{"edge"}) {
				t.Fatalf("wave 1's deployment: %v; want verified, wave 2 deployed", r)
			}
			r = w.deliver(w.take())["edge"]
			if r["outcome"] != "verified" || len(changedServices(r)) != 0 {
				t.Fatalf("wave 2's deployment: %v; want verified, nothing left", r)
			}
			if want := map[string]int{"web": 1, "edge": 1}; !maps.Equal(w.started, want) {
				t.Errorf("deployments started: %v, want %v (each wave once)", w.started, want)
			}
			for _, s := range []string{"api", "web", "edge"} {
				if !w.moved(s) {
					t.Errorf("prod/%s runs %s at the end", s, w.runs(s))
				}
				if n := len(w.world.Revisions(s)); n != 2 {
					t.Errorf("%s has %d revisions, want 2 (each wave registered once)", s, n)
				}
			}
		})
	}
}
