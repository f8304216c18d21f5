package emulator

import (
	"sync"
	"time"
)

// Clock tells the throttle buckets the time; inject a manual or scaled one in tests and benchmarks.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to. Safe for concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a ManualClock set to start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// ScaledClock runs factor times faster than the wall clock from the moment it is made, so a
// benchmark can replay minutes of throttled traffic in seconds.
func ScaledClock(factor float64) Clock {
	return &scaledClock{start: time.Now(), factor: factor}
}

type scaledClock struct {
	start  time.Time
	factor float64
}

func (c *scaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.factor))
}

// Limit is a token bucket: Burst requests at once, refilled at PerSecond.
type Limit struct {
	Burst     float64
	PerSecond float64
}

// ECSLimits are ECS's per-account, per-region request rates for the operations pinroll calls
// most; DefaultLimit applies to every other operation. They are the figures of pinroll's pacer
// (discover.ECSLimits, where their source is discussed; a bench test keeps the two equal), taken
// from https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html but
// not re-verified against that page's per-action table, which could not be read when last
// checked (December 2026).
var ECSLimits = map[string]Limit{
	"ListServices":           {Burst: 100, PerSecond: 20},
	"DescribeServices":       {Burst: 100, PerSecond: 20},
	"DescribeTaskDefinition": {Burst: 50, PerSecond: 20},
	"RegisterTaskDefinition": {Burst: 20, PerSecond: 1},
	"UpdateService":          {Burst: 50, PerSecond: 5},
	"ListClusters":           {Burst: 50, PerSecond: 20},
}

// DefaultLimit is the generous bucket of every operation not in ECSLimits (among them DescribeTasks,
// ListTasks and TagResource, which pinroll calls unpaced): not a documented ECS figure, it
// stands for "not modelled here", so that only the buckets above ever throttle.
var DefaultLimit = Limit{Burst: 1000, PerSecond: 1000}

type throttler struct {
	clock   Clock
	limits  map[string]Limit
	buckets map[string]*bucket // account + "/" + region + "/" + op
}

type bucket struct {
	tokens float64
	last   time.Time
}

// EnableThrottling makes every operation draw from a token bucket (ECSLimits, else DefaultLimit)
// per account and region, answering ThrottlingException when its bucket is empty. Buckets start
// full and are timed by clock (nil = SystemClock).
func (e *Emulator) EnableThrottling(clock Clock) {
	if clock == nil {
		clock = SystemClock{}
	}
	limits := make(map[string]Limit, len(ECSLimits))
	for op, l := range ECSLimits {
		limits[op] = l
	}
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.throttle = &throttler{clock: clock, limits: limits, buckets: map[string]*bucket{}}
}

// SetThrottleLimit changes one operation's bucket ("" = the default for operations without one).
// It has effect once throttling is enabled.
func (e *Emulator) SetThrottleLimit(op string, l Limit) {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if t := e.hooks.throttle; t != nil {
		t.limits[op] = l
		for key := range t.buckets {
			delete(t.buckets, key)
		}
	}
}

// DisableThrottling turns the buckets off.
func (e *Emulator) DisableThrottling() {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.throttle = nil
}

// allow takes a token from op's bucket in scope ("account/region"); false means throttled.
func (e *Emulator) allow(scope, op string) bool {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	t := e.hooks.throttle
	if t == nil {
		return true
	}
	limit, ok := t.limits[op]
	if !ok {
		limit, ok = t.limits[""]
		if !ok {
			limit = DefaultLimit
		}
	}
	now := t.clock.Now()
	key := scope + "/" + op
	b, ok := t.buckets[key]
	if !ok {
		b = &bucket{tokens: limit.Burst, last: now}
		t.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(limit.Burst, b.tokens+elapsed.Seconds()*limit.PerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
