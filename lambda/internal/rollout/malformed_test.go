package rollout_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// Every malformed or adversarial event of the trigger package's corpus, handled by the whole
// engine against a live world, is a clear error (or, for the few well-formed but irrelevant
// ones, a skip) and makes no AWS call at all.
func TestMalformedEventsTouchNothing(t *testing.T) {
	files, err := filepath.Glob("../trigger/testdata/malformed/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("want at least 20 malformed events, found %d (%v)", len(files), err)
	}
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		incident(h)
		h.calls.Reset()
		var errs, skips int
		for _, path := range files {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := h.handle(raw)
			name := filepath.Base(path)
			switch {
			case strings.HasPrefix(name, "skip-"):
				if err != nil || rep.Outcome != report.Skipped {
					t.Errorf("%s: %v, outcome %q; want a skip", name, err, rep.Outcome)
				}
				skips++
			default:
				var invalid *trigger.InvalidEventError
				if !errors.As(err, &invalid) {
					t.Errorf("%s: error %v, want an InvalidEventError", name, err)
				}
				errs++
			}
		}
		if calls := h.calls.Calls(); len(calls) != 0 {
			t.Errorf("malformed events caused AWS calls: %v", calls)
		}
		t.Logf("%d malformed events rejected, %d irrelevant ones skipped, 0 AWS calls", errs, skips)
	})
}

// The kitchen-sink task definition (every field set) survives pinroll's round trip through
// a real backend: the new revision equals the old one but for the app image, for every field
// the backend keeps.
func TestKitchenSinkSurvivesTheRoundTrip(t *testing.T) {
	fixture := awstest.TaskDefinitionFixture(t, "../taskdef/testdata/kitchen-sink.json")
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		h.Repository("app")
		h.Cluster("prod")
		// ECS refuses aws: tags on register (the emulator too; moto keeps them).
		in, err := taskdef.Clone(fixture.TaskDefinition, taskdef.RegisterTags(fixture.Tags, nil))
		if err != nil {
			t.Fatal(err)
		}
		in, err = taskdef.WithImages(in, map[string]string{"app": h.Image("app", "latest")})
		if err != nil {
			t.Fatal(err)
		}
		before := h.Register(in)
		h.Service("prod", "kitchen", before, awstest.LaunchType(types.LaunchTypeEc2))
		orig := h.ServiceTaskDefinition("prod", "kitchen")
		digest := h.Push("app", "latest", "v2")

		h.mustHandle(awstest.PushEvent("e1", awstest.Account, "app", "latest", digest))
		after := h.ServiceTaskDefinition("prod", "kitchen")
		if after.ARN == before {
			t.Fatal("the kitchen-sink service was not updated")
		}
		want, _ := taskdef.Clone(orig.Definition, nil)
		want, _ = taskdef.WithImages(want, map[string]string{"app": h.Image("app", "latest") + "@" + digest})
		got, _ := taskdef.Clone(after.Definition, nil)
		if diff := cmp.Diff(jsonOf(t, want), jsonOf(t, got)); diff != "" {
			t.Errorf("kitchen sink differs after the round trip in more than the app image (-want +got):\n%s", diff)
		}
		for k, v := range orig.Tags {
			if after.Tags[k] != v {
				t.Errorf("tag %s: %q, want %q kept", k, after.Tags[k], v)
			}
		}
	})
}
