package rollout

import (
	"context"
	"time"
)

// SafetyMargin is how long before an invocation's deadline pinroll stops starting work, so
// that it can send the rest to the continuation queue (continue.go) — or, without one, return
// its partial-progress error — and log it before Lambda kills it: a tenth of the time left, at
// least 1 s and at most 10 s.
func SafetyMargin(remaining time.Duration) time.Duration {
	return min(max(remaining/10, time.Second), 10*time.Second)
}

// WithSafetyMargin returns ctx with its deadline moved margin earlier (ctx unchanged but
// cancellable when it has no deadline). Lambda's handler gives the engine this context: work
// stops at the new deadline, and the engine sends what is left as a continuation (with
// Config.ContinueQueue; the send itself gets a few seconds of the margin) or returns an
// IncompleteError naming what was done and what was not, instead of being killed mid-way.
func WithSafetyMargin(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	return context.WithCancel(ctx)
}
