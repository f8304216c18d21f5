package verify

import (
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

func TestOutcomeNeverVerifiesFromNothing(t *testing.T) {
	good := report.Verification{Cluster: "prod", Service: "api", Task: "t1", Container: "app", Want: "sha256:a", Running: "sha256:a", OK: true}
	wrong := report.Verification{Cluster: "prod", Service: "api", Task: "t2", Container: "app", Want: "sha256:a", Running: "sha256:b"}
	noTask := report.Verification{Cluster: "prod", Service: "web", Want: "running tasks", Why: "no running task (desired 2)"}
	noDigest := report.Verification{Cluster: "prod", Service: "api", Task: "t3", Container: "app", Want: "sha256:a", Why: "ECS reports no image digest for this container"}
	cases := []struct {
		name   string
		vs     []report.Verification
		want   report.Outcome
		reason string
	}{
		{"zero checks is unverified, never an all-clear", nil, report.Unverified, "nothing was checked"},
		{"every check passing is verified", []report.Verification{good, good}, report.Verified, "(2)"},
		{"one container on another digest is a mismatch", []report.Verification{good, wrong}, report.Mismatch, "1 of 2"},
		{"a service without running tasks is unverified, not verified", []report.Verification{good, noTask}, report.Unverified, "prod/web: no running task"},
		{"a container whose digest ECS does not report is unverified", []report.Verification{noDigest}, report.Unverified, "no image digest"},
		{"a mismatch outranks what could not be checked", []report.Verification{noTask, wrong}, report.Mismatch, "2 of 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Outcome(tc.vs)
			if got != tc.want || !strings.Contains(reason, tc.reason) {
				t.Errorf("Outcome = %s, %q; want %s with %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}
