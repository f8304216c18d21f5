package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// seededMoto starts moto with the default fleet (the incident) and returns its URL.
func seededMoto(t *testing.T) string {
	t.Helper()
	moto, err := awstest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	cfg := awstest.Config(t, moto.URL)
	world, err := fleet.Load("../../../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := world.Seed(context.Background(), ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	return moto.URL
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// `pinroll replay --json` prints one report per line, shaped as README "The report" says.
func TestReplayJSONMatchesTheDesignedReport(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	url := seededMoto(t)
	code, stdout, stderr := runCLI(t, "replay", "--json", "--endpoint-url", url, "../../../events/push-tagged.json", "../../../events/delete.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per event, got %d:\n%s", len(lines), stdout)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rep); err != nil {
		t.Fatal(err)
	}
	// The report's top-level keys of README "The report", plus "skipped" (the CODE_DEPLOY service).
	if diff := cmp.Diff([]string{"changes", "event_id", "image", "kind", "near_misses", "outcome", "reason", "skipped"}, keys(rep)); diff != "" {
		t.Errorf("report keys (-want +got):\n%s", diff)
	}
	if rep["outcome"] != "deployed" || rep["kind"] != "push" {
		t.Errorf("outcome %v, kind %v", rep["outcome"], rep["kind"])
	}
	change := rep["changes"].([]any)[0].(map[string]any)
	if diff := cmp.Diff([]string{"account", "cluster", "containers", "previous_task_definition", "service", "task_definition"}, keys(change)); diff != "" {
		t.Errorf("change keys (-want +got):\n%s", diff)
	}
	if change["account"] != "123456789012" {
		t.Errorf("change account %v, want the service's account 123456789012", change["account"])
	}
	container := change["containers"].([]any)[0].(map[string]any)
	if diff := cmp.Diff([]string{"from", "name", "to"}, keys(container)); diff != "" {
		t.Errorf("container keys (-want +got):\n%s", diff)
	}
	miss := rep["near_misses"].([]any)[0].(map[string]any)
	if diff := cmp.Diff([]string{"account", "cluster", "container", "image", "service", "why"}, keys(miss)); diff != "" {
		t.Errorf("near miss keys (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(rep["image"].(string), "/content-marketing-swarm-backend:latest@sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d") {
		t.Errorf("image %v is not the pinned form", rep["image"])
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["outcome"] != "skipped" {
		t.Errorf("delete.json: %v %v", second, err)
	}
}

func TestReplayTableAndPlan(t *testing.T) {
	url := seededMoto(t)
	code, stdout, stderr := runCLI(t, "plan", "--repository", "content-marketing-swarm-backend", "--tag", "latest", "--endpoint-url", url)
	if code != 0 || !strings.Contains(stdout, "PLANNED") || !strings.Contains(stdout, "prod/api") || !strings.Contains(stdout, "dev/api                      near miss, not touched") {
		t.Errorf("plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "replay", "--endpoint-url", url, "../../../events/push-tagged.json")
	if code != 0 || !strings.Contains(stdout, "DEPLOYED") || !strings.Contains(stdout, "prod/worker") {
		t.Errorf("replay: exit %d\n%s", code, stdout)
	}
}

func TestBadInvocations(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"deploy"}, 2, `unknown command "deploy"`},
		{[]string{"replay"}, 2, "usage: pinroll replay"},
		{[]string{"replay", "--endpoint-url", "http://127.0.0.1:1", "no-such-file.json"}, 1, "no-such-file.json"},
		{[]string{"plan"}, 2, "-repository"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("pinroll %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
