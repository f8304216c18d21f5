package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// A share stays within its bound however many services it carries, so that every account's
// share fits in one join item; cutting it keeps its totals and outcome.
func TestEncodePartFitsTheJoin(t *testing.T) {
	part := joinPart{AccountTotals: report.AccountTotals{Account: "222222222222", Outcome: report.Deployed, Reason: strings.Repeat("why ", 500),
		Totals: report.Totals{Changes: 1000, Failed: 20, Held: 20, Invocations: 3}}}
	for i := range report.MaxCarried {
		s := report.Service{Account: "222222222222", Cluster: "prod", Service: fmt.Sprintf("%s%03d", strings.Repeat("s", 200), i), Why: strings.Repeat("w", 300)}
		part.Held, part.Failed = append(part.Held, s), append(part.Failed, s)
	}
	for _, accounts := range []int{2, 40, 100, 1000} {
		raw := encodePart(part, accounts)
		if len(raw) > maxPart(accounts) {
			t.Errorf("%d accounts: a share of %d bytes, more than %d", accounts, len(raw), maxPart(accounts))
		}
		if accounts*maxPart(accounts) > 350_000 {
			t.Errorf("%d accounts × %d bytes do not fit one join item", accounts, maxPart(accounts))
		}
		var got joinPart
		if err := json.Unmarshal(raw, &got); err != nil || got.Account != part.Account || got.Totals != part.Totals || got.Outcome != part.Outcome {
			t.Errorf("%d accounts: the cut share reads %+v, %v", accounts, got.AccountTotals, err)
		}
	}
}

// The event's final report sums the accounts' totals — the first invocation, which every
// chain began with, counted once — lists each account, and names an account that stopped.
func TestCombineSumsTheAccounts(t *testing.T) {
	shares := []joinPart{
		{AccountTotals: report.AccountTotals{Account: "111111111111", Outcome: report.Skipped, Totals: report.Totals{Invocations: 1}}},
		{AccountTotals: report.AccountTotals{Account: "222222222222", Outcome: report.Deployed, Totals: report.Totals{Changes: 70, Invocations: 2}}},
		{AccountTotals: report.AccountTotals{Account: "333333333333", Outcome: report.Skipped, Reason: "the rollout stops at step 2: a newer push", Totals: report.Totals{Changes: 40, Held: 2, Invocations: 3}},
			Held: []report.Service{{Service: "pay"}}, Stopped: true},
	}
	var rep report.Report
	combine(&rep, shares, "sha256:abc", time.Now().Add(-time.Minute))
	want := report.Totals{Changes: 110, Held: 2, Invocations: 4}
	if *rep.Totals != want {
		t.Errorf("totals %+v, want %+v", *rep.Totals, want)
	}
	if rep.Outcome != report.Deployed || len(rep.Accounts) != 3 || len(rep.Held) != 1 {
		t.Errorf("%s, %d accounts, held %v", rep.Outcome, len(rep.Accounts), rep.Held)
	}
	for _, w := range []string{"110 services pinned to sha256:abc", "over 4 invocations", "in 3 accounts", "1 account stopped early (333333333333: the rollout stops at step 2"} {
		if !strings.Contains(rep.Reason, w) {
			t.Errorf("reason %q does not say %q", rep.Reason, w)
		}
	}
}

// fakeJoins records whether each call's context was still usable.
type fakeJoins struct{ deadCtx []string }

func (f *fakeJoins) Begin(ctx context.Context, _ string, _ []string, _ map[string][]byte) error {
	if ctx.Err() != nil {
		f.deadCtx = append(f.deadCtx, "Begin")
	}
	return ctx.Err()
}

func (f *fakeJoins) Finish(ctx context.Context, _, _ string, _ []byte) (map[string][]byte, int, error) {
	if ctx.Err() != nil {
		f.deadCtx = append(f.deadCtx, "Finish")
	}
	return nil, 1, ctx.Err()
}

type fakeQueue struct{ sent int }

func (q *fakeQueue) SendMessage(ctx context.Context, _ *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	q.sent++
	return &sqs.SendMessageOutput{}, nil
}

// The join is written after the invocation has stopped starting work, when the safety margin
// may have ended its context already: it gets a few seconds of its own, as the messages do, so
// that a push cut short at the margin still ends with one report of the whole event.
func TestTheJoinOutlivesTheInvocationsContext(t *testing.T) {
	joins, queue := &fakeJoins{}, &fakeQueue{}
	e := New(config.Config{ContinueQueue: "https://sqs.us-east-1.amazonaws.com/111111111111/q.fifo"}, nil, nil, slog.New(slog.DiscardHandler))
	e.Targets = []*Target{NewTarget("111111111111", "", nil, nil), NewTarget("222222222222", "arn:aws:iam::222222222222:role/t", nil, nil)}
	e.Joins, e.Queue = joins, queue
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the margin is reached
	p := trigger.Push{EventID: "e1", Account: "111111111111", Region: "us-east-1", Repository: "app", Tag: "latest", Digest: "sha256:" + strings.Repeat("a", 64)}
	rest := []discover.Service{{ClusterARN: "arn:aws:ecs:us-east-1:222222222222:cluster/prod", Cluster: "prod", Name: "api"}}
	n, errs := e.continueTargets(ctx, p, map[*Target]*targetDone{e.Targets[0]: {ok: true}, e.Targets[1]: {rest: rest, ok: true}})
	if n != 1 || len(errs) != 0 || queue.sent != 1 {
		t.Errorf("continued %d services (errors %v, %d sent), want 1", n, errs, queue.sent)
	}
	rep := report.Report{Totals: &report.Totals{Invocations: 2}}
	e.join(ctx, &rep, trigger.Continuation{Push: p, Target: "222222222222", Join: 2, Began: time.Now()}, false)
	if len(joins.deadCtx) != 0 {
		t.Errorf("%v got the invocation's done context", joins.deadCtx)
	}
	if rep.Joining != 1 {
		t.Errorf("the account's report: joining %d (%q), want 1", rep.Joining, rep.Reason)
	}
}
