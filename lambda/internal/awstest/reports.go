package awstest

import (
	"context"
	"log/slog"
	"sync"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Reports is a slog handler that keeps every report the engine logs (the "report" attribute
// of its report and final report lines), so a test can read what an invocation answered
// where the answer itself is something else (an SQS event's batch response). Safe for the
// engine's parallel targets.
type Reports struct {
	mu   sync.Mutex
	list []report.Report
}

// Logger returns a logger that records into r.
func (r *Reports) Logger() *slog.Logger { return slog.New(r) }

// Take returns the reports recorded since the last Take, and forgets them.
func (r *Reports) Take() []report.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.list
	r.list = nil
	return out
}

func (*Reports) Enabled(context.Context, slog.Level) bool { return true }

func (r *Reports) Handle(_ context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if rep, ok := a.Value.Any().(report.Report); ok && a.Key == "report" {
			r.mu.Lock()
			r.list = append(r.list, rep)
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

func (r *Reports) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *Reports) WithGroup(string) slog.Handler      { return r }
