package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// The hub: pinroll runs in the registry account (awstest.Account) and deploys in two target
// accounts too, through their roles. Each target account runs one service that pulls from the
// hub's registry, and one whose image is the same repository name in the target's OWN
// registry: a look-alike that must never move.
const (
	devAccount  = "222222222222"
	prodAccount = "333333333333"
)

func roleOf(account string) string { return "arn:aws:iam::" + account + ":role/pinroll-target" }

type hub struct {
	*harness
	targets map[string]*awstest.World // by account
}

func newHub(t *testing.T, cfg aws.Config, accounts ...string) *hub {
	rec := &awstest.Recorder{}
	pc := config.Config{}
	for _, a := range accounts {
		pc.TargetRoles = append(pc.TargetRoles, roleOf(a))
	}
	engine := atHome(rollout.FromAWSConfig(pc, rec.Wrap(cfg), slog.New(slog.DiscardHandler)))
	h := &hub{harness: &harness{World: awstest.NewWorld(t, cfg), calls: rec, engine: engine}, targets: map[string]*awstest.World{}}
	stsClient := sts.NewFromConfig(cfg)
	for _, a := range accounts {
		h.targets[a] = awstest.NewWorld(t, rollout.AssumeRole(cfg, stsClient, roleOf(a)))
	}
	return h
}

// world: app in the hub's registry (v1, then the pushed v2); in each target account a cluster
// "prod" with "api" tracking the hub's app:latest and "local" tracking the target's own
// app:latest.
func (h *hub) world() (pushed string) {
	h.Repository("app")
	h.Push("app", "latest", "v1")
	for account, w := range h.targets {
		w.Cluster("prod")
		w.Service("prod", "api", w.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
		own := account + ".dkr.ecr." + awstest.Region + ".amazonaws.com/app:latest"
		w.Service("prod", "local", w.TaskDefinition("local", awstest.Container("app", own)))
	}
	return h.Push("app", "latest", "v2")
}

func TestHubDeploysExactlyTheTargetServicesThatPullFromItsRegistry(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHub(t, cfg, devAccount, prodAccount)
		digest := h.world()

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		if rep.Outcome != report.Deployed {
			t.Fatalf("push: %s (%s)", rep.Outcome, rep.Reason)
		}
		var changed []string
		for _, c := range rep.Changes {
			changed = append(changed, c.Account+" "+c.Cluster+"/"+c.Service)
		}
		slices.Sort(changed)
		if want := []string{devAccount + " prod/api", prodAccount + " prod/api"}; !slices.Equal(changed, want) {
			t.Errorf("changes %v, want %v", changed, want)
		}
		for account, w := range h.targets {
			if got := image(w.ServiceTaskDefinition("prod", "api"), "app"); got != h.Image("app", "latest")+"@"+digest {
				t.Errorf("%s prod/api runs %s", account, got)
			}
			own := account + ".dkr.ecr." + awstest.Region + ".amazonaws.com/app:latest"
			if got := image(w.ServiceTaskDefinition("prod", "local"), "app"); got != own {
				t.Errorf("%s prod/local (the target's own app repository) was touched: runs %s", account, got)
			}
			if !slices.ContainsFunc(rep.NearMisses, func(n report.NearMiss) bool { return n.Account == account && n.Service == "local" }) {
				t.Errorf("%s prod/local is not a near miss naming its account: %+v", account, rep.NearMisses)
			}
		}

		// The redelivery finds everything pinned: unchanged, nothing registered.
		h.calls.Reset()
		rep = h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		if rep.Outcome != report.Unchanged || len(rep.Unchanged) != 2 {
			t.Errorf("redelivery: %s (%s), unchanged %+v; want unchanged, both targets", rep.Outcome, rep.Reason, rep.Unchanged)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("redelivery made mutating calls: %v", m)
		}
		for account, w := range h.targets {
			if n := len(w.Revisions("api")); n != 2 {
				t.Errorf("%s: api has %d revisions, want 2", account, n)
			}
		}
	})
}

