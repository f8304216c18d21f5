package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
)

func TestGateHoldsServicesThatNeedApproval(t *testing.T) {
	free := discover.Service{Cluster: "prod", Name: "api", ARN: "arn:api"}
	guarded := discover.Service{Cluster: "prod", Name: "payments", ARN: "arn:payments", Tags: map[string]string{TagApproval: "required"}}
	lookalike := discover.Service{Cluster: "prod", Name: "web", ARN: "arn:web", Tags: map[string]string{TagApproval: "Required"}} // Excluded refuses it earlier
	names := func(ss []discover.Service) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	heldNames := func(hs []HeldService) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Service.Name)
		}
		return out
	}
	cases := []struct {
		name               string
		services           []discover.Service
		wantMove, wantHold []string
	}{
		{"a service without the tag moves", []discover.Service{free}, []string{"api"}, nil},
		{"a service that needs approval is held, its registration kept", []discover.Service{guarded}, nil, []string{"payments"}},
		{"one task definition, one service of each kind", []discover.Service{free, guarded}, []string{"api"}, []string{"payments"}},
		{"only the exact value holds", []discover.Service{lookalike}, []string{"web"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Plan{Registrations: []Registration{{Services: tc.services}}}
			got := Gate(in, Stage(StageInput{Members: Members(in)}))
			if len(got.Registrations) != 1 {
				t.Fatalf("%d registrations, want the 1 kept", len(got.Registrations))
			}
			if diff := cmp.Diff(tc.wantMove, names(got.Registrations[0].Services)); diff != "" {
				t.Errorf("moved (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantHold, heldNames(got.Registrations[0].Held)); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if len(in.Registrations[0].Held) != 0 || len(in.Registrations[0].Services) != len(tc.services) {
				t.Error("Gate changed its input")
			}
		})
	}
}

func TestGateSkipsServicesWhoseDeploymentFailed(t *testing.T) {
	a := discover.Service{Cluster: "dev", Name: "a", ARN: "arn:a"}
	b := discover.Service{Cluster: "prod", Name: "b", ARN: "arn:b", Tags: map[string]string{TagWave: "1"}}
	in := Plan{Registrations: []Registration{{Services: []discover.Service{a}}, {Services: []discover.Service{b}}}}
	s := Stage(StageInput{Members: []Member{{Service: a, Progress: Failed, Why: "rolled back"}, {Service: b, Wave: 1}}})
	got := Gate(in, s)
	if len(got.Registrations) != 1 || len(got.Registrations[0].Held) != 1 || got.Registrations[0].Held[0].Service.Name != "b" {
		t.Fatalf("registrations = %+v; want only b's, held", got.Registrations)
	}
	if len(got.Skipped) != 1 || got.Skipped[0].Service != "a" {
		t.Fatalf("skipped = %+v; want dev/a, whose deployment failed", got.Skipped)
	}
	if want := "waits: wave 0 halted: dev/a rolled back"; got.Registrations[0].Held[0].Why != want {
		t.Errorf("b waits because %q, want %q", got.Registrations[0].Held[0].Why, want)
	}
}

func TestUnknownApprovalValueIsNeverDeployedAutomatically(t *testing.T) {
	svc := discover.Service{Status: "ACTIVE", Controller: "ECS", Tags: map[string]string{TagApproval: "yes"}}
	if why := Excluded(svc, false); why != "pinroll:approval=yes is not known (known: required)" {
		t.Errorf("Excluded = %q", why)
	}
}
