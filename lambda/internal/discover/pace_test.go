package discover

import (
	"context"
	"sync"
	"testing"
	"time"
)

// virtualClock moves only when someone sleeps on it: a sequence of paced calls then takes
// exactly the virtual time the buckets allow.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

func TestPacerKeepsInsideTheBucketAndItsReserve(t *testing.T) {
	clock := &virtualClock{now: time.Unix(0, 0)}
	p := NewPacer(map[string]Limit{"DescribeTaskDefinition": {Burst: 50, PerSecond: 20}}, clock)
	start := clock.Now()
	ctx := context.Background()
	// A server-side bucket fed the same calls at the same times must never run dry.
	server, last := 50.0, start
	for i := range 1000 {
		if err := p.Wait(ctx, "DescribeTaskDefinition"); err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		server = min(50, server+now.Sub(last).Seconds()*20)
		last = now
		if server < 1+Reserve-1e-9 {
			t.Fatalf("call %d at %v: the server's bucket holds %.2f tokens; the pacer must leave the reserve", i, now.Sub(start), server)
		}
		server--
	}
	// The burst less the reserve at once, then 20 a second.
	want := time.Duration(float64(1000-(50-Reserve)) / 20 * float64(time.Second))
	if got := clock.Now().Sub(start); got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("1000 paced calls took %v of virtual time, want %v", got, want)
	}
}

func TestPacerRefillsWhileIdle(t *testing.T) {
	clock := &virtualClock{now: time.Unix(0, 0)}
	p := NewPacer(map[string]Limit{"ListServices": {Burst: 10, PerSecond: 2}}, clock)
	ctx := context.Background()
	for range 10 - Reserve { // the usable burst: immediate
		if err := p.Wait(ctx, "ListServices"); err != nil {
			t.Fatal(err)
		}
	}
	if got := clock.Now().Sub(time.Unix(0, 0)); got != 0 {
		t.Fatalf("the burst less the reserve waited %v", got)
	}
	_ = clock.Sleep(ctx, time.Second) // idle: 2 tokens come back
	before := clock.Now()
	for range 3 { // two from the refill, the third waits half a second
		if err := p.Wait(ctx, "ListServices"); err != nil {
			t.Fatal(err)
		}
	}
	if got := clock.Now().Sub(before); got < 499*time.Millisecond || got > 501*time.Millisecond {
		t.Errorf("after a second idle, 3 calls took %v, want 500ms (2 refilled, 1 at 2/s)", got)
	}
}

func TestPacerLeavesUnlistedOperationsAndNilAlone(t *testing.T) {
	clock := &virtualClock{now: time.Unix(0, 0)}
	p := NewPacer(map[string]Limit{"ListServices": {Burst: 1, PerSecond: 1}}, clock)
	for range 100 {
		if err := p.Wait(context.Background(), "UpdateService"); err != nil {
			t.Fatal(err)
		}
	}
	var none *Pacer
	if err := none.Wait(context.Background(), "ListServices"); err != nil {
		t.Fatal(err)
	}
	if !clock.Now().Equal(time.Unix(0, 0)) {
		t.Errorf("unpaced calls waited %v", clock.Now().Sub(time.Unix(0, 0)))
	}
}

func TestPacerBurstOfOneKeepsNoReserve(t *testing.T) {
	clock := &virtualClock{now: time.Unix(0, 0)}
	p := NewPacer(map[string]Limit{"ListServices": {Burst: 1, PerSecond: 4}}, clock)
	for range 5 {
		if err := p.Wait(context.Background(), "ListServices"); err != nil {
			t.Fatal(err)
		}
	}
	if got := clock.Now().Sub(time.Unix(0, 0)); got != time.Second {
		t.Errorf("5 calls of a 1-call bucket at 4/s took %v, want 1s (the first at once)", got)
	}
}

