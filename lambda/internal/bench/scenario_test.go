package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// Latency is the emulated latency of every call in the wall-time runs.
const Latency = 20 * time.Millisecond

// Scale is how much faster than the wall clock the throttled runs' clock goes: ECS's buckets
// and pinroll's pacer both run on it, so a minute of throttled traffic takes six seconds.
// (Real-time costs — round trips, CPU — count Scale times over: the measure is pessimistic.)
const Scale = 10

// mode is how the emulated API behaves.
type mode int

const (
	fast     mode = iota // no latency, no throttling: counts only
	latency              // Latency on every call, no throttling; pinroll's pacer off
	throttle             // ECS's buckets on a Scale× clock; pinroll's pacer on the same clock
)

// scaledClock runs Scale× faster than the wall clock; it serves the emulator's buckets
// (emulator.Clock) and pinroll's pacer (discover.Clock) alike.
type scaledClock struct {
	start time.Time
	scale time.Duration // 0: Scale
}

func (c scaledClock) factor() time.Duration {
	if c.scale > 0 {
		return c.scale
	}
	return Scale
}

func (c scaledClock) Now() time.Time {
	return c.start.Add(time.Since(c.start) * c.factor())
}

func (c scaledClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d / c.factor())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// world is one emulator holding one benchmark fleet.
type world struct {
	shape Shape
	mode  mode
	emu   *emulator.Emulator
	cfg   aws.Config
	clock scaledClock
}

func newWorld(tb testing.TB, s Shape, m mode) *world {
	tb.Helper()
	f, err := s.Build()
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	w := &world{shape: s, mode: m, emu: srv.Emulator(), cfg: awstest.Config(tb, srv.URL()), clock: scaledClock{start: time.Now()}}
	if err := w.emu.Load(f); err != nil {
		tb.Fatal(err)
	}
	switch m {
	case latency:
		w.emu.SetLatency("", Latency)
	case throttle:
		w.emu.EnableThrottling(w.clock)
	}
	return w
}

// now is the time the run is measured on: the wall clock, or the scaled one when throttled.
func (w *world) now() time.Time {
	if w.mode == throttle {
		return w.clock.Now()
	}
	return time.Now()
}

// pacer is what pinroll (and the naive reference) pace with in this mode.
func (w *world) pacer() *discover.Pacer {
	if w.mode == throttle {
		return discover.NewPacer(discover.ECSLimits, w.clock)
	}
	return nil
}

// push makes ECR's :latest point at manifest and returns the push event for it.
func (w *world) push(tb testing.TB, id, manifest string) []byte {
	tb.Helper()
	digest := awstest.Digest(manifest)
	if manifest != FirstManifest {
		_, err := ecr.NewFromConfig(w.cfg).PutImage(context.Background(), &ecr.PutImageInput{
			RepositoryName: aws.String(Repository), ImageManifest: aws.String(manifest), ImageTag: aws.String("latest"),
		})
		if err != nil {
			tb.Fatalf("push %s: %v", id, err)
		}
	}
	return awstest.PushEvent(id, emulator.DefaultAccount, Repository, "latest", digest)
}

// settle lets the buckets refill, as they would between two pushes.
func (w *world) settle() {
	if w.mode == throttle {
		_ = w.clock.Sleep(context.Background(), 6*time.Second) // 100 tokens at 20/s, and some
	}
}

// result is one measured push.
type result struct {
	calls     map[string]int
	bound     Bound
	elapsed   time.Duration
	throttled int // ThrottlingException answers
	which     map[string]int
}

func (r result) total() int {
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// ratio is calls over the lower bound.
func (r result) ratio() float64 { return float64(r.total()) / float64(r.bound.Total()) }

// floor is the least time ECS's buckets allow for the bound's calls: each operation's calls
// beyond its burst at its sustained rate, every bucket kept busy at once.
func (r result) floor() time.Duration {
	var floor time.Duration
	for op, l := range emulator.ECSLimits {
		if extra := float64(r.bound.Of(op)) - l.Burst; extra > 0 {
			floor = max(floor, time.Duration(extra/l.PerSecond*float64(time.Second)))
		}
	}
	return floor
}

func (w *world) measure(tb testing.TB, run func() ([]report.Change, error), u int) (result, []report.Change) {
	tb.Helper()
	w.emu.ResetCalls()
	start := w.now()
	changes, err := run()
	elapsed := w.now().Sub(start)
	if err != nil {
		tb.Fatalf("%v: %v", w.shape, err)
	}
	if len(changes) != w.shape.K {
		tb.Fatalf("%v: %d services updated, want %d", w.shape, len(changes), w.shape.K)
	}
	r := result{calls: w.emu.Calls(), elapsed: elapsed, which: map[string]int{}}
	for _, c := range w.emu.CallLog() {
		if c.Error == "ThrottlingException" {
			r.throttled++
			r.which[c.Op]++
		}
	}
	r.bound = LowerBound(w.shape, u, registered(changes), len(changes))
	return r, changes
}

// registered counts the distinct task definitions the changes moved services to: F.
func registered(changes []report.Change) int {
	var arns []string
	for _, c := range changes {
		arns = append(arns, c.TaskDefinition)
	}
	slices.Sort(arns)
	return len(slices.Compact(arns))
}

// pinroll runs the function's engine, wired as the function wires it, on a fresh world: a
// cold push, then — same engine, cache warm — the next push of the same repository.
func pinroll(tb testing.TB, s Shape, m mode) (cold, warm result) {
	tb.Helper()
	w := newWorld(tb, s, m)
	engine := rollout.FromAWSConfig(config.Config{}, w.cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	engine.Home().Discoverer.Pace = w.pacer()
	ctx := context.Background()
	handle := func(raw []byte) func() ([]report.Change, error) {
		return func() ([]report.Change, error) {
			rep, err := engine.HandleRaw(ctx, raw)
			if err == nil && rep.Outcome != report.Deployed {
				err = fmt.Errorf("outcome %s: %s", rep.Outcome, rep.Reason)
			}
			return rep.Changes, err
		}
	}
	cold, changes := w.measure(tb, handle(w.push(tb, "cold", FirstManifest)), s.Distinct)
	// Warm: the services just updated run revisions this engine registered but never
	// described; every other task definition is cached.
	unseen := 0
	for _, arn := range distinct(changes) {
		if _, ok := engine.Home().Discoverer.Cache.Get(arn); !ok {
			unseen++
		}
	}
	event := w.push(tb, "warm", NextManifest)
	w.settle()
	warm, _ = w.measure(tb, handle(event), unseen)
	return cold, warm
}

// naive runs the naive reference on a fresh world: one push (it has no cache, so a second
// push costs the same).
func naive(tb testing.TB, s Shape, m mode) result {
	tb.Helper()
	w := newWorld(tb, s, m)
	n := &Naive{ECS: ecs.NewFromConfig(w.cfg), ECR: ecr.NewFromConfig(w.cfg), Pace: w.pacer()}
	event := w.push(tb, "naive", FirstManifest)
	r, _ := w.measure(tb, func() ([]report.Change, error) { return n.Push(context.Background(), event) }, s.Distinct)
	return r
}

func distinct(changes []report.Change) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range changes {
		if !seen[c.TaskDefinition] {
			seen[c.TaskDefinition] = true
			out = append(out, c.TaskDefinition)
		}
	}
	return out
}

// parallel runs fs at once and waits for them.
func parallel(fs ...func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(f)
	}
	wg.Wait()
}
