package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// The continuation tests run a push of a sidecar image used by every task definition of a
// small fleet on a clock contScale× faster than the wall clock: the pacer's buckets
// (RegisterTaskDefinition: 15 at once, then 1 a second) run on it, and each invocation may
// start work for contInvocation of it, so the push needs several invocations.
const (
	contScale      = 20
	contInvocation = 40 * time.Second // of the scaled clock: 2 s of wall time
	contServices   = 60
)

type fastClock struct{ start time.Time }

func (c fastClock) Now() time.Time { return c.start.Add(time.Since(c.start) * contScale) }

func (c fastClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d / contScale)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notified records the reports an engine notifies.
type notified struct {
	mu      sync.Mutex
	reports []report.Report
}

func (n *notified) Notify(_ context.Context, rep report.Report) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reports = append(n.reports, rep)
	return true, nil
}

func (n *notified) all() []report.Report {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]report.Report(nil), n.reports...)
}

// cworld is an emulator with a fleet of contServices services, each with its own task
// definition running app:latest as a sidecar, and a FIFO continuation queue with a
// dead-letter queue after 3 receives.
type cworld struct {
	*rworld
	n        int // services
	clock    fastClock
	sqsTime  *emulator.ManualClock
	queueURL string
	sqs      *sqs.Client
	notes    *notified
	reports  []report.Report // every report an invocation logged or returned, in order
}

func newCWorld(t *testing.T, services int) *cworld {
	t.Helper()
	spec := fleetSpec{repos: map[string][]string{"app": {"app v1", "app v2"}, "main": {"main v1"}}, clusters: []string{"c0", "c1"}}
	for i := range services {
		family := fmt.Sprintf("td%02d", i)
		spec.tds = append(spec.tds, taskDefJSON(family, containerJSON("main", "{{registry}}/main:latest"), containerJSON("sidecar", "{{registry}}/app:latest")))
		spec.services = append(spec.services, serviceJSON(fmt.Sprintf("c%d", i%2), fmt.Sprintf("s%02d", i), family+":1"))
	}
	sqsTime := emulator.NewManualClock(time.Now())
	w := &cworld{n: services, rworld: newRWorld(t, spec.build(t), config.Config{}, emulator.Options{Now: sqsTime.Now}), clock: fastClock{start: time.Now()}, sqsTime: sqsTime, notes: &notified{}}
	url, err := w.em.CreateQueue(awstest.Account, "us-east-1", "pinroll-continue.fifo", "pinroll-continue-dlq.fifo", 3, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w.queueURL, w.sqs = url, sqs.NewFromConfig(w.cfg)
	return w
}

// engine is a new process: fresh caches, a fresh pacer on the fast clock, the queue configured.
func (w *cworld) newEngine() *rollout.Engine {
	e := atHome(rollout.New(config.Config{ContinueQueue: w.queueURL}, ecs.NewFromConfig(w.cfg), ecr.NewFromConfig(w.cfg), slog.New(slog.DiscardHandler)))
	e.Queue, e.Notifier = w.sqs, w.notes
	e.Home().Discoverer.Pace = discover.NewPacer(discover.ECSLimits, w.clock)
	e.Budget = func(ctx context.Context) (time.Duration, bool) {
		d, ok := ctx.Deadline()
		return time.Until(d) * contScale, ok
	}
	return e
}

// invocation is the context of one invocation: contInvocation of the fast clock.
func invocation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), contInvocation/contScale)
}

// push is the first invocation, for the push of app:latest (app v2).
func (w *cworld) push(t *testing.T, id string) report.Report {
	t.Helper()
	ctx, cancel := invocation()
	defer cancel()
	rep, err := w.newEngine().HandleRaw(ctx, awstest.PushEvent(id, awstest.Account, "app", "latest", digestOf("app v2")))
	if err != nil {
		t.Fatalf("first invocation: %v", err)
	}
	w.reports = append(w.reports, rep)
	return rep
}

