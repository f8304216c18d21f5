// Package sleep waits on the wall clock in a way a context can cut short: the one wait behind
// every pause of pinroll's (an SDK retry's delay, a claim's poll, a pacer's gap, the emulator's
// injected latency), so a cancelled or timed-out invocation stops waiting at once.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx is done. It returns nil once the whole of d has passed, else
// ctx.Err(). A d of zero or less returns at once (nil, unless ctx is already done, when
// either answer may come back).
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