func TestPacerGivesBackTheTokenOfACancelledWait(t *testing.T) {
	p := NewPacer(map[string]Limit{"ListServices": {Burst: 20, PerSecond: 0.001}}, nil)
	for range 20 - Reserve {
		if err := p.Wait(context.Background(), "ListServices"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, "ListServices"); err == nil {
		t.Fatal("a wait of ~1000 s returned before its context ended")
	}
	// The usable burst is spent: the bucket holds the reserve, i.e. none of the limiter's tokens.
	if got := p.limiters["ListServices"].TokensAt(time.Now()); got < -0.001 || got > 0.01 {
		t.Errorf("after a cancelled wait the limiter holds %.3f tokens, want 0 (the token given back)", got)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if err := p.Wait(done, "ListServices"); err == nil {
		t.Error("a wait on a done context succeeded")
	}
	if got := p.limiters["ListServices"].TokensAt(time.Now()); got < -0.001 {
		t.Errorf("a wait on a done context took a token: %.3f left", got)
	}
}

// Concurrent callers on the wall clock: none overruns the bucket (the calls take at least
// what the rate allows), and none is lost. Run with -race.
func TestPacerConcurrentCallersShareTheBucket(t *testing.T) {
	const calls, workers = 60, 6
	p := NewPacer(map[string]Limit{"DescribeServices": {Burst: 10 + Reserve, PerSecond: 200}}, nil)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range workers {
		wg.Go(func() {
			for range calls / workers {
				errs <- p.Wait(context.Background(), "DescribeServices")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// 10 at once, the other 50 at 200/s: at least 250ms.
	if got, least := time.Since(start), 245*time.Millisecond; got < least {
		t.Errorf("%d calls took %v, less than the bucket allows (%v)", calls, got, least)
	}
}

func TestNewPacerRejectsLimitsItCannotKeep(t *testing.T) {
	for _, l := range []Limit{{Burst: 0, PerSecond: 1}, {Burst: 10, PerSecond: 0}, {Burst: 10, PerSecond: -1}, {Burst: 0.5, PerSecond: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewPacer accepted %+v", l)
				}
			}()
			NewPacer(map[string]Limit{"ListServices": l}, nil)
		}()
	}
}

// Every operation discovery calls has a gate of its own and a bucket in ECSLimits: a name
// missing from ECSLimits would be called unpaced, silently.
func TestEveryOperationDiscoveryCallsIsGatedAndPaced(t *testing.T) {
	seen := map[string]bool{}
	for op := range numGated {
		name := op.String()
		if name == "" || seen[name] {
			t.Errorf("gated operation %d has the name %q (empty or not unique)", op, name)
		}
		seen[name] = true
	}
	for _, name := range append(gatedOps[:], opListClusters) {
		if _, ok := ECSLimits[name]; !ok {
			t.Errorf("discovery calls %s, which has no bucket in ECSLimits: it would go unpaced", name)
		}
	}
	// The rest are apply's writes (paced by apply, on the same Pacer).
	writes := []string{"RegisterTaskDefinition", "UpdateService"}
	for _, name := range writes {
		if _, ok := ECSLimits[name]; !ok {
			t.Errorf("apply calls %s, which has no bucket in ECSLimits", name)
		}
	}
	if len(ECSLimits) != len(seen)+1+len(writes) {
		t.Errorf("ECSLimits has %d operations; discovery calls %d and apply writes %d", len(ECSLimits), len(seen)+1, len(writes))
	}
}

func TestPacerEstimateAndAtMost(t *testing.T) {
	clock := &virtualClock{now: time.Unix(0, 0)}
	p := NewPacer(map[string]Limit{"RegisterTaskDefinition": {Burst: 20, PerSecond: 1}}, clock)
	ctx := context.Background()
	// 15 calls fit the burst (less the reserve of 5), the 16th waits a second.
	if d := p.Estimate("RegisterTaskDefinition", 15); d != 0 {
		t.Errorf("Estimate(15) on a full bucket = %v, want 0", d)
	}
	if d := p.Estimate("RegisterTaskDefinition", 25); d != 10*time.Second {
		t.Errorf("Estimate(25) = %v, want 10s", d)
	}
	if d := p.Estimate("UpdateService", 1000); d != 0 {
		t.Errorf("an operation without a limit: Estimate = %v, want 0", d)
	}
	tokens, at, ok := p.Tokens("RegisterTaskDefinition")
	if !ok || tokens != 15 || !at.Equal(clock.Now()) {
		t.Errorf("Tokens = %v at %v (%v), want 15 now", tokens, at, ok)
	}

	// A continuation: the last invocation left 0.5 tokens 3 seconds ago, so this (new, full)
	// pacer holds 3.5 now — 3, in whole calls rounded down — and the 5 calls wait 2 s.
	fresh := NewPacer(map[string]Limit{"RegisterTaskDefinition": {Burst: 20, PerSecond: 1}}, clock)
	fresh.AtMost("RegisterTaskDefinition", 0.5, clock.Now().Add(-3*time.Second))
	if tokens, _, _ := fresh.Tokens("RegisterTaskDefinition"); tokens != 3 {
		t.Errorf("after AtMost, the bucket holds %v, want 3 (3.5 in whole calls)", tokens)
	}
	start := clock.Now()
	for range 5 {
		if err := fresh.Wait(ctx, "RegisterTaskDefinition"); err != nil {
			t.Fatal(err)
		}
	}
	if waited := clock.Now().Sub(start); waited != 2*time.Second {
		t.Errorf("5 calls after AtMost took %v, want 2s (3 tokens, then 1/s)", waited)
	}
	// AtMost never raises a bucket: the one drained above stays low.
	fresh.AtMost("RegisterTaskDefinition", 20, clock.Now())
	if tokens, _, _ := fresh.Tokens("RegisterTaskDefinition"); tokens > 1 {
		t.Errorf("AtMost raised the bucket to %v", tokens)
	}
	var none *Pacer
	none.AtMost("RegisterTaskDefinition", 0, time.Time{})
	if d := none.Estimate("RegisterTaskDefinition", 100); d != 0 {
		t.Errorf("a nil Pacer estimates %v", d)
	}
}
