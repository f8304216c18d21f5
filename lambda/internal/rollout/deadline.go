package rollout

import (
	"context"
	"errors"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// SafetyMargin is how long before an invocation's deadline pinroll stops starting work, so
// that it can return its partial-progress error (and log it) before Lambda kills it: a tenth
// of the time left, at least 1 s and at most 10 s.
func SafetyMargin(remaining time.Duration) time.Duration {
	return min(max(remaining/10, time.Second), 10*time.Second)
}

// WithSafetyMargin returns ctx with its deadline moved margin earlier (ctx unchanged but
// cancellable when it has no deadline). Lambda's handler gives the engine this context: work
// stops at the new deadline, and the engine returns an IncompleteError naming what was done
// and what was not, instead of being killed mid-way; the redelivery finishes the job.
func WithSafetyMargin(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	return context.WithCancel(ctx)
}

// maxReplans bounds how often services that moved under a run are planned again.
const maxReplans = 3

// applyAndReplan applies pl. Services whose task definition changed while it ran (a
// concurrent run deploying another repository of the same task definition, a person, a
// rollback) are planned again from the revision they run now and applied again, so no
// concurrent change is lost. What the new plans find already pinned or not deployable is
// added to rep.
func (e *Engine) applyAndReplan(ctx context.Context, pl plan.Plan, t imageref.Pushed, audit apply.Audit, rep *report.Report) ([]report.Change, error) {
	var changes []report.Change
	var running map[string]string // what moved services run now
	for round := 0; ; round++ {
		res, err := e.Applier.RunExpecting(ctx, pl, audit, running)
		changes = append(changes, res.Changes...)
		if err != nil {
			var ie *apply.IncompleteError
			if errors.As(err, &ie) {
				ie.Done = changes
				ie.Pending = append(ie.Pending, apply.MovedError(res).Pending...)
			}
			return changes, err
		}
		if len(res.Moved) == 0 {
			return changes, nil
		}
		if round == maxReplans {
			return changes, apply.MovedError(apply.Result{Changes: changes, Moved: res.Moved})
		}
		running = map[string]string{}
		for _, m := range res.Moved {
			running[apply.Key(m.Service)] = m.Running
		}
		e.Log.Warn("services changed task definition while deploying; planning again", "services", len(res.Moved), "round", round+1)
		if pl, err = e.replan(ctx, t, res.Moved); err != nil {
			ie := apply.MovedError(apply.Result{Changes: changes, Moved: res.Moved})
			ie.Step, ie.Err = "plan again for services that moved", err
			return changes, ie
		}
		rep.Unchanged = append(rep.Unchanged, pl.Unchanged...)
		rep.Skipped = append(rep.Skipped, pl.Skipped...)
	}
}

// replan plans the push again for services that moved, from the revisions they run now.
func (e *Engine) replan(ctx context.Context, t imageref.Pushed, moved []apply.Moved) (plan.Plan, error) {
	fleet := &discover.Fleet{TaskDefinitions: map[string]*discover.TaskDefinition{}}
	for _, m := range moved {
		arn := m.Service.TaskDefinition
		if _, ok := fleet.TaskDefinitions[arn]; !ok {
			td, err := e.Discoverer.Describe(ctx, arn)
			if err != nil {
				return plan.Plan{}, err
			}
			fleet.TaskDefinitions[arn] = td
		}
		fleet.Services = append(fleet.Services, m.Service)
	}
	return plan.Make(plan.Input{Pushed: t, Fleet: fleet, RequireOptIn: e.Config.RequireOptIn}), nil
}
