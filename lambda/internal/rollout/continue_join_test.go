package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// A hub whose push continues in two target accounts, each at its own pace: dev has fewer
// services than prod, so its chain ends first. The home account runs nothing of the image.
var joinServices = map[string]int{devAccount: 70, prodAccount: 120}

// jworld is that hub on the emulator, with the continuation queue and the index table.
type jworld struct {
	t        *testing.T
	em       *emulator.Emulator
	cfg      aws.Config
	table    string // "" for a hub without the index table
	queueURL string
	sqs      *sqs.Client
	clock    fastClock
	notes    *notified
	digest   string
	targets  map[string]*awstest.World
	reports  []report.Report
	// beforeSteps, when set, runs between the first invocation and the continuations.
	beforeSteps func(*jworld)
}

func newJWorld(t *testing.T, withTable bool) *jworld {
	t.Helper()
	sqsTime := emulator.NewManualClock(time.Now())
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{Now: sqsTime.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w := &jworld{t: t, em: srv.Emulator(), cfg: fastConfig(t, srv.URL()), clock: fastClock{start: time.Now()}, notes: &notified{}, targets: map[string]*awstest.World{}}
	setup := awstest.Config(t, srv.URL())
	hub := awstest.NewWorld(t, setup)
	hub.Repository("app")
	hub.Push("app", "latest", "app v1")
	stsClient := sts.NewFromConfig(setup)
	for account, n := range joinServices {
		tw := awstest.NewWorld(t, rollout.AssumeRole(setup, stsClient, roleOf(account)))
		tw.Cluster("prod")
		for i := range n {
			family := fmt.Sprintf("td%02d", i)
			tw.Service("prod", fmt.Sprintf("s%02d", i), tw.TaskDefinition(family, awstest.Container("sidecar", hub.Image("app", "latest"))))
		}
		w.targets[account] = tw
	}
	w.digest = hub.Push("app", "latest", "app v2")
	if w.queueURL, err = w.em.CreateQueue(awstest.Account, awstest.Region, "pinroll-continue.fifo", "pinroll-continue-dlq.fifo", 3, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	w.sqs = sqs.NewFromConfig(setup)
	if withTable {
		w.table = "pinroll-index"
		if _, err := index.Create(context.Background(), dynamodb.NewFromConfig(setup), w.table); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// newEngine is a new process of the hub's function: every target paced on the fast clock.
func (w *jworld) newEngine(log *slog.Logger) *rollout.Engine {
	pc := config.Config{ContinueQueue: w.queueURL, IndexTable: w.table}
	for _, a := range slices.Sorted(maps.Keys(joinServices)) {
		pc.TargetRoles = append(pc.TargetRoles, roleOf(a))
	}
	e := atHome(rollout.FromAWSConfig(pc, w.cfg, log))
	e.Notifier = w.notes
	for _, t := range e.Targets {
		t.Discoverer.Pace = discover.NewPacer(discover.ECSLimits, w.clock)
	}
	e.Budget = func(ctx context.Context) (time.Duration, bool) {
		d, ok := ctx.Deadline()
		return time.Until(d) * contScale, ok
	}
	return e
}

// run is the push's first invocation and then every continuation, until the queue is empty.
func (w *jworld) run() {
	w.t.Helper()
	ctx, cancel := invocation()
	first, err := w.newEngine(slog.New(slog.DiscardHandler)).HandleRaw(ctx, awstest.PushEvent("hub-push", awstest.Account, "app", "latest", w.digest))
	cancel()
	if err != nil {
		w.t.Fatalf("first invocation: %v", err)
	}
	if first.Continuing == 0 {
		w.t.Fatalf("first invocation: %s %q, nothing continues; the test needs a push that does not fit", first.Outcome, first.Reason)
	}
	w.reports = append(w.reports, first)
	if w.beforeSteps != nil {
		w.beforeSteps(w)
	}
	m := &awstest.EventSourceMapping{SQS: w.sqs, QueueURL: w.queueURL, BatchSize: 1, Invoke: func(_ context.Context, event []byte) ([]byte, error) {
		ctx, cancel := invocation()
		defer cancel()
		logged := &awstest.Reports{}
		out, err := w.newEngine(logged.Logger()).Invoke(ctx, event)
		if err != nil {
			return nil, err
		}
		w.reports = append(w.reports, logged.Take()...)
		return json.Marshal(out)
	}}
	deliveries, err := m.Drain(context.Background(), 30)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range deliveries {
		if d.Err != nil || len(d.Failed) > 0 {
			w.t.Errorf("delivery %v: error %v, failed %v", d.Messages, d.Err, d.Failed)
		}
	}
	if left := w.em.QueueMessages(awstest.Account, awstest.Region, "pinroll-continue.fifo"); len(left) != 0 {
		w.t.Errorf("the queue still holds %d messages", len(left))
	}
	if dlq := w.em.QueueMessages(awstest.Account, awstest.Region, "pinroll-continue-dlq.fifo"); len(dlq) != 0 {
		w.t.Errorf("the dead-letter queue holds %d messages", len(dlq))
	}
}

// everyServicePinned checks that every target service runs the pushed digest, each family
// with one new revision only.
func (w *jworld) everyServicePinned() {
	w.t.Helper()
	for account, n := range joinServices {
		tw := w.targets[account]
		for i := range n {
			if r := len(tw.Revisions(fmt.Sprintf("td%02d", i))); r != 2 {
				w.t.Errorf("%s td%02d has %d revisions, want 2", account, i, r)
			}
			if got := image(tw.ServiceTaskDefinition("prod", fmt.Sprintf("s%02d", i)), "sidecar"); !strings.HasSuffix(got, "@"+w.digest) {
				w.t.Errorf("%s prod/s%02d runs %s", account, i, got)
			}
		}
	}
}

// finals are the final reports the steps logged, by account (the event's own, joined, under "").
func (w *jworld) finals() (perAccount map[string]report.Report, event []report.Report) {
	perAccount = map[string]report.Report{}
	for _, r := range w.reports {
		switch {
		case r.Totals == nil:
		case r.Joining > 0:
			perAccount[accountOf(r)] = r
		default:
			event = append(event, r)
		}
	}
	return perAccount, event
}

// A push that continues in several target accounts ends with ONE final report — published by
// the account that finishes last, notified once — whose totals are the sum over the accounts
// and whose accounts list each one's share; the other account's final report is logged with
// joining and not notified.
func TestContinuationAcrossAccountsEndsWithOneFinalReport(t *testing.T) {
	w := newJWorld(t, true)
	w.run()
	w.everyServicePinned()

	perAccount, event := w.finals()
	if len(event) != 1 {
		t.Fatalf("%d final reports of the event, want 1: %+v", len(event), event)
	}
	final := event[0]
	want := joinServices[devAccount] + joinServices[prodAccount]
	if final.Outcome != report.Deployed || final.Totals.Changes != want || !strings.Contains(final.Reason, "in 3 accounts") {
		t.Errorf("final report: %s %q, totals %+v; want deployed, %d changes, in 3 accounts", final.Outcome, final.Reason, *final.Totals, want)
	}
	if final.Totals.Invocations != len(w.reports) {
		t.Errorf("final totals count %d invocations; %d ran", final.Totals.Invocations, len(w.reports))
	}
	shares := map[string]int{}
	for _, a := range final.Accounts {
		shares[a.Account] = a.Totals.Changes
	}
	if shares[devAccount] != joinServices[devAccount] || shares[prodAccount] != joinServices[prodAccount] || len(final.Accounts) != 3 {
		t.Errorf("accounts %+v; want the home account (nothing), dev %d, prod %d", final.Accounts, joinServices[devAccount], joinServices[prodAccount])
	}
	if r, ok := perAccount[devAccount]; !ok || r.Joining != 1 || !strings.Contains(r.Reason, "comes with the last of 1 account still going") {
		t.Errorf("dev's final report: %+v; want it logged with joining 1", r)
	}
	notes := w.notes.all()
	if len(notes) != 1 || notes[0].Totals == nil || notes[0].Totals.Changes != want || len(notes[0].Accounts) != 3 {
		t.Errorf("notifications: %d (%+v), want the event's final report once", len(notes), notes)
	}
	t.Logf("%d invocations; final: %s", len(w.reports), final.Reason)
}

// Without the index table, or when the join cannot be written, each account's chain reports
// on its own, and says so; nothing is lost or done twice.
func TestContinuationAcrossAccountsWithoutAJoinReportsPerAccount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		table  bool
		before func(*jworld)
		why    string
	}{
		{name: "no table", table: false},
		{name: "the join is gone", table: true, why: "could not be joined", before: func(w *jworld) {
			// As if it had expired, or the first invocation's write had not landed.
			_, err := dynamodb.NewFromConfig(w.cfg).DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
				TableName: aws.String(w.table), Key: map[string]ddbtypes.AttributeValue{index.AttrARN: &ddbtypes.AttributeValueMemberS{Value: index.JoinKey("hub-push")}},
				ConditionExpression: aws.String("attribute_exists(arn)"),
			})
			if err != nil {
				w.t.Fatalf("the first invocation began no join: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newJWorld(t, tc.table)
			w.beforeSteps = tc.before
			w.run()
			w.everyServicePinned()
			perAccount, event := w.finals()
			if len(perAccount) != 0 {
				t.Errorf("reports waiting for a join that is not there: %+v", perAccount)
			}
			notes := w.notes.all()
			accounts := map[string]bool{}
			for _, n := range notes {
				if n.Totals == nil || len(n.Accounts) != 0 || !strings.Contains(n.Reason, tc.why) {
					t.Errorf("notification %s %q, totals %v, accounts %v; want one account's final report (%q)", n.Outcome, n.Reason, n.Totals, n.Accounts, tc.why)
				}
				accounts[accountOf(n)] = true
			}
			if len(notes) != 2 || !accounts[devAccount] || !accounts[prodAccount] || len(event) != 2 {
				t.Errorf("%d notifications (accounts %v), %d final reports; want one per continuing account", len(notes), accounts, len(event))
			}
		})
	}
}

// accountOf is the account of the first service a one-account report lists.
func accountOf(r report.Report) string {
	for _, c := range r.Changes {
		return c.Account
	}
	for _, u := range r.Unchanged {
		return u.Account
	}
	return "?"
}
