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
	if got := p.buckets["ListServices"].tokens; got < Reserve-0.001 || got > Reserve+0.01 {
		t.Errorf("after a cancelled wait the bucket holds %.3f tokens, want the reserve", got)
	}
}
