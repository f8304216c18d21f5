package discover

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is one of ECS's per-account, per-region token buckets: Burst calls at once, refilled
// at PerSecond.
type Limit struct {
	Burst     float64
	PerSecond float64
}

// ECSLimits are ECS's documented request rates (the ECS API reference's request throttling page) for the
// operations discovery calls. Each operation has its own bucket.
var ECSLimits = map[string]Limit{
	"ListClusters":           {Burst: 50, PerSecond: 20},
	"ListServices":           {Burst: 100, PerSecond: 20},
	"DescribeServices":       {Burst: 100, PerSecond: 20},
	"DescribeTaskDefinition": {Burst: 50, PerSecond: 20},
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

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
