package rollout_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// pinroll:policy=glob:release-* moves a container from one release-* tag to a newly pushed
// release-* tag — only to an image ECR pushed after the one it runs, never across patterns.
func TestGlobPolicyMovesOnlyToNewerMatchingTags(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		h.Push("app", "release-1", "r1")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "release-1"))), awstest.Tags("pinroll:policy", "glob:release-*"))
		h.Service("prod", "stable", h.TaskDefinition("stable", awstest.Container("app", h.Image("app", "stable"))), awstest.Tags("pinroll:policy", "glob:release-*"))
		time.Sleep(1100 * time.Millisecond) // ECR's push times have whole seconds on moto
		d2 := h.Push("app", "release-2", "r2")

		rep := h.mustHandle(awstest.PushEvent("r2", awstest.Account, "app", "release-2", d2))
		if rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Service != "api" {
			t.Fatalf("push release-2: %s (%s) %+v; want prod/api moved", rep.Outcome, rep.Reason, rep.Changes)
		}
		if got := image(h.ServiceTaskDefinition("prod", "api"), "app"); got != h.Image("app", "release-2")+"@"+d2 {
			t.Errorf("prod/api runs %s", got)
		}
		if !slices.ContainsFunc(rep.NearMisses, func(n report.NearMiss) bool {
			return n.Service == "stable" && strings.Contains(n.Why, "never moves across patterns")
		}) {
			t.Errorf("prod/stable (tag stable, outside the pattern) is not a near miss saying so: %+v", rep.NearMisses)
		}
		h.calls.Reset()
		d3 := h.Push("app", "hotfix-3", "h3")
		if rep := h.mustHandle(awstest.PushEvent("h3", awstest.Account, "app", "hotfix-3", d3)); len(rep.Changes) != 0 {
			t.Errorf("a pushed tag outside the pattern moved %+v", rep.Changes)
		}
	})
}

// A re-tag of an old image (the usual "promotion") keeps the push time of its manifest: under
// a glob policy it is not newer than what runs, so it moves nothing. (moto re-stamps the push
// time of a re-tagged image, so this runs on the emulator, which keeps it as ECR does.)
func TestGlobPolicyDoesNotMoveToARetaggedOlderImage(t *testing.T) {
	onBackend(t, "emulator", func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		h.Push("app", "release-1", "r1")
		time.Sleep(1100 * time.Millisecond)
		d2 := h.Push("app", "release-2", "r2")
		h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "release-2")+"@"+d2)), awstest.Tags("pinroll:policy", "glob:release-*"))
		d1 := h.Push("app", "release-3", "r1") // release-1's manifest, promoted as release-3

		h.calls.Reset()
		rep := h.mustHandle(awstest.PushEvent("r3", awstest.Account, "app", "release-3", d1))
		if len(rep.Changes) != 0 || len(h.calls.Mutations()) != 0 {
			t.Fatalf("a re-tag of an older image deployed: %+v (mutations %v)", rep.Changes, h.calls.Mutations())
		}
		if !slices.ContainsFunc(rep.NearMisses, func(n report.NearMiss) bool { return strings.Contains(n.Why, "not after the running release-2") }) {
			t.Errorf("near misses %+v; want one saying release-3 is not newer than release-2", rep.NearMisses)
		}
	})
}
