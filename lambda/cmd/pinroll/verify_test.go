package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const root = "../../.."

// startEmulator serves the default fleet, changed by edit if given, on a free loopback port.
func startEmulator(t *testing.T, edit func(*fleet.Fleet)) (string, *emulator.Server) {
	t.Helper()
	world, err := fleet.Load(root + "/events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(world)
	}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.Emulator().Load(world); err != nil {
		t.Fatal(err)
	}
	return srv.URL(), srv
}

// localEnv is a shell with nothing AWS-specific configured.
func localEnv(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PINROLL_CLUSTERS"} {
		t.Setenv(k, "")
	}
}

// `pinroll verify` gives an all-clear only after checking something: each way of finding
// nothing has its own message, naming what is missing and where it looked, and exit 3.
func TestVerifyNeverVerifiesNothing(t *testing.T) {
	url, _ := startEmulator(t, func(f *fleet.Fleet) {
		f.Clusters = append(f.Clusters, fleet.Cluster{Name: "empty"})
		idle := f.Services[1]
		idle.Name, idle.DesiredCount = "idle", 0
		f.Services = append(f.Services, idle)
	})
	for _, tc := range []struct {
		name   string
		region string
		args   []string
		code   int
		want   string
	}{
		{"missing cluster", "", []string{"--cluster", "nope"}, exitUnverified,
			"UNVERIFIED: nothing could be verified: no cluster nope in account 123456789012 region us-east-1"},
		{"the shell's region is not the fleet's", "eu-west-1", []string{"--cluster", "prod"}, exitUnverified,
			"no cluster prod in account 123456789012 region eu-west-1 (AWS_REGION=eu-west-1 is set; the default fleet is in us-east-1"},
		{"no clusters at all", "eu-west-1", nil, exitUnverified,
			"nothing could be verified: no clusters in account 123456789012 region eu-west-1"},
		{"empty cluster", "", []string{"--cluster", "empty"}, exitUnverified,
			"nothing could be verified: cluster empty has no services (account 123456789012 region us-east-1)"},
		{"missing service", "", []string{"--cluster", "dev", "--service", "nope"}, exitUnverified,
			"nothing could be verified: no service nope in cluster dev (account 123456789012 region us-east-1)"},
		{"missing service in any cluster", "", []string{"--service", "nope"}, exitUnverified,
			"no service nope in any cluster"},
		{"service without running tasks", "", []string{"--cluster", "prod", "--service", "idle"}, exitUnverified,
			"nothing could be verified: service prod/idle has no running tasks (desired 0)"},
		{"one service verified, one named service missing", "", []string{"--cluster", "dev", "--service", "api,nope"}, exitUnverified,
			"UNVERIFIED: 1 check passed; not verified: no service nope in cluster dev"},
		{"verified", "", []string{"--cluster", "dev"}, exitOK, "VERIFIED: every running container checked (1) runs the digest it should"},
		{"the incident", "", []string{"--cluster", "prod", "--service", "api,worker"}, exitFailed, "MISMATCH: 3 of 3 checks failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			localEnv(t)
			t.Setenv("AWS_REGION", tc.region)
			code, stdout, stderr := runCLI(t, append([]string{"verify", "--endpoint-url", url}, tc.args...)...)
			if code != tc.code || !strings.Contains(stdout, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, stdout, stderr)
			}
			if tc.code != exitOK && strings.Contains(stdout, "VERIFIED:") && !strings.Contains(stdout, "UNVERIFIED:") {
				t.Errorf("an all-clear without checks:\n%s", stdout)
			}
		})
	}
	// --json carries the same outcome.
	localEnv(t)
	code, stdout, _ := runCLI(t, "verify", "--json", "--cluster", "nope", "--endpoint-url", url)
	if code != exitUnverified || !strings.Contains(stdout, `"outcome":"unverified"`) || !strings.Contains(stdout, "no cluster nope") {
		t.Errorf("verify --json: exit %d\n%s", code, stdout)
	}
}

// The exit codes are documented where an operator looks: `pinroll verify --help`.
func TestVerifyHelpDocumentsExitCodes(t *testing.T) {
	code, stdout, _ := runCLI(t, "verify", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	flat := strings.Join(strings.Fields(stdout), " ")
	for _, want := range []string{"0 verified", "1 mismatch", "2 bad usage or input", "3 nothing could be verified"} {
		if !strings.Contains(flat, want) {
			t.Errorf("verify --help lacks %q:\n%s", want, stdout)
		}
	}
}

// A service that should run a task but runs none (its pinned digest is not in ECR, so no task
// starts) is not verified either, and says so — and the missing image is a failure (exit 1).
func TestVerifyServiceWhoseTasksCannotStart(t *testing.T) {
	localEnv(t)
	raw, err := os.ReadFile(root + "/events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var world map[string]any
	if err := json.Unmarshal(raw, &world); err != nil {
		t.Fatal(err)
	}
	worker, err := json.Marshal(world["taskDefinitions"].([]any)[1])
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(worker), `"family":"backend-worker"`, `"family":"broken"`, 1)
	broken = strings.Replace(broken, "content-marketing-swarm-backend:latest", "content-marketing-swarm-backend:latest@sha256:"+strings.Repeat("ab", 32), 1)
	var td any
	if err := json.Unmarshal([]byte(broken), &td); err != nil {
		t.Fatal(err)
	}
	world["taskDefinitions"] = append(world["taskDefinitions"].([]any), td)
	world["services"] = append(world["services"].([]any), map[string]any{"cluster": "prod", "name": "broken", "taskDefinition": "broken:1", "desiredCount": 1})
	edited, err := json.Marshal(world)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse(edited)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "verify", "--endpoint-url", srv.URL(), "--cluster", "prod", "--service", "broken")
	for _, want := range []string{
		"MISSING IMAGE prod/broken broken:1 123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest@sha256:" + strings.Repeat("ab", 32) + ": not in ECR",
		"UNVERIFIED: nothing could be verified: service prod/broken has no running task (desired 1)",
	} {
		if code != exitFailed || !strings.Contains(stdout, want) {
			t.Errorf("exit %d, want %d with %q\n%s\n%s", code, exitFailed, want, stdout, stderr)
		}
	}
}
