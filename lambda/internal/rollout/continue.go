package rollout

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/metrics"
	"github.com/pinroll/pinroll/lambda/internal/notify"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// Work that outlives one invocation.
//
// RegisterTaskDefinition allows 20 calls at once and then 1 a second per account, so a push of
// a sidecar image used by 2,000 task definitions needs over 33 minutes: more than Lambda's 15.
// With Config.ContinueQueue set, a push applies its plan in chunks while the invocation's
// time allows (the account's pacer says how long a chunk's registrations and updates take);
// when the next chunk would not fit before the safety margin, or the margin cuts one short,
// it stops starting work and sends the rest — the services not yet moved — as ONE message to
// an SQS FIFO queue, and reports "continuing". The same function consumes the queue through
// an event source mapping; each message is one step (Continue), which does the same and
// either sends the next step or, when nothing is left, returns (logs, notifies) the final
// report of the push in its account, with totals — with several accounts, joined into one
// report of the whole event by the account that finishes last (join.go).
//
// Why it is safe:
//   - The message's group is the target account, so the steps of one account — which share its
//     ECS buckets — never run at once, and a step starts from the bucket levels the last one
//     left (trigger.Continuation.Pace), not from a burst the account does not have.
//   - Its deduplication id is the push's event id, the account and the step number: a handler
//     that sent the next step and then failed, redelivered within SQS's 5-minute window,
//     sends it again and SQS drops the copy. Beyond the window a repeated step is harmless:
//     apply reuses what the event registered (its pinroll:event audit tags) and a service
//     already on the new revision is unchanged, so nothing is registered or updated twice.
//   - Every step checks again that the push is current (a newer push of the tag stops the chain
//     with a skipped report), re-reads only the services it still has to move, and plans and
//     gates them again, so pauses and approvals set meanwhile hold.
//   - A step's failure is its message's: the event source mapping returns it to the queue
//     (batchItemFailures) and the dead-letter queue keeps it after maxReceiveCount receives.

// Queue is the part of the SQS API continuations use.
type Queue interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// registrationsPerChunk is how many registrations are applied between two looks at the time:
// the registration bucket's burst, 15 to 20 seconds of work at 1 a second once it is spent.
const registrationsPerChunk = 20

// servicesPerRead is how many services a continuation re-reads at a time (ten a
// DescribeServices call), before planning and applying them.
const servicesPerRead = 200

// chunkSlack is the time a chunk takes beyond its paced calls (re-reads, round trips).
const chunkSlack = 2 * time.Second

// sendTimeout bounds sending a continuation, which happens once the invocation has stopped
// starting work, inside its safety margin (10 s for a 15-minute function).
const sendTimeout = 5 * time.Second

// maxMessage leaves room under SQS's 256 KiB for the message's envelope.
const maxMessage = trigger.MaxContinuationSize - 8*1024

// continues reports whether work that does not fit this invocation goes to the queue.
func (e *Engine) continues() bool { return e.Queue != nil && e.Config.ContinueQueue != "" }

// timeLeft is how long the invocation may still start work (ok false: no deadline), on the
// clock of the target's pacer: Engine.Budget when set, else the context's deadline.
func (e *Engine) timeLeft(ctx context.Context) (time.Duration, bool) {
	if e.Budget != nil {
		return e.Budget(ctx)
	}
	d, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return time.Until(d), true
}

// fits reports whether registering regs and updating their services can be done before the
// invocation's safety margin, at the account's pace.
func (e *Engine) fits(ctx context.Context, t *Target, regs []plan.Registration) bool {
	left, ok := e.timeLeft(ctx)
	if !ok {
		return true
	}
	services := 0
	for _, r := range regs {
		services += len(r.Services)
	}
	p := t.Pacer()
	need := max(p.Estimate("RegisterTaskDefinition", len(regs)), p.Estimate("UpdateService", services)) + chunkSlack
	return need < left
}