func TestHubErrorNamesTheTargetThatFailedAndTheRedeliveryFinishes(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHub(t, cfg, devAccount, prodAccount)
		digest := h.world()
		// The prod target's role cannot be assumed (STS does not answer): every call there
		// fails, while the dev target deploys.
		broken := atHome(rollout.New(config.Config{}, ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg), slog.New(slog.DiscardHandler)))
		noSTS := cfg.Copy()
		noSTS.BaseEndpoint = aws.String("http://127.0.0.1:1") // nothing listens there
		noSTS.ConfigSources = nil                             // else the loaded endpoint wins again
		for account, stsClient := range map[string]*sts.Client{devAccount: sts.NewFromConfig(cfg), prodAccount: sts.NewFromConfig(noSTS)} {
			assumed := ecs.NewFromConfig(rollout.AssumeRole(cfg, stsClient, roleOf(account)))
			broken.Targets = append(broken.Targets, rollout.NewTarget(account, roleOf(account), assumed, broken.ECR))
		}

		_, err := broken.HandleRaw(context.Background(), awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		var te *rollout.TargetsError
		if !errors.As(err, &te) || len(te.Failed) != 1 || !strings.Contains(err.Error(), prodAccount) || strings.Contains(te.Failed[0].Target, devAccount) {
			t.Fatalf("error %v; want a TargetsError naming account %s only", err, prodAccount)
		}
		if got := image(h.targets[devAccount].ServiceTaskDefinition("prod", "api"), "app"); !strings.HasSuffix(got, "@"+digest) {
			t.Errorf("the healthy dev target was not deployed: prod/api runs %s", got)
		}

		rep := h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Account != prodAccount || len(rep.Unchanged) != 1 {
			t.Errorf("redelivery: %s (%s) changes %+v; want prod's service deployed, dev's unchanged", rep.Outcome, rep.Reason, rep.Changes)
		}
		for account, w := range h.targets {
			if n := len(w.Revisions("api")); n != 2 {
				t.Errorf("%s: api has %d revisions, want 2 (no duplicate)", account, n)
			}
		}
	})
}

// deploymentEvent is an ECS Deployment State Change for a service, as ECS sends it in the
// service's account (and a forwarding rule passes it on to the hub, account unchanged).
func deploymentEvent(t *testing.T, account, cluster, service, deploymentID string) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"version": "0", "id": "dep-" + account, "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
		"account": account, "time": time.Now().UTC().Format(time.RFC3339), "region": awstest.Region,
		"resources": []string{"arn:aws:ecs:" + awstest.Region + ":" + account + ":service/" + cluster + "/" + service},
		"detail": map[string]any{"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": deploymentID,
			"updatedAt": time.Now().UTC().Format(time.RFC3339), "reason": "ECS deployment " + deploymentID + " completed."},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A deployment event forwarded from a target account is verified there, with that target's
// credentials; one from an account that is neither the hub's nor a target's is skipped.
// Verification needs tasks that report their imageDigest: the emulator's.
func TestHubVerifiesDeploymentsForwardedFromATarget(t *testing.T) {
	onBackend(t, "emulator", func(t *testing.T, cfg aws.Config) {
		h := newHub(t, cfg, devAccount, prodAccount)
		digest := h.world()
		h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))

		dev := h.targets[devAccount]
		out, err := dev.ECS.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
		if err != nil || len(out.Services) != 1 || len(out.Services[0].Deployments) == 0 {
			t.Fatalf("describe dev's prod/api: %v", err)
		}
		rep := h.mustHandle(deploymentEvent(t, devAccount, "prod", "api", aws.ToString(out.Services[0].Deployments[0].Id)))
		if rep.Outcome != report.Verified || len(rep.Verifications) == 0 {
			t.Fatalf("forwarded deployment: %s (%s); want verified in account %s", rep.Outcome, rep.Reason, devAccount)
		}
		for _, v := range rep.Verifications {
			if v.Running != digest || v.Account != devAccount {
				t.Errorf("%s %s task %s runs %s, want %s in %s", v.Account, v.Service, v.Task, v.Running, digest, devAccount)
			}
		}
		rep = h.mustHandle(deploymentEvent(t, "444444444444", "prod", "api", "ecs-svc/1"))
		if rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "444444444444") {
			t.Errorf("deployment from an unknown account: %s (%s); want skipped, naming it", rep.Outcome, rep.Reason)
		}
	})
}
