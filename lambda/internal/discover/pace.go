package discover

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// Limit is one of ECS's per-account, per-region token buckets: Burst calls at once, refilled
// at PerSecond.
type Limit struct {
	Burst     float64
	PerSecond float64
}

// ECSLimits are ECS's per-action request rates for the operations discovery and apply call. Each
// operation has its own bucket, per account and region: one Pacer serves all the work of one
// account (a rollout Target's discovery, apply and verification), so a push never overruns a
// bucket it shares with itself. The emulator's ECSLimits must hold the same figures (a bench test
// compares them): the pacer is only proven against buckets that match its own.
//
// Source: "Request throttling for the Amazon ECS API",
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html, whose
// table gives each action's bucket maximum capacity (Burst) and refill rate (PerSecond).
// Not verified against that table: the last check (December 2026) could read only the page's
// opening, so these are the figures recorded when pacing was written. RegisterTaskDefinition's
// 20 and 1/s are also what others quote from the page (issue 502 of
// aws-actions/amazon-ecs-deploy-task-definition); the rest, UpdateService's 50 and 5/s among
// them, rest on that record alone.
var ECSLimits = map[string]Limit{
	"ListClusters":           {Burst: 50, PerSecond: 20},
	"ListServices":           {Burst: 100, PerSecond: 20},
	"DescribeServices":       {Burst: 100, PerSecond: 20},
	"DescribeTaskDefinition": {Burst: 50, PerSecond: 20},
	// The writes: RegisterTaskDefinition is what makes a push to thousands of task definitions
	// outlive one Lambda invocation (2,000 registrations need more than 33 minutes).
	"RegisterTaskDefinition": {Burst: 20, PerSecond: 1},
	"UpdateService":          {Burst: 50, PerSecond: 5},
}

// Reserve is how many tokens of every bucket discovery leaves untouched: the buckets are
// shared with everything else in the account, starting with pinroll's own apply step, whose
// reads (the latest revision of each family it registers, the services it updates) come
// right after discovery has drained DescribeTaskDefinition's bucket to this level. It costs
// that many calls of the burst once, never sustained throughput.
const Reserve = 5

// Clock tells a Pacer the time and sleeps on it. Benchmarks pass a scaled clock; nil means
// the wall clock.
type Clock interface {
	Now() time.Time
	// Sleep waits d on the clock, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error { return sleep.For(ctx, d) }

// Pacer spaces calls so that ECS's token buckets are never overrun: a client-side copy of each
// bucket (a golang.org/x/time/rate Limiter of the bucket's rate whose burst is the bucket's
// less the Reserve), drawn before every call. The server's bucket refills at least as long as
// ours (a request reaches it after we send it), so while pinroll is the only caller the server
// always holds a token when a paced call arrives. Safe for concurrent use; keep one per process
// (the Discoverer does), so warm invocations see what earlier ones spent.
//
// The limiters are driven by the Pacer's Clock (ReserveN at Clock.Now, then Clock.Sleep for
// the delay), never by the wall clock behind the Clock's back, so a scaled or virtual clock
// times everything.
type Pacer struct {
	clock    Clock
	limiters map[string]*rate.Limiter // read-only after NewPacer
	// mu makes reading the clock and reserving one step, so every limiter sees its times in
	// order: a Limiter given an older time than its last refills the gap twice, and then
	// grants more calls than the bucket holds (seen as throttling with 5 accounts at once).
	mu sync.Mutex
}

// NewPacer returns a pacer with full buckets for limits (operations not listed are not paced),
// timed by clock (nil: the wall clock). Each limit needs a positive rate and a burst of at
// least one call; anything else is a programming error and panics.
func NewPacer(limits map[string]Limit, clock Clock) *Pacer {
	if clock == nil {
		clock = wallClock{}
	}
	p := &Pacer{clock: clock, limiters: make(map[string]*rate.Limiter, len(limits))}
	for op, l := range limits {
		if !(l.PerSecond > 0) || !(l.Burst >= 1) {
			panic(fmt.Sprintf("discover: limit of %s is %+v; it needs PerSecond > 0 and Burst >= 1", op, l))
		}
		reserve := min(Reserve, l.Burst-1) // tokens never drawn, at most all but one
		// A Limiter's burst is whole calls; its bucket starts full.
		p.limiters[op] = rate.NewLimiter(rate.Limit(l.PerSecond), max(1, int(l.Burst-reserve)))
	}
	return p
}

// Wait blocks until op may be called. Calls are served in the order they asked (each one
// reserves its token, then waits for the bucket to refill to it), so waiting callers never
// stampede. A wait that ends with ctx gives its token back. A nil Pacer never waits.
func (p *Pacer) Wait(ctx context.Context, op string) error {
	if p == nil {
		return ctx.Err()
	}
	lim, ok := p.limiters[op]
	if !ok {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err // a call that will not be made takes no token
	}
	p.mu.Lock()
	r := lim.ReserveN(p.clock.Now(), 1)
	p.mu.Unlock()
	if !r.OK() {
		// Only a request for more than the burst is refused, and Wait asks for one token.
		return fmt.Errorf("discover: pacer refused a call of %s", op)
	}
	wait := r.DelayFrom(p.clock.Now())
	if wait <= 0 {
		return nil
	}
	if err := p.clock.Sleep(ctx, wait); err != nil {
		p.mu.Lock()
		r.CancelAt(p.clock.Now()) // the call will not be made: give its token back
		p.mu.Unlock()
		return err
	}
	return nil
}

// Estimate is how long from now until n more calls of op may start, if nothing else draws
// from its bucket: 0 while the bucket holds them. Operations without a limit, and a nil
// Pacer, never wait.
func (p *Pacer) Estimate(op string, n int) time.Duration {
	if p == nil || n <= 0 {
		return 0
	}
	lim, ok := p.limiters[op]
	if !ok {
		return 0
	}
	p.mu.Lock()
	tokens := lim.TokensAt(p.clock.Now())
	p.mu.Unlock()
	missing := float64(n) - tokens
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

// Tokens is how many calls of op the bucket holds now, and the time of the reading (for a
// continuation to take along: see AtMost). ok is false for an operation without a limit.
func (p *Pacer) Tokens(op string) (tokens float64, at time.Time, ok bool) {
	if p == nil {
		return 0, time.Time{}, false
	}
	lim, ok := p.limiters[op]
	if !ok {
		return 0, time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at = p.clock.Now()
	return lim.TokensAt(at), at, true
}

// AtMost lowers op's bucket to what it would hold now had it held tokens at the time at (and
// refilled since, up to its burst). A continuation in a new process uses it: its own buckets
// start full, while the invocation before it drained ECS's (the same account's buckets on
// ECS's side), so the new process starts from what the last one left, refilled by the time
// in between, rather than from a burst it does not have. It never raises a bucket.
func (p *Pacer) AtMost(op string, tokens float64, at time.Time) {
	if p == nil {
		return
	}
	lim, ok := p.limiters[op]
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	want := tokens
	if elapsed := now.Sub(at); elapsed > 0 {
		want += elapsed.Seconds() * float64(lim.Limit())
	}
	// Whole calls only, rounded up: never assume more than the bucket may hold.
	if excess := math.Ceil(lim.TokensAt(now) - max(want, 0)); excess >= 1 {
		lim.ReserveN(now, int(excess)) // drawn and never used: the bucket is lower by that much
	}
}
