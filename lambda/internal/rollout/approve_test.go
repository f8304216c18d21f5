package rollout_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// approvalWorld: prod/payments needs approval, prod/api does not; both track app:latest.
func approvalWorld(t *testing.T, cfg aws.Config) (*harness, string) {
	h := newHarness(t, cfg, config.Config{})
	h.Repository("app")
	h.Cluster("prod")
	h.Push("app", "1.0", "v1") // keeps v1 in the repository when latest moves (moto drops untagged images)
	h.Push("app", "latest", "v1")
	h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
	original := h.TaskDefinition("payments", awstest.Container("app", h.Image("app", "latest")))
	h.Service("prod", "payments", original, awstest.Tags("pinroll:approval", "required"))
	return h, original
}

func serviceTag(t *testing.T, cfg aws.Config, cluster, service, key string) string {
	t.Helper()
	out, err := ecs.NewFromConfig(cfg).DescribeServices(context.Background(), &ecs.DescribeServicesInput{
		Cluster: aws.String(cluster), Services: []string{service}, Include: []types.ServiceField{types.ServiceFieldTags},
	})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe %s/%s: %v", cluster, service, err)
	}
	for _, tag := range out.Services[0].Tags {
		if aws.ToString(tag.Key) == key {
			return aws.ToString(tag.Value)
		}
	}
	return ""
}

func TestApprovalHoldsThenApproveDeploys(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h, original := approvalWorld(t, cfg)
		digest := h.Push("app", "latest", "v2")
		push := awstest.PushEvent("p1", awstest.Account, "app", "latest", digest)

		rep := h.mustHandle(push)
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Service != "api" {
			t.Fatalf("push: %s (%s) %+v; want prod/api deployed", rep.Outcome, rep.Reason, rep.Changes)
		}
		if len(rep.Held) != 1 || rep.Held[0].Service != "payments" || !strings.Contains(rep.Held[0].Why, "pinroll approve --cluster prod --service payments") {
			t.Fatalf("held = %+v; want prod/payments with the command to approve", rep.Held)
		}
		if got := h.ServiceTaskDefinition("prod", "payments").ARN; got != original {
			t.Fatalf("a service that needs approval moved to %s", got)
		}
		if held := serviceTag(t, cfg, "prod", "payments", "pinroll:held"); held != "payments:2" {
			t.Errorf("pinroll:held = %q, want payments:2 (registered, waiting)", held)
		}

		// A redelivery holds the same revision again: no registration, no mutation.
		h.calls.Reset()
		if rep := h.mustHandle(push); rep.Outcome != report.AwaitingApproval || len(rep.Held) != 1 {
			t.Errorf("redelivery: %s (%s) held %+v; want awaiting_approval", rep.Outcome, rep.Reason, rep.Held)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("redelivery made mutating calls: %v", m)
		}

		a, err := h.engine.Approve(context.Background(), ecs.NewFromConfig(cfg), "prod", "payments")
		if err != nil || !a.Done || a.Revision != "payments:2" {
			t.Fatalf("approve: %+v, %v", a, err)
		}
		if got := image(h.ServiceTaskDefinition("prod", "payments"), "app"); got != h.Image("app", "latest")+"@"+digest {
			t.Errorf("after approval prod/payments runs %s", got)
		}
		if held := serviceTag(t, cfg, "prod", "payments", "pinroll:held"); held != "" {
			t.Errorf("pinroll:held = %q after approval, want it removed", held)
		}
		// Approving twice approves nothing, says so, changes nothing.
		h.calls.Reset()
		a, err = h.engine.Approve(context.Background(), ecs.NewFromConfig(cfg), "prod", "payments")
		if err != nil || a.Done || !strings.Contains(a.Note, "nothing waits for approval") {
			t.Errorf("second approve: %+v, %v; want nothing to do", a, err)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("second approve made mutating calls: %v", m)
		}
		if n := len(h.Revisions("payments")); n != 2 {
			t.Errorf("payments has %d revisions, want 2", n)
		}
	})
}