// applyInTime applies pl, in chunks of registrations when work may continue later, while the
// invocation's time allows; it returns what was done and the services of the registrations
// it did not start. Without a continuation queue it is applyAndReplan.
func (e *Engine) applyInTime(ctx context.Context, t *Target, pl plan.Plan, pushed imageref.Pushed, audit apply.Audit, rep *report.Report) (apply.Result, []discover.Service) {
	if !e.continues() {
		return e.applyAndReplan(ctx, t, pl, pushed, audit, rep), nil
	}
	var total apply.Result
	regs := pl.Registrations
	for first := true; len(regs) > 0 && ctx.Err() == nil; first = false {
		n := min(len(regs), registrationsPerChunk)
		if !first && !e.fits(ctx, t, regs[:n]) {
			break
		}
		chunk := pl
		chunk.Registrations = regs[:n]
		total.Add(e.applyAndReplan(ctx, t, chunk, pushed, audit, rep))
		regs = regs[n:]
	}
	var rest []discover.Service
	for _, r := range regs {
		rest = append(rest, r.Services...)
		for _, h := range r.Held {
			rest = append(rest, h.Service)
		}
	}
	return total, rest
}

// carryPending moves res's pending services into rest when the work continues anyway (rest
// is not empty, or the deadline cut a step short): the next step retries them, rather than
// the event failing and being redelivered whole. pl's services say which service each name is.
func (e *Engine) carryPending(res *apply.Result, rest []discover.Service, pl plan.Plan) []discover.Service {
	if !e.continues() || len(res.Pending) == 0 {
		return rest
	}
	cut := len(rest) > 0
	for _, st := range res.Pending {
		cut = cut || errors.Is(st.Err, context.DeadlineExceeded) || errors.Is(st.Err, context.Canceled)
	}
	if !cut {
		return rest
	}
	byName := map[string]discover.Service{}
	for _, r := range pl.Registrations {
		for _, s := range r.Services {
			byName[s.Cluster+"/"+s.Name] = s
		}
		for _, h := range r.Held {
			byName[h.Service.Cluster+"/"+h.Service.Name] = h.Service
		}
	}
	for _, st := range res.Pending {
		for _, n := range st.Services {
			if s, ok := byName[n]; ok {
				rest = append(rest, s)
			}
		}
	}
	res.Pending = nil
	return rest
}

// targetDone is what one target's share of a push did in this invocation: its report, the
// services it did not start moving in time, and whether it succeeded.
type targetDone struct {
	rep  report.Report
	rest []discover.Service
	ok   bool
}

// continueTargets sends, once every target is done, the rest of each target's work as the
// first step of that account's chain, and returns how many services continue. With several
// targets and the index table, it first begins the event's join (the accounts still going,
// and the share of each account already done), so that the chain finishing last reports the
// whole event; without it, each account's chain reports on its own. A send that fails is that
// target's error: the event fails and its redelivery sends it again.
func (e *Engine) continueTargets(ctx context.Context, p trigger.Push, done map[*Target]*targetDone) (int, map[*Target]error) {
	var going []*Target
	for _, t := range e.Targets {
		if d := done[t]; d != nil && len(d.rest) > 0 {
			going = append(going, t)
		}
	}
	if len(going) == 0 {
		return 0, nil
	}
	join := 0
	if e.Joins != nil && len(e.Targets) > 1 {
		join = len(e.Targets)
		waiting, parts := make([]string, len(going)), map[string][]byte{}
		for i, t := range going {
			waiting[i] = e.accountOf(t, p)
		}
		for _, t := range e.Targets {
			if d := done[t]; d != nil && d.ok && len(d.rest) == 0 {
				parts[e.accountOf(t, p)] = encodePart(e.firstPart(d.rep, e.accountOf(t, p), p), join)
			}
		}
		// As the sends below, the join gets a few seconds of its own: the invocation's context
		// may be done already (the safety margin cut the last chunk short).
		jctx, cancel := detached(ctx)
		err := e.Joins.Begin(jctx, p.EventID, waiting, parts)
		cancel()
		if err != nil {
			e.Log.Warn("the event's final report cannot be joined across accounts: each account's chain reports on its own", "event_id", p.EventID, "error", err)
			join = 0
		}
	}
	continuing, errs := 0, map[*Target]error{}
	for _, t := range going {
		d := done[t]
		n, err := e.continueLater(ctx, t, p, d.rep, d.rest, nil, join)
		if err != nil {
			errs[t] = err
			continue
		}
		continuing += n
	}
	return continuing, errs
}

