package discover

import (
	"context"
	"sync"
	"time"
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
// bucket, drawn before every call. The server's bucket refills at least as long as ours (a
// request reaches it after we send it), so while pinroll is the only caller the server always
// holds a token when a paced call arrives. Safe for concurrent use; keep one per process (the
// Discoverer does), so warm invocations see what earlier ones spent.
type Pacer struct {
	clock   Clock
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	limit   Limit
	reserve float64 // tokens never drawn (Reserve, at most the burst)
	tokens  float64 // may go below reserve: calls waiting for a refill hold their token already
	last    time.Time
}

// NewPacer returns a pacer with full buckets for limits (operations not listed are not paced),
// timed by clock (nil: the wall clock).
func NewPacer(limits map[string]Limit, clock Clock) *Pacer {
	if clock == nil {
		clock = wallClock{}
	}
	now := clock.Now()
	p := &Pacer{clock: clock, buckets: make(map[string]*bucket, len(limits))}
	for op, l := range limits {
		p.buckets[op] = &bucket{limit: l, reserve: min(Reserve, l.Burst-1), tokens: l.Burst, last: now}
	}
	return p
}

// Wait blocks until op may be called. Calls are served in the order they asked (each one
// reserves its token, then waits for the bucket to refill to it), so waiting callers never
// stampede. A nil Pacer never waits.
func (p *Pacer) Wait(ctx context.Context, op string) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	b, ok := p.buckets[op]
	if !ok {
		p.mu.Unlock()
		return ctx.Err()
	}
	now := p.clock.Now()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.limit.Burst, b.tokens+elapsed.Seconds()*b.limit.PerSecond)
		b.last = now
	}
	b.tokens--
	short := b.reserve - b.tokens // tokens the bucket must regain before this call may go
	p.mu.Unlock()
	if short <= 0 {
		return ctx.Err()
	}
	wait := time.Duration(short / b.limit.PerSecond * float64(time.Second))
	if err := p.clock.Sleep(ctx, wait); err != nil {
		p.mu.Lock()
		b.tokens++ // the call will not be made: give its token back
		p.mu.Unlock()
		return err
	}
	return nil
}
