package rollout

import (
	"context"
	"time"
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