// withTargetErrors adds the targets' continuation errors to err, eachTarget's: with one
// target its error as it is, with several a TargetsError naming each.
func (e *Engine) withTargetErrors(err error, more map[*Target]error) error {
	if len(more) == 0 {
		return err
	}
	if len(e.Targets) == 1 {
		return cmp.Or(err, more[e.Targets[0]])
	}
	all := &TargetsError{}
	if te := (*TargetsError)(nil); errors.As(err, &te) {
		all.Failed = append(all.Failed, te.Failed...)
	}
	for _, t := range e.Targets {
		if m := more[t]; m != nil {
			e.Log.Error("target failed", "target", t.String(), "error", m)
			all.Failed = append(all.Failed, &TargetError{Target: t.String(), Err: m})
		}
	}
	return all
}

// accountOf is the 12-digit account of target t (the home target's from the push when the
// function does not know its own).
func (e *Engine) accountOf(t *Target, p trigger.Push) string {
	return cmp.Or(t.Account, e.homeAccount(p.Account))
}

// continueLater sends the rest of one target's work as the continuation step after prior (nil
// for the event's first invocation), whose report of the account is rep, and returns how many
// services continue. join is the number of accounts of the event's join (0: none).
func (e *Engine) continueLater(ctx context.Context, t *Target, p trigger.Push, rep report.Report, rest []discover.Service, prior *trigger.Continuation, join int) (int, error) {
	c := trigger.Continuation{Push: p, Target: e.accountOf(t, p), Step: 1, Services: map[string][]string{}, Began: time.Now().UTC(), Join: join}
	if prior != nil {
		c.Step, c.Totals, c.Held, c.Failed, c.Began = prior.Step+1, prior.Totals, prior.Held, prior.Failed, prior.Began
	}
	c.Totals.Add(rep)
	c.Held = carry(c.Held, rep.Held)
	c.Failed = carry(c.Failed, rep.Failed)
	seen := map[string]bool{}
	for _, s := range rest {
		cluster := cmp.Or(s.ClusterARN, s.Cluster)
		if key := cluster + "/" + s.Name; !seen[key] {
			seen[key] = true
			c.Services[cluster] = append(c.Services[cluster], s.Name)
		}
	}
	c.Pace = map[string]trigger.Bucket{}
	for _, op := range trigger.PacedOperations {
		if tokens, at, ok := t.Pacer().Tokens(op); ok {
			c.Pace[op] = trigger.Bucket{Tokens: tokens, At: at.UTC()}
		}
	}
	body, err := c.Encode()
	if err == nil && len(body) > maxMessage {
		// Too many services to name in one message: the next step plans every service in
		// scope again, and finds those already done unchanged.
		e.Log.Warn("continuation too large to list its services; the next step plans the whole fleet again", "event_id", p.EventID, "services", len(seen), "bytes", len(body))
		c.Services, c.All = nil, true
		body, err = c.Encode()
	}
	if err != nil {
		return 0, fmt.Errorf("continuation: encode: %w", err)
	}
	sendCtx, cancel := detached(ctx)
	defer cancel()
	_, err = e.Queue.SendMessage(sendCtx, &sqs.SendMessageInput{
		QueueUrl:               aws.String(e.Config.ContinueQueue),
		MessageBody:            aws.String(string(body)),
		MessageGroupId:         aws.String(c.Target),
		MessageDeduplicationId: aws.String(deduplicationID(p.EventID, c.Target, c.Step)),
	})
	if err != nil {
		return 0, fmt.Errorf("continuation: send step %d for %d services to %s: %w", c.Step, len(seen), e.Config.ContinueQueue, err)
	}
	e.Log.Info("continues", "event_id", p.EventID, "target", t.String(), "step", c.Step, "services", len(seen), "bytes", len(body), "join", join)
	return len(seen), nil
}

// detached is ctx without its cancellation, for sendTimeout: what a continuation writes once the
// invocation has stopped starting work — the message, the join — may find the invocation's
// context done already (the safety margin is what is left), and gets a few seconds of its own,
// within the margin of a real invocation.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
}

