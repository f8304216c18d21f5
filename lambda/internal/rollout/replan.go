package rollout

import (
	"context"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// maxReplans bounds how often services that moved under a run are planned again.
const maxReplans = 3

// applyAndReplan applies pl. Services whose task definition changed while it ran (a
// concurrent run deploying another repository of the same task definition, a person, a
// rollback) are planned again from the revision they run now and applied again, so no
// concurrent change is lost. What the new plans find already pinned or not deployable is
// added to rep. The result is what every round did together.
func (e *Engine) applyAndReplan(ctx context.Context, t *Target, pl plan.Plan, pushed imageref.Pushed, audit apply.Audit, rep *report.Report) apply.Result {
	var total apply.Result
	var running map[discover.ServiceID]string // what moved services run now
	for round := 0; ; round++ {
		res := t.Applier.Apply(ctx, pl, audit, running)
		moved := res.Moved
		res.Moved = nil
		total.Add(res)
		if len(moved) == 0 {
			return total
		}
		if round == maxReplans {
			total.Pending = append(total.Pending, apply.MovedStep(moved))
			return total
		}
		running = map[discover.ServiceID]string{}
		for _, m := range moved {
			running[m.Service.ID()] = m.Running
		}
		e.Log.Warn("services changed task definition while deploying; planning again", "services", len(moved), "round", round+1)
		var err error
		if pl, err = e.replan(ctx, t, pushed, moved); err != nil {
			step := apply.MovedStep(moved)
			step.Name, step.Err = "plan again for services that moved", err
			total.Pending = append(total.Pending, step)
			return total
		}
		rep.Unchanged = append(rep.Unchanged, pl.Unchanged...)
		rep.Skipped = append(rep.Skipped, pl.Skipped...)
	}
}

// replan plans the push again for services that moved, from the revisions they run now.
func (e *Engine) replan(ctx context.Context, t *Target, pushed imageref.Pushed, moved []apply.Moved) (plan.Plan, error) {
	fleet := &discover.Fleet{TaskDefinitions: map[string]*discover.TaskDefinition{}}
	for _, m := range moved {
		arn := m.Service.TaskDefinition
		if _, ok := fleet.TaskDefinitions[arn]; !ok {
			td, err := t.Discoverer.Describe(ctx, arn)
			if err != nil {
				return plan.Plan{}, err
			}
			fleet.TaskDefinitions[arn] = td
		}
		fleet.Services = append(fleet.Services, m.Service)
	}
	return plan.Make(plan.Input{Pushed: pushed, Fleet: fleet, RequireOptIn: e.Config.RequireOptIn}), nil
}
