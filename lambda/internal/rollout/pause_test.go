package rollout_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

func TestRollbackPausesAndResumeDeploysAgain(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		original := h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest")))
		h.Service("prod", "api", original)
		digest := h.Push("app", "latest", "bad release")
		push := awstest.PushEvent("push-1", awstest.Account, "app", "latest", digest)
		h.mustHandle(push)
		pinned := h.ServiceTaskDefinition("prod", "api").ARN

		tagger := ecs.NewFromConfig(cfg)
		rb, err := h.engine.Rollback(context.Background(), tagger, "prod", "api", "alice", "bad release", time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if rb.From != pinned || rb.To != original || rb.Paused != "alice 2026-11-28T03:00:00Z bad release" {
			t.Errorf("rollback = %+v", rb)
		}
		after := h.ServiceTaskDefinition("prod", "api")
		if after.ARN != original {
			t.Fatalf("after rollback prod/api runs %s, want exactly %s", after.ARN, original)
		}

		// Neither a redelivered push nor reconciliation undoes the rollback.
		h.calls.Reset()
		rep := h.mustHandle(push)
		if rep.Outcome != report.Skipped || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0].Why, "alice") {
			t.Errorf("redelivered push after rollback: %s (%s) %+v; want skipped: paused by alice", rep.Outcome, rep.Reason, rep.Skipped)
		}
		h.mustHandle(reconcileEvent("sched-1"))
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("a paused service saw mutating calls: %v", m)
		}
		if got := h.ServiceTaskDefinition("prod", "api").ARN; got != original {
			t.Errorf("paused prod/api moved to %s", got)
		}

		was, err := h.engine.Resume(context.Background(), tagger, "prod", "api")
		if err != nil || !strings.HasPrefix(was, "alice") {
			t.Fatalf("resume: %q, %v", was, err)
		}
		rep = h.mustHandle(push)
		if rep.Outcome != report.Deployed {
			t.Fatalf("push after resume: %s (%s)", rep.Outcome, rep.Reason)
		}
		if got := h.ServiceTaskDefinition("prod", "api").ARN; got != pinned {
			t.Errorf("after resume prod/api runs %s, want the revision registered before (%s), not a duplicate", got, pinned)
		}
		if revs := h.Revisions("api"); len(revs) != 2 {
			t.Errorf("family has %d revisions, want 2", len(revs))
		}
	})
}

func TestRollbackOfARevisionPinrollDidNotRegisterIsRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Cluster("prod")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", "nginx")))
		_, err := h.engine.Rollback(context.Background(), ecs.NewFromConfig(cfg), "prod", "api", "bob", "", time.Now())
		if err == nil || !strings.Contains(err.Error(), "not registered by pinroll") {
			t.Fatalf("error %v, want a refusal naming why", err)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("a refused rollback made mutating calls: %v", m)
		}
	})
}

func TestPauseValueFitsAnECSTag(t *testing.T) {
	v := rollout.PauseValue("ünïcode user", strings.Repeat("why? ", 80), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if utf8.RuneCountInString(v) != 256 || strings.Contains(v, "?") || !strings.HasPrefix(v, "ünïcode user 2026-01-02T03:04:05Z why_ why_") {
		t.Errorf("PauseValue = %q", v)
	}
}