// mapping is the event source mapping: each invocation a new process.
func (w *cworld) mapping() *awstest.EventSourceMapping {
	return &awstest.EventSourceMapping{SQS: w.sqs, QueueURL: w.queueURL, BatchSize: 1, Invoke: func(_ context.Context, event []byte) ([]byte, error) {
		ctx, cancel := invocation()
		defer cancel()
		e := w.newEngine()
		logged := &awstest.Reports{}
		e.Log = logged.Logger()
		out, err := e.Invoke(ctx, event)
		if err != nil {
			return nil, err
		}
		w.reports = append(w.reports, logged.Take()...)
		return json.Marshal(out)
	}}
}

// pinned counts the services running a revision pinned to digest, and checks that no family
// has more than two revisions (the original and one pinned): no duplicate registration.
func (w *cworld) pinned(t *testing.T, digest string) int {
	t.Helper()
	n := 0
	for i := range w.n {
		family := fmt.Sprintf("td%02d", i)
		if r := w.revisions(family); r > 2 {
			t.Errorf("%s has %d revisions: a duplicate registration", family, r)
		}
		_, images := w.images(fmt.Sprintf("c%d", i%2), fmt.Sprintf("s%02d", i))
		if strings.HasSuffix(images["sidecar"], "@"+digest) {
			n++
		}
	}
	return n
}

func (w *cworld) queued(name string) []emulator.QueueMessage {
	return w.em.QueueMessages(awstest.Account, "us-east-1", name)
}

