package rollout_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

func reconcileEvent(id string) []byte {
	return fmt.Appendf(nil, `{"version":"0","id":%q,"detail-type":"Scheduled Event","source":"aws.events","account":%q,"time":%q,"region":%q,"resources":["arn:aws:events:%s:%s:rule/pinroll-reconcile"],"detail":{}}`,
		id, awstest.Account, time.Now().UTC().Format(time.RFC3339), awstest.Region, awstest.Region, awstest.Account)
}

// pinnedApp is a world with prod/api pinned (by a handled push) to app:latest at d1.
func pinnedApp(h *harness) (d1 string) {
	h.Repository("app")
	h.Cluster("prod")
	h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
	h.Push("app", "1.0.0", "v1") // a version tag keeps v1 in the repository when latest moves
	d1 = h.Push("app", "latest", "v1")
	if rep := h.mustHandle(awstest.PushEvent("push-1", awstest.Account, "app", "latest", d1)); rep.Outcome != report.Deployed {
		h.T.Fatalf("first push: %s (%s)", rep.Outcome, rep.Reason)
	}
	return d1
}

func TestReconcileDeploysAPushWhoseEventWasLost(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		pinnedApp(h)
		time.Sleep(1100 * time.Millisecond) // ECR's push times have second precision
		d2 := h.Push("app", "latest", "v2") // ECR never sends this push's event

		rep := h.mustHandle(reconcileEvent("sched-1"))
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 {
			t.Fatalf("reconcile: %s (%s) %+v", rep.Outcome, rep.Reason, rep.Changes)
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); got != h.Image("app", "latest")+"@"+d2 {
			t.Errorf("prod/api runs %s, want the missed push %s", got, d2)
		}
		if rep := h.mustHandle(reconcileEvent("sched-2")); rep.Outcome != report.Unchanged {
			t.Errorf("second reconcile: %s (%s), want unchanged", rep.Outcome, rep.Reason)
		}
	})
}

// On the emulator only: re-tagging an existing image (PutImage of its manifest) keeps its
// push time there, as in ECR; moto records the re-tag as a new push.
func TestReconcileNeverRollsBack(t *testing.T) {
	onBackend(t, "emulator", func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		d1 := pinnedApp(h)
		time.Sleep(1100 * time.Millisecond)
		d2 := h.Push("app", "latest", "v2")
		h.mustHandle(awstest.PushEvent("push-2", awstest.Account, "app", "latest", d2))
		// Someone moves latest back to the older image.
		if got := h.Push("app", "latest", "v1"); got != d1 {
			t.Fatalf("re-tagging v1 gave %s, want %s", got, d1)
		}
		h.calls.Reset()
		rep := h.mustHandle(reconcileEvent("sched-1"))
		if rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "does not roll back") {
			t.Errorf("reconcile: %s (%s), want skipped: not rolled back", rep.Outcome, rep.Reason)
		}
		if m := h.calls.Mutations(); len(m) != 0 {
			t.Errorf("reconcile made mutating calls: %v", m)
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); !strings.HasSuffix(got, d2) {
			t.Errorf("prod/api runs %s, want it left on %s", got, d2)
		}
	})
}

func TestReconcileLeavesPausedServicesAlone(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		td := h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest")))
		h.Service("prod", "api", td, awstest.Tags("pinroll:paused", "alice 2026-11-28 investigating"))
		h.Service("prod", "web", td)
		d1 := h.Push("app", "latest", "v1")
		rep := h.mustHandle(awstest.PushEvent("push-1", awstest.Account, "app", "latest", d1))
		if len(rep.Skipped) != 1 || rep.Skipped[0].Service != "api" || !strings.HasPrefix(rep.Skipped[0].Why, "paused") {
			t.Errorf("push: skipped %+v, want prod/api paused", rep.Skipped)
		}
		time.Sleep(1100 * time.Millisecond)
		h.Push("app", "latest", "v2")
		h.mustHandle(reconcileEvent("sched-1"))
		if got := h.ServiceTaskDefinition("prod", "api").ARN; got != td {
			t.Errorf("paused prod/api was moved to %s", got)
		}
		if got := image(h.ServiceTaskDefinition("prod", "web"), "app"); strings.HasSuffix(got, d1) {
			t.Errorf("prod/web still runs %s after reconcile", got)
		}
	})
}

// Semver: a push of several tags of one image (1.5.0, 1.5, latest: one event each) deploys
// once; lower versions, pre-releases and non-versions do not move the service.
func TestSemverPushOfSeveralTagsDeploysOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		d142 := h.Push("app", "1.4.2", "v1.4.2")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "1.4.2")+"@"+d142)),
			awstest.Tags("pinroll:policy", "semver:^1"))

		for _, tag := range []string{"1.3.9", "2.0.0-rc.1", "nightly"} {
			d := h.Push("app", tag, "other "+tag)
			if rep := h.mustHandle(awstest.PushEvent("e-"+tag, awstest.Account, "app", tag, d)); len(rep.Changes) != 0 {
				t.Errorf("push of %s moved the service: %+v", tag, rep.Changes)
			}
		}
		var d150 string
		for _, tag := range []string{"1.5.0", "1.5", "latest"} {
			d150 = h.Push("app", tag, "v1.5.0")
		}
		deployments := 0
		for _, tag := range []string{"1.5.0", "1.5", "latest"} {
			rep := h.mustHandle(awstest.PushEvent("e-"+tag, awstest.Account, "app", tag, d150))
			deployments += len(rep.Changes)
		}
		if deployments != 1 || h.calls.Count("RegisterTaskDefinition") != 1 {
			t.Errorf("three tags of one image gave %d deployments and %d registrations, want 1 and 1", deployments, h.calls.Count("RegisterTaskDefinition"))
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); got != h.Image("app", "1.5.0")+"@"+d150 {
			t.Errorf("prod/api runs %s, want 1.5.0@%s", got, d150)
		}
	})
}
