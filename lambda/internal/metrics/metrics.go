// Package metrics emits CloudWatch embedded metric format (EMF): metrics carried in the
// function's own JSON log lines, so they cost no API call. It also counts the AWS calls an
// event makes, through an SDK middleware.
package metrics

import (
	"context"
	"log/slog"
	"slices"
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

// The values of the Kind dimension: what triggered the event. Anything else (an event that could
// not be decoded, a kind pinroll does not handle) is KindInvalid, so the dimension never has more
// than these four values.
const (
	KindPush       = "push"
	KindDeployment = "deployment"
	KindReconcile  = "reconcile"
	KindInvalid    = "invalid"
)

// Dimensions are the dimension sets of the event's EMF line: per outcome; none (one alarm covers
// every outcome); and per kind and outcome, which tells a reconcile repair (Kind=reconcile,
// Outcome=deployed) from a push's deployment. Outcome has the report's ten values and Kind four,
// so the sets hold at most 1 + 10 + 40 series per metric.
var Dimensions = [][]string{{"Outcome"}, {}, {"Kind", "Outcome"}}

// AccountDimensions is the one dimension set of the per-account lines (AccountFields).
var AccountDimensions = [][]string{{"Account"}}

// MaxAccountLines bounds the per-account lines of one event. The accounts a report names are the
// hub's and its configured target accounts (PINROLL_TARGET_ROLES): the Account dimension's values
// are fixed by configuration, and this cap only guards against a report that names more.
const MaxAccountLines = 100

// Kind is the event's kind as the Kind dimension takes it: one of the four Kind constants.
func (e Event) Kind() string {
	switch k := e.Report.Kind; k {
	case KindPush, KindDeployment, KindReconcile:
		return k
	}
	return KindInvalid
}

// Fields returns the log attributes that make one log line an EMF record: the metrics, per
// outcome (dimension Outcome), per kind and outcome, and, so that one alarm covers every
// outcome, without dimensions. ServicesFailed counts services that no retry can deploy (the
// report's failed list); MissingImages the pinned digests ECR no longer serves.
func (e Event) Fields() []any {
	metrics := []map[string]string{
		{"Name": "Events", "Unit": "Count"},
		{"Name": "APICalls", "Unit": "Count"},
		{"Name": "ServicesDeployed", "Unit": "Count"},
		{"Name": "VerificationMismatches", "Unit": "Count"},
		{"Name": "ServicesFailed", "Unit": "Count"},
		{"Name": "MissingImages", "Unit": "Count"},
	}
	fields := []any{
		"Outcome", string(e.Outcome),
		"Kind", e.Kind(),
		"Events", 1,
		"APICalls", e.Calls,
		"ServicesDeployed", len(e.Report.Changes) * boolInt(e.Outcome == report.Deployed),
		"VerificationMismatches", mismatches(e.Report.Verifications),
		"ServicesFailed", len(e.Report.Failed),
		"MissingImages", len(e.Report.MissingImages),
	}
	if e.Outcome == report.Deployed && !e.PushTime.IsZero() {
		metrics = append(metrics, map[string]string{"Name": "PushToDeploySeconds", "Unit": "Seconds"})
		fields = append(fields, "PushToDeploySeconds", e.Now.Sub(e.PushTime).Seconds())
	}
	return append([]any{"_aws", e.directive(Dimensions, metrics)}, fields...)
}

func (e Event) directive(dims [][]string, metrics []map[string]string) map[string]any {
	return map[string]any{
		"Timestamp": e.Now.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": dims,
			"Metrics":    metrics,
		}},
	}
}

// accountCounts is what one account contributed to an event.
type accountCounts struct{ deployed, mismatches, failed, missing int }

// AccountFields returns one small EMF line's attributes per account the report names, in order of
// account id, with the dimension Account only: Events (1: the event concerned the account),
// ServicesDeployed, VerificationMismatches, ServicesFailed and MissingImages of that account. A
// separate line per account, not more metrics on the event's line: EMF takes a dimension's value
// from the line's one root key, so one line can carry one account; and the event's line keeps its
// size whatever the number of targets. Entries without a 12-digit account are counted only on
// the event's line. An event whose report names no account (an invalid event, an error) has none.
func (e Event) AccountFields() [][]any {
	by := map[string]*accountCounts{}
	get := func(account string) *accountCounts {
		if !isAccount(account) {
			return nil
		}
		c := by[account]
		if c == nil {
			c = &accountCounts{}
			by[account] = c
		}
		return c
	}
	deployed := e.Outcome == report.Deployed
	for _, ch := range e.Report.Changes {
		if c := get(ch.Account); c != nil && deployed {
			c.deployed++
		}
	}
	for _, v := range e.Report.Verifications {
		if c := get(v.Account); c != nil && !v.OK {
			c.mismatches++
		}
	}
	for _, s := range e.Report.Failed {
		if c := get(s.Account); c != nil {
			c.failed++
		}
	}
	for _, m := range e.Report.MissingImages {
		if c := get(m.Account); c != nil {
			c.missing++
		}
	}
	for _, list := range [][]report.Service{e.Report.Unchanged, e.Report.Held, e.Report.Skipped} {
		for _, s := range list {
			get(s.Account)
		}
	}
	accounts := make([]string, 0, len(by))
	for a := range by {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts)
	if len(accounts) > MaxAccountLines {
		accounts = accounts[:MaxAccountLines]
	}
	metrics := []map[string]string{
		{"Name": "Events", "Unit": "Count"},
		{"Name": "ServicesDeployed", "Unit": "Count"},
		{"Name": "VerificationMismatches", "Unit": "Count"},
		{"Name": "ServicesFailed", "Unit": "Count"},
		{"Name": "MissingImages", "Unit": "Count"},
	}
	var out [][]any
	for _, a := range accounts {
		c := by[a]
		out = append(out, []any{
			"_aws", e.directive(AccountDimensions, metrics),
			"Account", a,
			"Outcome", string(e.Outcome),
			"Kind", e.Kind(),
			"Events", 1,
			"ServicesDeployed", c.deployed,
			"VerificationMismatches", c.mismatches,
			"ServicesFailed", c.failed,
			"MissingImages", c.missing,
		})
	}
	return out
}

// Emit logs the event's EMF line and its per-account lines, each as a "metrics" record of l: what
// the function does after each event.
func (e Event) Emit(ctx context.Context, l *slog.Logger) {
	l.InfoContext(ctx, "metrics", e.Fields()...)
	for _, f := range e.AccountFields() {
		l.InfoContext(ctx, "metrics", f...)
	}
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func mismatches(vs []report.Verification) int {
	n := 0
	for _, v := range vs {
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
