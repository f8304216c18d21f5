package plan

import (
	"slices"

	"github.com/pinroll/pinroll/lambda/internal/discover"
)

// ApprovalRequired is the pinroll:approval value that holds every automatic deploy.
const ApprovalRequired = "required"

// HeldService is a service whose new revision is registered but not deployed: it waits for
// an approval or for its wave. It records the revision in its pinroll:held tag, so that
// releasing it is one UpdateService.
type HeldService struct {
	Service discover.Service
	Hold
}

// Gate decides what moves now, as s decided (Stage): a service that waits for its wave or
// its approval is not updated by a push, a replica or reconciliation; its registration is
// kept and the service is held. A service whose deployment of this push failed is not
// deployed again: it is skipped, and says why. It is a pure function of the plan.
func Gate(p Plan, s Staging) Plan {
	out := p
	out.Skipped = slices.Clone(p.Skipped)
	out.Registrations = nil
	for _, reg := range p.Registrations {
		services := reg.Services
		reg.Services, reg.Held = nil, slices.Clone(reg.Held)
		for _, svc := range services {
			id := svc.ID()
			if why, failed := s.Failed[id]; failed {
				out.Skipped = append(out.Skipped, entry(svc, "not deployed again: its deployment of this image failed ("+why+"); a newer push deploys it, or pinroll approve after a push holds it"))
				continue
			}
			if h, held := s.Hold[id]; held {
				reg.Held = append(reg.Held, HeldService{Service: svc, Hold: h})
				continue
			}
			reg.Services = append(reg.Services, svc)
		}
		if len(reg.Services)+len(reg.Held) > 0 {
			out.Registrations = append(out.Registrations, reg)
		}
	}
	return out
}

// NeedsApproval reports whether svc's deploys wait for someone's approval.
func NeedsApproval(svc discover.Service) bool { return svc.Tags[TagApproval] == ApprovalRequired }
