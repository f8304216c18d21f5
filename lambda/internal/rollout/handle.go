package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// HandleRaw is the whole function: decode and validate the raw event, handle it, log the
// report. The Lambda entry point and `pinroll replay` both call it. A panic anywhere below
// becomes an error (so the event is retried and, at worst, kept in the dead-letter queue).
func (e *Engine) HandleRaw(ctx context.Context, raw []byte) (rep report.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.Log.Error("panic while handling event", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			rep, err = report.Report{}, fmt.Errorf("internal error while handling the event: %v", p)
		}
	}()
	ev, err := trigger.Decode(raw)
	if err != nil {
		e.Log.Error("rejected event", "error", err)
		return report.Report{}, err
	}
	rep, err = e.Handle(ctx, ev)
	if err != nil {
		e.Log.Error("event failed", "event_id", ev.ID, "kind", string(ev.Kind), "error", err)
		return report.Report{}, err
	}
	rep.Normalize()
	level := slog.LevelInfo
	if rep.Failed() {
		level = slog.LevelError
	}
	e.Log.Log(ctx, level, "report", "event_id", rep.EventID, "kind", rep.Kind, "outcome", string(rep.Outcome), "reason", rep.Reason, "report", rep)
	return rep, nil
}