// deduplicationID names one continuation step: the same for a step sent twice (SQS then drops
// the copy), different for every other. 64 hex characters, within SQS's 128.
func deduplicationID(eventID, account string, step int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", eventID, account, step))
	return hex.EncodeToString(sum[:])
}

// carry appends more to have, keeping at most report.MaxCarried.
func carry(have, more []report.Service) []report.Service {
	out := append(slices.Clone(have), more...)
	if len(out) > report.MaxCarried {
		out = out[:report.MaxCarried]
	}
	return out
}

// concludeContinuing completes a push report whose work continues: its outcome is what it has
// so far (deployed when it moved services), and its reason says that the rollout goes on.
func concludeContinuing(rep *report.Report) {
	if rep.Continuing == 0 {
		return
	}
	if rep.Outcome == report.Skipped || rep.Outcome == report.Unchanged {
		rep.Outcome = report.Deployed
		rep.Reason = "nothing moved yet"
	}
	rep.Reason += fmt.Sprintf("; the rollout continues: %s to go, in the next invocations (continuation queue)", count(rep.Continuing, "service"))
}

// Continue runs one continuation step: checks that the push is still current, re-reads the
// services still to move (in parts, while the invocation's time allows), plans, gates and
// applies them, and then sends the next step or, when nothing is left, returns the final
// report of the push in this account, with totals over every invocation.
func (e *Engine) Continue(ctx context.Context, c trigger.Continuation) (report.Report, error) {
	p := c.Push
	rep := report.Report{EventID: p.EventID, Kind: string(trigger.KindPush), Image: p.Pushed().Pinned(), Step: c.Step}
	t := e.target(c.Target)
	if t == nil {
		return report.Report{}, fmt.Errorf("continuation step %d of %s: account %s is not a target of this pinroll (PINROLL_TARGET_ROLES changed?)", c.Step, p.EventID, c.Target)
	}
	for op, b := range c.Pace {
		t.Pacer().AtMost(op, b.Tokens, b.At)
	}
	stop := func(why string) (report.Report, error) {
		rep.Outcome, rep.Reason = report.Skipped, fmt.Sprintf("the rollout stops at step %d: %s; %s not deployed", c.Step, why, remaining(c))
		e.finalTotals(&rep, c)
		e.join(ctx, &rep, c, true)
		return rep, nil
	}
	if why := p.SkipReason(); why != "" {
		return stop(why)
	}
	if home := e.homeAccount(p.Account); !e.Config.RegistryAllowed(p.Account, home) {
		return stop(fmt.Sprintf("registry account %s may no longer deploy here", p.Account))
	}
	current, why, err := e.tagIsCurrent(ctx, p)
	if err != nil {
		return report.Report{}, err
	}
	if !current {
		return stop(why)
	}

	var rest []discover.Service
	if c.All {
		fleet, err := t.Discoverer.Discover(ctx, e.Config.Clusters)
		if err != nil {
			return report.Report{}, fmt.Errorf("discover services: %w", err)
		}
		part, left, err := e.deployFleet(ctx, t, p, fleet)
		rep.Merge(part)
		if err != nil {
			return rep, err
		}
		rest = left
	} else {
		todo := pending(c.Services)
		for first := true; len(todo) > 0 && ctx.Err() == nil; first = false {
			n := min(len(todo), servicesPerRead)
			if !first && !e.fitsServices(ctx, t, n) {
				break
			}
			part, left, err := e.deployServices(ctx, t, p, todo[:n])
			rep.Merge(part)
			if err != nil {
				return rep, err
			}
			todo = todo[n:]
			if len(left) > 0 {
				rest = left
				break
			}
		}
		rest = append(rest, todo...)
	}
	rep.LimitNearMisses(plan.DefaultNearMissLimit)
	if !c.All {
		// Every listed service was still to move when the step before sent it; one found
		// already pinned was moved by this rollout (an update whose answer the deadline cut
		// off, or a step delivered again), so the totals count it as changed. (Totals.Add
		// counts the report's unchanged list: taken back here.)
		moved := len(rep.Unchanged)
		c.Totals.Changes += moved
		c.Totals.Unchanged -= moved
	}
	if len(rest) > 0 {
		n, err := e.continueLater(ctx, t, p, rep, rest, &c, c.Join)
		if err != nil {
			return rep, err
		}
		rep.Continuing = n
		e.conclude(&rep, p)
		concludeContinuing(&rep)
		return rep, nil
	}
	e.finalTotals(&rep, c)
	e.join(ctx, &rep, c, false)
	return rep, nil
}

