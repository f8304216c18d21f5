package plan

import "github.com/pinroll/pinroll/lambda/internal/discover"

// ApprovalRequired is the pinroll:approval value that holds every automatic deploy.
const ApprovalRequired = "required"

// Gate decides what moves now: a service tagged pinroll:approval=required is not updated by
// a push, a replica or reconciliation; its registration is kept (so approving is one
// UpdateService) and the service is held. It is a pure function of the plan.
func Gate(p Plan) Plan {
	out := p
	out.Registrations = make([]Registration, len(p.Registrations))
	for i, reg := range p.Registrations {
		reg.Services, reg.Held = nil, append([]discover.Service(nil), reg.Held...)
		for _, svc := range p.Registrations[i].Services {
			if NeedsApproval(svc) {
				reg.Held = append(reg.Held, svc)
			} else {
				reg.Services = append(reg.Services, svc)
			}
		}
		out.Registrations[i] = reg
	}
	return out
}

// NeedsApproval reports whether svc's deploys wait for someone's approval.
func NeedsApproval(svc discover.Service) bool { return svc.Tags[TagApproval] == ApprovalRequired }