// A newer push replaces the held revision, and approving deploys the newer digest. When the
// tag has moved but its push has not been handled yet, approving refuses: it never deploys
// a stale image.
func TestApproveNeverDeploysAStaleImage(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h, original := approvalWorld(t, cfg)
		tagger := ecs.NewFromConfig(cfg)
		d2 := h.Push("app", "latest", "v2")
		h.mustHandle(awstest.PushEvent("p2", awstest.Account, "app", "latest", d2))
		h.Push("app", "2.0", "v2") // v2 keeps a tag when latest moves on
		d3 := h.Push("app", "latest", "v3")

		// v3's event has not arrived: payments still holds v2, which latest no longer names.
		_, err := h.engine.Approve(context.Background(), tagger, "prod", "payments")
		var refused *rollout.NotApprovableError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "stale") {
			t.Fatalf("approve of a held image whose tag moved: %v; want a refusal saying it is stale", err)
		}
		if got := h.ServiceTaskDefinition("prod", "payments").ARN; got != original {
			t.Fatalf("a refused approval moved the service to %s", got)
		}

		rep := h.mustHandle(awstest.PushEvent("p3", awstest.Account, "app", "latest", d3))
		if len(rep.Held) != 1 || !strings.Contains(rep.Held[0].Why, d3) {
			t.Fatalf("newer push: held %+v; want payments holding %s", rep.Held, d3)
		}
		a, err := h.engine.Approve(context.Background(), tagger, "prod", "payments")
		if err != nil || !a.Done {
			t.Fatalf("approve after the newer push: %+v, %v", a, err)
		}
		if got := image(h.ServiceTaskDefinition("prod", "payments"), "app"); !strings.HasSuffix(got, "@"+d3) {
			t.Errorf("approved prod/payments runs %s, want the newer %s", got, d3)
		}
	})
}

func TestRejectAndPauseKeepTheServiceWhereItIs(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h, original := approvalWorld(t, cfg)
		tagger := ecs.NewFromConfig(cfg)
		digest := h.Push("app", "latest", "v2")
		h.mustHandle(awstest.PushEvent("p1", awstest.Account, "app", "latest", digest))

		// A paused service cannot be approved into a deploy.
		if _, err := tagger.TagResource(context.Background(), &ecs.TagResourceInput{
			ResourceArn: aws.String(h.serviceARN("prod", "payments")), Tags: []types.Tag{{Key: aws.String("pinroll:paused"), Value: aws.String("bob incident")}},
		}); err != nil {
			t.Fatal(err)
		}
		_, err := h.engine.Approve(context.Background(), tagger, "prod", "payments")
		var refused *rollout.NotApprovableError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "paused") {
			t.Errorf("approve of a paused service: %v; want a refusal naming the pause", err)
		}
		if _, err := h.engine.Resume(context.Background(), tagger, "prod", "payments"); err != nil {
			t.Fatal(err)
		}

		r, err := h.engine.Reject(context.Background(), tagger, "prod", "payments")
		if err != nil || !r.Done || r.Revision != "payments:2" {
			t.Fatalf("reject: %+v, %v", r, err)
		}
		if got := h.ServiceTaskDefinition("prod", "payments").ARN; got != original {
			t.Errorf("rejected prod/payments moved to %s", got)
		}
		if held := serviceTag(t, cfg, "prod", "payments", "pinroll:held"); held != "" {
			t.Errorf("pinroll:held = %q after reject", held)
		}
		if a, err := h.engine.Approve(context.Background(), tagger, "prod", "payments"); err != nil || a.Done {
			t.Errorf("approve after reject: %+v, %v; want nothing to approve", a, err)
		}
	})
}

// serviceARN is the ARN ECS gives the service.
func (h *harness) serviceARN(cluster, service string) string {
	h.T.Helper()
	out, err := h.ECS.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil || len(out.Services) != 1 {
		h.T.Fatalf("describe %s/%s: %v", cluster, service, err)
	}
	return aws.ToString(out.Services[0].ServiceArn)
}