// fitsServices reports whether n more services (each perhaps with a registration of its own)
// can be read, registered and updated before the safety margin.
func (e *Engine) fitsServices(ctx context.Context, t *Target, n int) bool {
	regs := make([]plan.Registration, n)
	for i := range regs {
		regs[i].Services = make([]discover.Service, 1)
	}
	return e.fits(ctx, t, regs)
}

// deployServices re-reads the named services (and the task definitions they run) and
// deploys them as a push does; a service gone since is reported skipped.
func (e *Engine) deployServices(ctx context.Context, t *Target, p trigger.Push, services []discover.Service) (report.Report, []discover.Service, error) {
	byCluster := map[string][]string{}
	for _, s := range services {
		byCluster[s.ClusterARN] = append(byCluster[s.ClusterARN], s.Name)
	}
	fleet, err := t.Discoverer.DiscoverServices(ctx, byCluster)
	if err != nil {
		return report.Report{}, nil, fmt.Errorf("re-read services: %w", err)
	}
	found := map[string]bool{}
	for _, s := range fleet.Services {
		found[s.ClusterARN+"/"+s.Name] = true
	}
	rep, rest, err := e.deployFleet(ctx, t, p, fleet)
	for _, s := range services {
		if !found[s.ClusterARN+"/"+s.Name] {
			rep.Skipped = append(rep.Skipped, report.Service{Account: s.Account(), Cluster: s.Cluster, Service: s.Name, Why: "deleted since the rollout began"})
		}
	}
	return rep, rest, err
}

// pending lists a continuation's services, cluster by cluster, in the order they were sent.
func pending(services map[string][]string) []discover.Service {
	var out []discover.Service
	for _, cluster := range slices.Sorted(maps.Keys(services)) {
		for _, name := range services[cluster] {
			out = append(out, discover.Service{ClusterARN: cluster, Cluster: discover.ClusterName(cluster), Name: name})
		}
	}
	return out
}

func remaining(c trigger.Continuation) string {
	if c.All {
		return "the services not yet moved are"
	}
	n := c.Remaining()
	if n == 1 {
		return "1 service is"
	}
	return fmt.Sprintf("%d services are", n)
}

// finalTotals makes rep the final report of the push in its account: totals over every
// invocation, the held and failed services carried from the steps before, and an outcome and
// reason for the whole.
func (e *Engine) finalTotals(rep *report.Report, c trigger.Continuation) {
	totals := c.Totals
	totals.Add(*rep)
	rep.Totals = &totals
	rep.Held = carry(c.Held, rep.Held)
	rep.Failed = carry(c.Failed, rep.Failed)
	if rep.Outcome == report.Skipped && rep.Reason != "" {
		return // the chain stopped; the reason says why
	}
	rep.Outcome, rep.Reason = totalsOutcome(totals, c.Push.Digest, took(c.Began, totals))
}

// took says how long a push's invocations took: "in 35m12s over 3 invocations".
func took(began time.Time, totals report.Totals) string {
	return fmt.Sprintf("in %s over %s", time.Since(began).Round(time.Second), count(totals.Invocations, "invocation"))
}

// totalsOutcome is the outcome and reason of a push from what all its invocations did; in
// says when (took).
func totalsOutcome(totals report.Totals, digest, in string) (report.Outcome, string) {
	extra := ""
	if totals.Held > 0 {
		extra += fmt.Sprintf("; %s wait for approval", count(totals.Held, "service"))
	}
	if totals.Failed > 0 {
		extra += fmt.Sprintf("; %s failed for good (see failed)", count(totals.Failed, "service"))
	}
	switch {
	case totals.Changes > 0:
		return report.Deployed, fmt.Sprintf("rollout complete: %s pinned to %s %s%s", count(totals.Changes, "service"), digest, in, extra)
	case totals.Held > 0 && totals.Failed == 0:
		return report.AwaitingApproval, fmt.Sprintf("rollout complete: %s registered for %s, waiting for approval", count(totals.Held, "service"), digest)
	case totals.Failed > 0:
		return report.EventFailed, fmt.Sprintf("rollout complete: no service deployed%s", extra)
	case totals.Unchanged > 0:
		return report.Unchanged, fmt.Sprintf("rollout complete: %s already pinned to %s", count(totals.Unchanged, "service"), digest)
	default:
		return report.Skipped, "rollout complete: nothing left to deploy"
	}
}

