package rollout_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// A registry in us-east-1 replicated to us-west-2: the pinroll of us-west-2 receives the
// replica's event and deploys that region's services from that region's copy. Each region
// runs api tracking its own region's app:latest; us-west-2 also runs "far", which pulls
// across regions from us-east-1 and must not move on a us-west-2 replica.
func TestReplicaDeploysOnlyItsRegionsServicesFromItsRegionsHost(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		east := awstest.NewWorld(t, cfg)
		westCfg := cfg.Copy()
		westCfg.Region = "us-west-2"
		west := awstest.NewWorld(t, westCfg)
		for _, w := range []*awstest.World{east, west} {
			w.Repository("app")
			w.Push("app", "latest", "v1")
			w.Cluster("prod")
			w.Service("prod", "api", w.TaskDefinition("api", awstest.Container("app", w.Image("app", "latest"))))
		}
		west.Service("prod", "far", west.TaskDefinition("far", awstest.Container("app", east.Image("app", "latest"))))
		// The replica lands in us-west-2 (what ECR replication does), and its event there.
		digest := west.Push("app", "latest", "v2")
		east.Push("app", "latest", "v2")

		rec := &awstest.Recorder{}
		recorded := rec.Wrap(westCfg)
		engine := atHome(rollout.New(config.Config{}, ecs.NewFromConfig(recorded), ecr.NewFromConfig(recorded), slog.New(slog.DiscardHandler)))
		rep, err := engine.HandleRaw(t.Context(), awstest.ReplicaEvent("r1", awstest.Account, "us-west-2", "app", "latest", digest, "SUCCESS"))
		if err != nil || rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Service != "api" || !strings.Contains(rep.Reason, "replica from "+awstest.Account+" in us-east-1") {
			t.Fatalf("replica: %v, %s (%s) %+v; want us-west-2's prod/api deployed", err, rep.Outcome, rep.Reason, rep.Changes)
		}
		if want := west.Image("app", "latest") + "@" + digest; image(west.ServiceTaskDefinition("prod", "api"), "app") != want {
			t.Errorf("us-west-2 prod/api runs %s, want %s (its own region's host)", image(west.ServiceTaskDefinition("prod", "api"), "app"), want)
		}
		if got := image(west.ServiceTaskDefinition("prod", "far"), "app"); got != east.Image("app", "latest") {
			t.Errorf("us-west-2 prod/far, which pulls from us-east-1, moved: runs %s", got)
		}
		if got := image(east.ServiceTaskDefinition("prod", "api"), "app"); got != east.Image("app", "latest") {
			t.Errorf("us-east-1 prod/api was touched by a us-west-2 replica: runs %s", got)
		}

		// A failed replication changes nothing and is no error.
		rec.Reset()
		rep, err = engine.HandleRaw(t.Context(), awstest.ReplicaEvent("r2", awstest.Account, "us-west-2", "app", "latest", digest, "FAILURE"))
		if err != nil || rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "FAILURE") {
			t.Errorf("failed replication: %v, %s (%s); want skipped, naming the result", err, rep.Outcome, rep.Reason)
		}
		if n := len(rec.Calls()); n != 0 {
			t.Errorf("a failed replication made %d AWS calls", n)
		}
	})
}