// A push too large for one invocation continues on the queue until it is done: every service
// pinned, no revision registered twice, one final report (notified once) whose totals are the
// sum of every invocation's, and the first invocation returns "deployed" with a continuing
// count and no error.
func TestContinuationFinishesAPushAcrossInvocations(t *testing.T) {
	w := newCWorld(t, contServices)
	first := w.push(t, "big-push")
	if first.Outcome != report.Deployed || first.Continuing == 0 || len(first.Changes) == 0 || !strings.Contains(first.Reason, "the rollout continues") {
		t.Fatalf("first invocation: %s %q, %d changes, continuing %d; want deployed, some changes, the rest continuing", first.Outcome, first.Reason, len(first.Changes), first.Continuing)
	}
	if len(first.Changes)+first.Continuing != contServices {
		t.Errorf("first invocation: %d changed + %d continuing, want %d", len(first.Changes), first.Continuing, contServices)
	}
	if got := w.notes.all(); len(got) != 0 {
		t.Errorf("the continuing report was notified: %v", got)
	}
	msgs := w.queued("pinroll-continue.fifo")
	if len(msgs) != 1 || msgs[0].Group != awstest.Account {
		t.Fatalf("queue after the first invocation: %+v, want one message in group %s", msgs, awstest.Account)
	}
	t.Logf("continuation message: %d bytes for %d services", len(msgs[0].Body), first.Continuing)

	deliveries, err := w.mapping().Drain(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deliveries {
		if d.Err != nil || len(d.Failed) > 0 {
			t.Errorf("delivery %v: error %v, failed %v", d.Messages, d.Err, d.Failed)
		}
	}
	if got := w.pinned(t, digestOf("app v2")); got != contServices {
		t.Errorf("%d of %d services pinned", got, contServices)
	}
	final := w.reports[len(w.reports)-1]
	if final.Totals == nil || final.Continuing != 0 || final.Outcome != report.Deployed || !strings.Contains(final.Reason, "rollout complete") {
		t.Fatalf("final report: %s %q totals %+v continuing %d", final.Outcome, final.Reason, final.Totals, final.Continuing)
	}
	sum := 0
	for _, r := range w.reports {
		sum += len(r.Changes)
		if r.Step > 0 {
			sum += len(r.Unchanged) // moved by the rollout, an answer cut off (see Continue)
		}
	}
	if final.Totals.Changes != contServices || sum != final.Totals.Changes || final.Totals.Invocations != len(w.reports) || final.Totals.Invocations < 2 {
		t.Errorf("totals %+v; the %d invocations changed %d services together, want %d", *final.Totals, len(w.reports), sum, contServices)
	}
	notes := w.notes.all()
	if len(notes) != 1 || notes[0].Totals == nil || notes[0].Totals.Changes != contServices {
		t.Errorf("notifications: %d (%+v), want one final report with totals", len(notes), notes)
	}
	if left := w.queued("pinroll-continue.fifo"); len(left) != 0 {
		t.Errorf("queue still holds %d messages", len(left))
	}
	if dlq := w.queued("pinroll-continue-dlq.fifo"); len(dlq) != 0 {
		t.Errorf("dead-letter queue holds %d messages", len(dlq))
	}
	for _, r := range w.reports {
		for _, c := range r.Changes {
			tags := w.revisionTags(c.TaskDefinition)
			if tags["pinroll:event"] != "big-push" {
				t.Errorf("%s carries pinroll:event=%q, want the push's id", c.TaskDefinition, tags["pinroll:event"])
			}
		}
	}
	t.Logf("%d invocations: %v", len(w.reports), changesPerInvocation(w.reports))
}

func changesPerInvocation(reps []report.Report) []int {
	var out []int
	for _, r := range reps {
		out = append(out, len(r.Changes))
	}
	return out
}

func (w *cworld) revisionTags(arn string) map[string]string {
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]string{}
	for _, tag := range out.Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

// A plan that fits one invocation sends nothing.
func TestContinuationNotNeededSendsNothing(t *testing.T) {
	w := newCWorld(t, 6)
	rep := w.push(t, "small-push")
	if rep.Outcome != report.Deployed || rep.Continuing != 0 || len(rep.Changes) != 6 || rep.Totals != nil {
		t.Errorf("report: %s %q, %d changes, continuing %d", rep.Outcome, rep.Reason, len(rep.Changes), rep.Continuing)
	}
	if msgs := w.queued("pinroll-continue.fifo"); len(msgs) != 0 {
		t.Errorf("the queue holds %d messages", len(msgs))
	}
	if n := len(w.notes.all()); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

// A continuation delivered twice (a handler that sent the next step and then failed, so the
// step comes again) registers nothing twice, and the next step it sends again is dropped by
// the queue's deduplication: the chain does not fork.
func TestContinuationDeliveredTwice(t *testing.T) {
	const services = 150 // more than two invocations can register: step 1 always sends a step 2
	w := newCWorld(t, services)
	w.push(t, "twice")
	step1 := w.queued("pinroll-continue.fifo")[0].Body
	event := sqsEvent(t, "m-1", step1, 1)
	run := func() rollout.BatchResponse {
		ctx, cancel := invocation()
		defer cancel()
		resp, err := w.newEngine().HandleQueue(ctx, event)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := run(); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("step 1: %+v", resp)
	}
	if resp := run(); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("step 1 again: %+v", resp)
	}
	msgs := w.queued("pinroll-continue.fifo")
	steps := map[string]int{}
	for _, m := range msgs {
		c, err := trigger.DecodeContinuation([]byte(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		steps[fmt.Sprint(c.Step)]++
	}
	// The first invocation's message (still there: it was handled outside the mapping) and one
	// step 2, however often step 1 ran.
	if steps["1"] != 1 || steps["2"] != 1 {
		t.Errorf("queue holds steps %v; want step 1 once and step 2 once, however often step 1 ran", steps)
	}
	// The mapping now delivers step 1 a third time (its own copy), then the one step 2: the
	// chain ends once, with every service pinned and no revision registered twice.
	if _, err := w.mapping().Drain(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	finals := 0
	for _, r := range w.reports {
		if r.Totals != nil {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("%d final reports, want 1", finals)
	}

	if got := w.pinned(t, digestOf("app v2")); got != services {
		t.Errorf("%d of %d services pinned", got, services)
	}
}

func sqsEvent(t *testing.T, id, body string, receives int) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"Records": []map[string]any{{
		"messageId": id, "body": body, "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:us-east-1:" + awstest.Account + ":pinroll-continue.fifo",
		"attributes":     map[string]string{"ApproximateReceiveCount": fmt.Sprint(receives), "MessageGroupId": awstest.Account},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A newer push of the same tag while the rollout continues stops it: the continuation says
// so, deploys nothing of the stale image, and sends no further step.
func TestContinuationAfterANewerPushStops(t *testing.T) {
	w := newCWorld(t, contServices)
	first := w.push(t, "older")
	_, err := ecr.NewFromConfig(w.cfg).PutImage(context.Background(), &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageTag: aws.String("latest"), ImageManifest: aws.String(manifestOf("app v3"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.mapping().Drain(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	final := w.reports[len(w.reports)-1]
	if final.Outcome != report.Skipped || !strings.Contains(final.Reason, "the rollout stops") || !strings.Contains(final.Reason, "no longer points") || final.Totals == nil {
		t.Errorf("continuation after a newer push: %s %q totals %v", final.Outcome, final.Reason, final.Totals)
	}
	if got := w.pinned(t, digestOf("app v2")); got != len(first.Changes) {
		t.Errorf("%d services pinned to the stale digest, want only the %d of the first invocation", got, len(first.Changes))
	}
	if left := w.queued("pinroll-continue.fifo"); len(left) != 0 {
		t.Errorf("queue holds %d messages after the chain stopped", len(left))
	}
}

// Pauses and approvals set while the rollout continues hold: the paused service is skipped,
// the one needing approval holds its revision, both untouched.
func TestContinuationRespectsPausesAndApprovalsSetMeanwhile(t *testing.T) {
	w := newCWorld(t, contServices)
	first := w.push(t, "gated")
	moved := map[string]bool{}
	for _, c := range first.Changes {
		moved[c.Service] = true
	}
	var later []string
	for i := contServices - 1; i >= 0 && len(later) < 2; i-- {
		if name := fmt.Sprintf("s%02d", i); !moved[name] {
			later = append(later, name)
		}
	}
	if len(later) < 2 {
		t.Fatalf("the first invocation moved too much: %d", len(first.Changes))
	}
	paused, gated := later[0], later[1]
	w.tagService(t, paused, "pinroll:paused", "alice 2026-12-02 incident")
	w.tagService(t, gated, "pinroll:approval", "required")
	if _, err := w.mapping().Drain(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	final := w.reports[len(w.reports)-1]
	if final.Totals == nil || final.Totals.Changes != contServices-2 || final.Totals.Held != 1 || final.Totals.Skipped != 1 {
		t.Fatalf("final: %s %q totals %+v; want %d changes, 1 held, 1 skipped", final.Outcome, final.Reason, final.Totals, contServices-2)
	}
	if !hasService(final.Held, gated) {
		t.Errorf("final report's held %v does not name %s", final.Held, gated)
	}
	for _, name := range []string{paused, gated} {
		i := 0
		fmt.Sscanf(name, "s%02d", &i)
		if _, images := w.images(fmt.Sprintf("c%d", i%2), name); strings.Contains(images["sidecar"], "@") {
			t.Errorf("%s was deployed: %s", name, images["sidecar"])
		}
	}
	skipped := false
	for _, r := range w.reports {
		if hasService(r.Skipped, paused) {
			skipped = true
		}
	}
	if !skipped {
		t.Errorf("no report skips the paused %s", paused)
	}
}

func hasService(list []report.Service, name string) bool {
	for _, s := range list {
		if s.Service == name {
			return true
		}
	}
	return false
}

func (w *cworld) tagService(t *testing.T, name, key, value string) {
	t.Helper()
	i := 0
	fmt.Sscanf(name, "s%02d", &i)
	out, err := w.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(fmt.Sprintf("c%d", i%2)), Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe %s: %v", name, err)
	}
	if _, err := w.ecs.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: out.Services[0].ServiceArn, Tags: []ecstypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}}); err != nil {
		t.Fatal(err)
	}
}

// A function that fails mid-batch loses no message: the event source mapping leaves the
// batch on the queue, it comes back after its visibility timeout (receive count 2), and the
// rollout finishes; a record whose body is not a continuation is failed (listed in
// batchItemFailures, so the dead-letter queue keeps it after 3 receives), never dropped, and
// the records after it in the batch are failed too, keeping the FIFO order.
func TestContinuationSurvivesAFunctionThatFails(t *testing.T) {
	w := newCWorld(t, contServices)
	w.push(t, "crash")
	m := w.mapping()
	good := m.Invoke
	m.Invoke = func(ctx context.Context, event []byte) ([]byte, error) {
		return nil, fmt.Errorf("Runtime.ExitError: the function crashed")
	}
	d, ok, err := m.Poll(context.Background())
	if err != nil || !ok || d.Err == nil || len(d.Failed) != 1 {
		t.Fatalf("crashing delivery: %+v %v %v", d, ok, err)
	}
	if msgs := w.queued("pinroll-continue.fifo"); len(msgs) != 1 || !msgs[0].InFlight {
		t.Fatalf("after the crash the queue holds %+v, want the message, in flight", msgs)
	}
	w.sqsTime.Advance(15*time.Minute + time.Second) // its visibility timeout
	m.Invoke = good
	if _, err := m.Drain(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	if got := w.pinned(t, digestOf("app v2")); got != contServices {
		t.Errorf("%d of %d services pinned after the redelivery", got, contServices)
	}

	// A batch of a malformed record and a good one: both fail, in order.
	body := `{"format":"pinroll-continuation/1","event":{}}`
	two, _ := json.Marshal(map[string]any{"Records": []map[string]any{
		{"messageId": "bad", "body": body, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:" + awstest.Account + ":q.fifo", "attributes": map[string]string{"ApproximateReceiveCount": "1"}},
		{"messageId": "next", "body": body, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:" + awstest.Account + ":q.fifo", "attributes": map[string]string{"ApproximateReceiveCount": "1"}},
	}})
	resp, err := w.newEngine().HandleQueue(context.Background(), two)
	if err != nil || len(resp.BatchItemFailures) != 2 || resp.BatchItemFailures[0].ItemIdentifier != "bad" || resp.BatchItemFailures[1].ItemIdentifier != "next" {
		t.Errorf("malformed batch: %+v %v, want both records failed, bad first", resp, err)
	}
	// A malformed message redelivered maxReceiveCount times ends in the dead-letter queue.
	if _, err := w.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(body), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("bad")}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		_, _, _ = m.Poll(context.Background())
		w.sqsTime.Advance(15*time.Minute + time.Second)
	}
	if _, _, err := m.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dlq := w.queued("pinroll-continue-dlq.fifo"); len(dlq) != 1 || dlq[0].Body != body {
		t.Errorf("dead-letter queue: %+v, want the malformed message", dlq)
	}
}

// A continuation that could not list its services (too many to fit a message: All) plans the
// whole fleet again: the services done are unchanged, the rest deploy, nothing twice.
func TestContinuationOfEveryServiceInScope(t *testing.T) {
	w := newCWorld(t, contServices)
	first := w.push(t, "all")
	msgs := w.queued("pinroll-continue.fifo")
	c, err := trigger.DecodeContinuation([]byte(msgs[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	c.Services, c.All = nil, true
	body, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Replace the listed step by the same step for every service in scope.
	if _, _, err := (&awstest.EventSourceMapping{SQS: w.sqs, QueueURL: w.queueURL, Invoke: func(context.Context, []byte) ([]byte, error) {
		return []byte(`{"batchItemFailures":[]}`), nil
	}}).Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(string(body)), MessageGroupId: aws.String(awstest.Account), MessageDeduplicationId: aws.String("all-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.mapping().Drain(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	final := w.reports[len(w.reports)-1]
	if final.Totals == nil || final.Outcome != report.Deployed {
		t.Fatalf("final: %s %q %+v", final.Outcome, final.Reason, final.Totals)
	}
	if got := w.pinned(t, digestOf("app v2")); got != contServices {
		t.Errorf("%d of %d pinned", got, contServices)
	}
	if final.Totals.Changes+final.Totals.Unchanged < contServices || final.Totals.Changes > contServices {
		t.Errorf("totals %+v: the %d the first invocation moved are unchanged, the other %d changed", *final.Totals, len(first.Changes), contServices-len(first.Changes))
	}
}

// The main scenario on every backend — moto's SQS (a third-party implementation of the queue)
// and pinroll's emulator: a push too large for one invocation continues through the FIFO
// queue, driven by the event source mapping over the SQS API, until every service is pinned,
// nothing registered twice, with one final report whose totals are the sum.
func TestContinuationOnEveryBackend(t *testing.T) {
	const services = 90 // more than one invocation registers (15 at once, then 1 a second for 40 s)
	eachBackend(t, func(t *testing.T, cfg aws.Config) {
		ctx := context.Background()
		spec := fleetSpec{repos: map[string][]string{"app": {"app v1", "app v2"}}, clusters: []string{"c0"}}
		for i := range services {
			family := fmt.Sprintf("td%02d", i)
			spec.tds = append(spec.tds, taskDefJSON(family, containerJSON("sidecar", "{{registry}}/app:latest")))
			spec.services = append(spec.services, serviceJSON("c0", fmt.Sprintf("s%02d", i), family+":1"))
		}
		ecsClient := ecs.NewFromConfig(cfg)
		if err := spec.build(t).Seed(ctx, ecsClient, ecr.NewFromConfig(cfg)); err != nil {
			t.Fatal(err)
		}
		q := sqs.NewFromConfig(cfg)
		dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("pinroll-continue-dlq.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
		if err != nil {
			t.Fatal(err)
		}
		dlqAttrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("pinroll-continue.fifo"), Attributes: map[string]string{
			"FifoQueue": "true", "VisibilityTimeout": "900",
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, dlqAttrs.Attributes["QueueArn"]),
		}})
		if err != nil {
			t.Fatal(err)
		}
		url := aws.ToString(created.QueueUrl)
		clock := fastClock{start: time.Now()}
		reports := &awstest.Reports{}
		engine := func() *rollout.Engine {
			e := atHome(rollout.New(config.Config{ContinueQueue: url}, ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg), reports.Logger()))
			e.Queue = q
			e.Home().Discoverer.Pace = discover.NewPacer(discover.ECSLimits, clock)
			e.Budget = func(ctx context.Context) (time.Duration, bool) {
				d, ok := ctx.Deadline()
				return time.Until(d) * contScale, ok
			}
			return e
		}
		ictx, cancel := invocation()
		first, err := engine().HandleRaw(ictx, awstest.PushEvent("moto-push", awstest.Account, "app", "latest", digestOf("app v2")))
		cancel()
		if err != nil || first.Continuing == 0 {
			t.Fatalf("first invocation: %v, %s %q continuing %d", err, first.Outcome, first.Reason, first.Continuing)
		}
		m := &awstest.EventSourceMapping{SQS: q, QueueURL: url, Invoke: func(_ context.Context, event []byte) ([]byte, error) {
			ctx, cancel := invocation()
			defer cancel()
			out, err := engine().Invoke(ctx, event)
			if err != nil {
				return nil, err
			}
			return json.Marshal(out)
		}}
		deliveries, err := m.Drain(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		var final *report.Report
		sum := len(first.Changes)
		logged := reports.Take()
		for i := range logged {
			if logged[i].Step > 0 {
				// A continuation's unchanged services were moved by the rollout too (an update
				// whose answer the deadline cut off): the totals count them as changes.
				sum += len(logged[i].Changes) + len(logged[i].Unchanged)
			}
			if logged[i].Totals != nil {
				final = &logged[i]
			}
		}
		if final == nil || final.Totals.Changes != services || sum != services || final.Totals.Invocations != 1+len(deliveries) {
			t.Fatalf("final report %+v; %d changes over %d invocations", final, sum, 1+len(deliveries))
		}
		for i := range services {
			out, err := ecsClient.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(fmt.Sprintf("td%02d", i))})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(out.TaskDefinitionArns); n != 2 {
				t.Errorf("td%02d has %d revisions, want 2", i, n)
			}
		}
		t.Logf("%s: %d invocations", t.Name(), 1+len(deliveries))
	})
}