// BatchResponse is the answer to an SQS event: the records that failed, by message id, for
// the event source mapping to return to the queue (ReportBatchItemFailures). The others are
// deleted.
type BatchResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names one failed record.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// HandleQueue handles an SQS event of the continuation queue: each record is one continuation
// step, handled in order. A record that fails — its step returned an error, or its body is not
// a continuation — is listed in the answer, and so is every record after it (a FIFO queue's
// order must hold), so the event source mapping returns them to the queue: the failed one is
// tried again after its visibility timeout and, after maxReceiveCount receives, kept in the
// dead-letter queue. A malformed body can never succeed, but it is failed rather than dropped,
// as a malformed event is: the dead-letter queue keeps it for a person, after a bounded number
// of tries, and its alarm says so. Only an event that is not an SQS event at all is an error.
func (e *Engine) HandleQueue(ctx context.Context, raw []byte) (BatchResponse, error) {
	resp := BatchResponse{BatchItemFailures: []BatchItemFailure{}}
	records, err := trigger.DecodeQueueBatch(raw)
	if err != nil {
		e.Log.Error("rejected SQS event", "error", err)
		return resp, err
	}
	failed := false
	for _, r := range records {
		if failed || ctx.Err() != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: r.MessageID})
			continue
		}
		if err := e.handleRecord(ctx, r); err != nil {
			failed = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: r.MessageID})
		}
	}
	return resp, nil
}

func (e *Engine) handleRecord(ctx context.Context, r trigger.QueueRecord) (err error) {
	log := e.Log.With("message_id", r.MessageID, "receive_count", r.ReceiveCount)
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic while handling a continuation", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	ctx, calls := metrics.WithCounter(ctx)
	c, err := trigger.DecodeContinuation([]byte(r.Body))
	if err != nil {
		log.Error("rejected continuation: it stays on the queue until the dead-letter queue takes it", "error", err)
		e.finish(ctx, report.Report{Kind: string(trigger.KindContinue), Outcome: notify.Failed, Reason: err.Error()}, calls, time.Time{})
		return err
	}
	rep, err := e.Continue(ctx, c)
	if err != nil {
		log.Error("continuation step failed; the queue delivers it again", "event_id", c.Push.EventID, "step", c.Step, "error", err)
		e.finish(ctx, report.Report{EventID: c.Push.EventID, Kind: string(trigger.KindPush), Image: rep.Image, Step: c.Step, Outcome: notify.Failed, Reason: err.Error(), Changes: rep.Changes}, calls, c.Push.Time)
		return err
	}
	rep.Normalize()
	level := slog.LevelInfo
	if rep.IsFailure() {
		level = slog.LevelError
	}
	msg := "report"
	switch {
	case rep.Joining > 0:
		msg = "final report of the account" // the event's comes with the last account's
	case rep.Totals != nil:
		msg = "final report"
	}
	log.Log(ctx, level, msg, "event_id", rep.EventID, "kind", rep.Kind, "step", rep.Step, "outcome", string(rep.Outcome), "reason", rep.Reason, "report", rep)
	// Metrics for every step (each counts its own services); a notification only for the
	// final report (finish skips a report that continues).
	e.finish(ctx, rep, calls, c.Push.Time)
	return nil
}

// Invoke is the function's whole entry point: an SQS event of the continuation queue gets
// HandleQueue's batch response, every other event HandleRaw's report.
func (e *Engine) Invoke(ctx context.Context, raw []byte) (any, error) {
	if trigger.IsQueueEvent(raw) {
		return e.HandleQueue(ctx, raw)
	}
	return e.HandleRaw(ctx, raw)
}
