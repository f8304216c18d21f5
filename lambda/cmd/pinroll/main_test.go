package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
		{nil, exitUsage, "Usage: pinroll <command>"},
		{[]string{"help"}, exitOK, ""},
		{[]string{"help", "verify"}, exitOK, ""},
		{[]string{"deploy"}, exitUsage, `unexpected argument deploy`},
		{[]string{"replay"}, exitUsage, "usage: pinroll replay <EVENT.json> ..."},
		{[]string{"plan"}, exitUsage, "missing flags: --repository"},
		{[]string{"verify", "--no-such-flag"}, exitUsage, "unknown flag --no-such-flag"},
		{[]string{"rollback", "--cluster", "prod"}, exitUsage, "missing flags: --service"},
		{[]string{"verify", "--endpoint-url", "127.0.0.1:4566"}, exitUsage, "127.0.0.1:4566 has no scheme: add http:// (--endpoint-url http://127.0.0.1:4566)"},
		{[]string{"verify", "--endpoint-url", "ftp://127.0.0.1:4566"}, exitUsage, "the scheme must be http:// or https://"},
		{[]string{"verify", "--role", "pinroll-target"}, exitUsage, `--role "pinroll-target" is not an IAM role ARN`},
		{[]string{"resume", "--cluster", "c", "--service", "s", "--role", "arn:aws:iam::222222222222:user/bob"}, exitUsage, "is not an IAM role ARN"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("pinroll %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// Flags may follow arguments, as Go users expect (the standard flag package stopped at the
// first file name and then said "no AWS region").
func TestFlagsAfterArguments(t *testing.T) {
	localEnv(t)
	url, _ := startEmulator(t, nil)
	code, stdout, stderr := runCLI(t, "replay", root+"/events/delete.json", "--endpoint-url", url, "--json")
	if code != 0 || !strings.Contains(stdout, `"outcome":"skipped"`) {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// A refused connection says what to start; it does not wait through five retries first.
func TestConnectionRefusedSaysStartTheEmulator(t *testing.T) {
	localEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"verify", "--endpoint-url", "http://" + addr},
		{"replay", root + "/events/push-tagged.json", "--endpoint-url", "http://" + addr},
		{"plan", "--repository", "r", "--endpoint-url", "http://" + addr},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitFailed || !strings.Contains(stderr, "is `pinroll emulate` running on "+addr+"? Start it with: pinroll emulate --addr "+addr) {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// Several files with some missing: every missing one is named, and none of the others ran.
func TestReplayReportsEveryMissingFileBeforeRunningAny(t *testing.T) {
	localEnv(t)
	url, srv := startEmulator(t, nil)
	srv.Emulator().ResetCalls()
	code, stdout, stderr := runCLI(t, "replay", "--endpoint-url", url, root+"/events/push-tagged.json", "nope-1.json", root+"/events/delete.json", "nope-2.json")
	if code != exitUsage || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"2 of 4 event files cannot be read; nothing was replayed", "nope-1.json", "nope-2.json"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if calls := srv.Emulator().Calls(); len(calls) != 0 {
		t.Errorf("AWS calls made before the missing files were reported: %v", calls)
	}
}

// A shell set up for real AWS (another region, a profile that does not exist here) does not
// stand in the way of the local emulator.
func TestLoopbackEndpointNeedsNoProfile(t *testing.T) {
	localEnv(t)
	t.Setenv("AWS_PROFILE", "nonexistent")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	url, _ := startEmulator(t, nil)
	code, stdout, stderr := runCLI(t, "verify", "--cluster", "dev", "--endpoint-url", url)
	if code != exitOK || !strings.Contains(stdout, "VERIFIED") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// The emulator has no authentication: it refuses to serve other machines unless told to.
func TestEmulateRefusesNonLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{":4566", "0.0.0.0:4566", "[::]:4566", "192.0.2.1:4566"} {
		code, _, stderr := runCLI(t, "emulate", "--addr", addr, "--fleet", "")
		if code != exitUsage || !strings.Contains(stderr, "the emulator has no authentication: use a loopback address") || !strings.Contains(stderr, "--allow-remote") {
			t.Errorf("emulate --addr %s: exit %d, stderr %q", addr, code, stderr)
		}
	}
	for _, addr := range []string{"127.0.0.1:4566", "localhost:4566", "[::1]:4566"} {
		if w, err := checkAddr(addr, false); err != nil || w != "" {
			t.Errorf("%s: warning %q, error %v", addr, w, err)
		}
	}
	w, err := checkAddr(":4566", true)
	if err != nil || !strings.Contains(w, "warning: the emulator listens on :4566 (every interface) with no authentication") {
		t.Errorf("--allow-remote: warning %q, error %v", w, err)
	}
	// A port in use is named, with what to do.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if code, _, stderr := runCLI(t, "emulate", "--addr", busy.Addr().String(), "--fleet", ""); code != exitFailed ||
		!strings.Contains(stderr, busy.Addr().String()+" is in use (another pinroll emulate?): stop what listens there, or choose another --addr") {
		t.Errorf("emulate on a busy port: exit %d, stderr %q", code, stderr)
	}
	// Allowed, it starts and says so on stderr (on loopback here, but through the same path).
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"emulate", "--addr", "127.0.0.1:0", "--fleet", "", "--allow-remote"}, &out, &errOut)
	}()
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("emulate on loopback: exit %d\n%s", code, errOut.String())
	}
}

// pinroll release refuses, exit 1, what it cannot release, and says why; it changes nothing.
func TestReleaseRefusesWhatNoWaveHolds(t *testing.T) {
	url := seededMoto(t)
	const image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest@sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"release"}, exitUsage, "missing flags: --image"},
		{[]string{"release", "--image", "content-marketing-swarm-backend:latest", "--endpoint-url", url}, exitFailed, "want the pinned image of a push"},
		{[]string{"release", "--image", image, "--endpoint-url", url}, exitFailed, "no service holds " + image + " for its wave: nothing deployed"},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("pinroll %v: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
	w := awstest.NewWorld(t, awstest.Config(t, url))
	for _, svc := range []string{"api", "worker"} {
		if img := aws.ToString(w.ServiceTaskDefinition("prod", svc).Definition.ContainerDefinitions[0].Image); strings.Contains(img, "@") {
			t.Errorf("a refused release deployed prod/%s: it runs %s", svc, img)
		}
	}
}
