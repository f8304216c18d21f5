package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/metrics"
	"github.com/pinroll/pinroll/lambda/internal/notify"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// Notifier publishes reports worth a person's attention (notify.Topic does, to SNS).
type Notifier interface {
	Notify(ctx context.Context, rep report.Report) (bool, error)
}

// HandleRaw is the whole function: decode and validate the raw event, handle it, log the
// report with its metrics, notify. The Lambda entry point and `pinroll replay` both call it.
// A panic anywhere below becomes an error (so the event is retried and, at worst, kept in the
// dead-letter queue).
func (e *Engine) HandleRaw(ctx context.Context, raw []byte) (rep report.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.Log.Error("panic while handling event", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			rep, err = report.Report{}, fmt.Errorf("internal error while handling the event: %v", p)
		}
	}()
	ctx, calls := metrics.WithCounter(ctx)
	ev, err := trigger.Decode(raw)
	if err != nil {
		e.Log.Error("rejected event", "error", err)
		e.finish(ctx, report.Report{Kind: "invalid", Outcome: notify.Failed, Reason: err.Error()}, calls, time.Time{})
		return report.Report{}, err
	}
	rep, err = e.Handle(ctx, ev)
	var pushed time.Time
	if ev.Push != nil {
		pushed = ev.Push.Time
	}
	if err != nil {
		e.Log.Error("event failed", "event_id", ev.ID, "kind", string(ev.Kind), "error", err)
		e.finish(ctx, report.Report{EventID: ev.ID, Kind: string(ev.Kind), Image: rep.Image, Outcome: notify.Failed, Reason: err.Error(), Changes: rep.Changes}, calls, pushed)
		return report.Report{}, err
	}
	rep.Normalize()
	level := slog.LevelInfo
	if rep.IsFailure() {
		level = slog.LevelError
	}
	e.Log.Log(ctx, level, "report", "event_id", rep.EventID, "kind", rep.Kind, "outcome", string(rep.Outcome), "reason", rep.Reason, "report", rep)
	e.finish(ctx, rep, calls, pushed)
	return rep, nil
}

// finish emits the event's metrics and, when worth it, its notification. Neither can fail
// the event: a lost notification is logged, the work itself is done (or will be retried).
func (e *Engine) finish(ctx context.Context, rep report.Report, calls *metrics.Counter, pushed time.Time) {
	// A push whose work continues is notified once, by its final report (continue.go) — with
	// several accounts joined, by the last account's (join.go).
	if e.Notifier != nil && rep.Continuing == 0 && rep.Joining == 0 {
		if sent, err := e.Notifier.Notify(ctx, rep); err != nil {
			e.Log.Warn("notification not sent", "event_id", rep.EventID, "error", err)
		} else if sent {
			e.Log.Info("notified", "event_id", rep.EventID, "subject", notify.Subject(rep))
		}
	}
	m := metrics.Event{Report: rep, Outcome: rep.Outcome, Calls: calls.Calls(), PushTime: pushed, Now: time.Now()}
	m.Emit(ctx, e.Log)
}
