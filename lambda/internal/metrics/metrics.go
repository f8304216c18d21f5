// Package metrics emits CloudWatch embedded metric format (EMF): metrics carried in the
// function's own JSON log lines, so they cost no API call. It also counts the AWS calls an
// event makes, through an SDK middleware.
package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Namespace of pinroll's CloudWatch metrics.
const Namespace = "pinroll"

type counterKey struct{}

// Counter counts AWS calls.
type Counter struct{ n atomic.Int64 }

// Calls is the number counted so far.
func (c *Counter) Calls() int64 { return c.n.Load() }

// WithCounter returns a context whose AWS calls are counted by the returned Counter.
func WithCounter(ctx context.Context) (context.Context, *Counter) {
	c := &Counter{}
	return context.WithValue(ctx, counterKey{}, c), c
}

// CountCalls is an SDK API option (aws.Config.APIOptions) that counts each operation — not
// each retry attempt — in the Counter of the call's context, if it has one.
func CountCalls(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("pinrollCountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if c, ok := ctx.Value(counterKey{}).(*Counter); ok {
				c.n.Add(1)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Event is what one handled event contributes to the metrics.
type Event struct {
	Report   report.Report
	Outcome  report.Outcome // the report's, or "failed" for an event that returned an error
	Calls    int64
	PushTime time.Time // the push event's time; zero for other kinds
	Now      time.Time
}

// Fields returns the log attributes that make one log line an EMF record: the metrics, per
// outcome (dimension Outcome) and, so that one alarm covers every outcome, without dimensions.
// ServicesFailed counts services that no retry can deploy (the report's failed list).
func (e Event) Fields() []any {
	metrics := []map[string]string{
		{"Name": "Events", "Unit": "Count"},
		{"Name": "APICalls", "Unit": "Count"},
		{"Name": "ServicesDeployed", "Unit": "Count"},
		{"Name": "VerificationMismatches", "Unit": "Count"},
		{"Name": "ServicesFailed", "Unit": "Count"},
	}
	fields := []any{
		"Outcome", string(e.Outcome),
		"Events", 1,
		"APICalls", e.Calls,
		"ServicesDeployed", len(e.Report.Changes) * boolInt(e.Outcome == report.Deployed),
		"VerificationMismatches", mismatches(e.Report),
		"ServicesFailed", len(e.Report.Failed),
	}
	if e.Outcome == report.Deployed && !e.PushTime.IsZero() {
		metrics = append(metrics, map[string]string{"Name": "PushToDeploySeconds", "Unit": "Seconds"})
		fields = append(fields, "PushToDeploySeconds", e.Now.Sub(e.PushTime).Seconds())
	}
	aws := map[string]any{
		"Timestamp": e.Now.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Outcome"}, {}},
			"Metrics":    metrics,
		}},
	}
	return append([]any{"_aws", aws}, fields...)
}

func mismatches(rep report.Report) int {
	n := 0
	for _, v := range rep.Verifications {
		if !v.OK {
			n++
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
