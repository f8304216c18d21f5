package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
)

func TestGateHoldsServicesThatNeedApproval(t *testing.T) {
	free := discover.Service{Cluster: "prod", Name: "api"}
	guarded := discover.Service{Cluster: "prod", Name: "payments", Tags: map[string]string{TagApproval: "required"}}
	lookalike := discover.Service{Cluster: "prod", Name: "web", Tags: map[string]string{TagApproval: "Required"}} // Excluded refuses it earlier
	names := func(ss []discover.Service) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
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
			got := Gate(in)
			if len(got.Registrations) != 1 {
				t.Fatalf("%d registrations, want the 1 kept", len(got.Registrations))
			}
			if diff := cmp.Diff(tc.wantMove, names(got.Registrations[0].Services)); diff != "" {
				t.Errorf("moved (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantHold, names(got.Registrations[0].Held)); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if len(in.Registrations[0].Held) != 0 || len(in.Registrations[0].Services) != len(tc.services) {
				t.Error("Gate changed its input")
			}
		})
	}
}

func TestUnknownApprovalValueIsNeverDeployedAutomatically(t *testing.T) {
	svc := discover.Service{Status: "ACTIVE", Controller: "ECS", Tags: map[string]string{TagApproval: "yes"}}
	if why := Excluded(svc, false); why != "pinroll:approval=yes is not known (known: required)" {
		t.Errorf("Excluded = %q", why)
	}
}
