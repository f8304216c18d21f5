package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// manualDeadline is an invocation context whose deadline the test makes arrive.
type manualDeadline struct {
	context.Context
	deadline time.Time
	done     chan struct{}
	once     sync.Once
}

func newManualDeadline() *manualDeadline {
	return &manualDeadline{Context: context.Background(), deadline: time.Now().Add(time.Hour), done: make(chan struct{})}
}

func (m *manualDeadline) Deadline() (time.Time, bool) { return m.deadline, true }
func (m *manualDeadline) Done() <-chan struct{}       { return m.done }
func (m *manualDeadline) Err() error {
	select {
	case <-m.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
func (m *manualDeadline) expire() { m.once.Do(func() { close(m.done) }) }

// expireAfter is an ECS client that makes the deadline arrive at its n-th UpdateService.
type expireAfter struct {
	*ecs.Client
	n       int64
	calls   atomic.Int64
	expired atomic.Int64 // UnixNano of the moment the deadline arrived
	ctx     *manualDeadline
}

func (c *expireAfter) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	if c.calls.Add(1) == c.n {
		c.expired.Store(time.Now().UnixNano())
		c.ctx.expire()
	}
	return c.Client.UpdateService(ctx, in, opts...)
}

// Issue 6, item 6: a fleet of 5,000 services (10 clusters, 50 task definitions, built in
// the emulator directly) is handled; when the invocation's deadline arrives mid-way, the
// engine stops starting work and returns at once an IncompleteError naming what is done and
// what is not; the redelivery finishes the job without registering anything twice.
func TestFiveThousandServicesAndTheDeadline(t *testing.T) {
	const clusters, families, perCluster = 10, 50, 500
	spec := fleetSpec{repos: map[string][]string{"app": {"app v1", "app v2"}}}
	for f := range families {
		spec.tds = append(spec.tds, taskDefJSON(fmt.Sprintf("fam%02d", f), containerJSON("app", "{{registry}}/app:latest")))
	}
	for c := range clusters {
		name := fmt.Sprintf("c%02d", c)
		spec.clusters = append(spec.clusters, name)
		for s := range perCluster {
			spec.services = append(spec.services, serviceJSON(name, fmt.Sprintf("s%03d", s), fmt.Sprintf("fam%02d:1", (c*perCluster+s)%families)))
		}
	}
	began := time.Now()
	w := newRWorld(t, spec.build(t), config.Config{}, emulator.Options{})
	t.Logf("5,000-service fleet built in the emulator in %s", time.Since(began).Round(time.Millisecond))
	event := awstest.PushEvent("big", awstest.Account, "app", "latest", digestOf("app v2"))

	deadline := newManualDeadline()
	client := &expireAfter{Client: ecs.NewFromConfig(w.cfg), n: 1000, ctx: deadline}
	engine := atHome(rollout.New(config.Config{}, client, w.engine.ECR, w.engine.Log))
	engine.Home().Discoverer.Pace = nil // ECS's pace is the discover package's business; here, speed
	ctx, cancel := rollout.WithSafetyMargin(deadline, time.Second)
	defer cancel()
	began = time.Now()
	_, err := engine.HandleRaw(ctx, event)
	returned := time.Now()
	var ie *apply.IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first delivery: %v; want an IncompleteError for the deadline", err)
	}
	if late := returned.Sub(time.Unix(0, client.expired.Load())); late > 2*time.Second {
		t.Errorf("returned %s after the deadline", late)
	}
	if len(ie.Done) == 0 || len(ie.Pending) == 0 || len(ie.Done)+len(ie.Pending) != clusters*perCluster {
		t.Errorf("done %d + pending %d, want both > 0 and 5000 in all", len(ie.Done), len(ie.Pending))
	}
	if !strings.Contains(ie.Error(), "not yet") {
		t.Errorf("the error does not say what is not done: %v", ie)
	}
	t.Logf("first delivery: deadline at UpdateService #1000; %d done, %d pending, returned %s after it (%s in all)",
		len(ie.Done), len(ie.Pending), returned.Sub(time.Unix(0, client.expired.Load())).Round(time.Millisecond), returned.Sub(began).Round(time.Millisecond))

	engine = atHome(rollout.New(config.Config{}, ecs.NewFromConfig(w.cfg), w.engine.ECR, w.engine.Log))
	engine.Home().Discoverer.Pace = nil
	began = time.Now()
	rep, err := engine.HandleRaw(context.Background(), event)
	if err != nil || rep.Outcome != report.Deployed {
		t.Fatalf("redelivery: %v (%s)", err, rep.Outcome)
	}
	if len(rep.Changes)+len(rep.Unchanged) != clusters*perCluster || len(rep.Changes) > len(ie.Pending) {
		t.Errorf("redelivery: %d changed + %d unchanged, want the %d pending changed and 5000 in all", len(rep.Changes), len(rep.Unchanged), len(ie.Pending))
	}
	for _, f := range []string{"fam00", "fam27", "fam49"} {
		if n := w.revisions(f); n != 2 {
			t.Errorf("%s has %d revisions, want 2", f, n)
		}
	}
	t.Logf("redelivery: %d changed, %d unchanged, %s", len(rep.Changes), len(rep.Unchanged), time.Since(began).Round(time.Millisecond))
}

// With the real clock: the handler's context (Lambda's deadline minus the safety margin)
// makes the engine return before the Lambda deadline, even with every UpdateService hanging.
func TestReturnsBeforeTheLambdaDeadline(t *testing.T) {
	w, event := matrixWorld(t)
	w.em.SetLatency("UpdateService", time.Minute)
	lambdaDeadline := time.Now().Add(3 * time.Second)
	invocation, cancel := context.WithDeadline(context.Background(), lambdaDeadline)
	defer cancel()
	ctx, cancelMargin := rollout.WithSafetyMargin(invocation, rollout.SafetyMargin(time.Until(lambdaDeadline)))
	defer cancelMargin()
	err := w.handle(ctx, event)
	if time.Now().After(lambdaDeadline) {
		t.Fatalf("returned after the Lambda deadline: %v", err)
	}
	var ie *apply.IncompleteError
	if !errors.As(err, &ie) || len(ie.Pending) != 3 {
		t.Errorf("error %v; want an IncompleteError with 3 services pending", err)
	}
	w.em.SetLatency("UpdateService", 0)
	if err := w.handle(context.Background(), event); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := w.deployedCompletely(digestOf("app v2")); err != nil {
		t.Error(err)
	}
}

func TestSafetyMargin(t *testing.T) {
	for remaining, want := range map[time.Duration]time.Duration{
		3 * time.Second: time.Second, 30 * time.Second: 3 * time.Second, 15 * time.Minute: 10 * time.Second,
	} {
		if got := rollout.SafetyMargin(remaining); got != want {
			t.Errorf("SafetyMargin(%s) = %s, want %s", remaining, got, want)
		}
	}
	d := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), d)
	defer cancel()
	ctx, cancel2 := rollout.WithSafetyMargin(ctx, 5*time.Second)
	defer cancel2()
	if got, _ := ctx.Deadline(); !got.Equal(d.Add(-5 * time.Second)) {
		t.Errorf("deadline %s, want %s", got, d.Add(-5*time.Second))
	}
}

// A task definition close to ECS's 64 KiB limit (a large environment) round-trips: pinned,
// registered once, every other byte kept.
func TestTaskDefinitionNearTheSizeLimit(t *testing.T) {
	var env []string
	for i := 0; len(strings.Join(env, ",")) < 62<<10; i++ {
		env = append(env, fmt.Sprintf(`{"name":"VAR_%04d","value":%q}`, i, strings.Repeat("x", 200)))
	}
	big := fmt.Sprintf(`{"name":"app","image":"{{registry}}/app:latest","memory":256,"essential":true,"environment":[%s]}`, strings.Join(env, ","))
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}},
		clusters: []string{"prod"},
		tds:      []string{taskDefJSON("big", big)},
		services: []string{serviceJSON("prod", "big", "big:1")},
	}.build(t)
	size := len(f.TaskDefinitions[0].JSON)
	if size < 60<<10 || size > 64<<10 {
		t.Fatalf("task definition is %d bytes, want just under 64 KiB", size)
	}
	w := newRWorld(t, f, config.Config{}, emulator.Options{})
	if err := w.handle(context.Background(), awstest.PushEvent("big", awstest.Account, "app", "latest", digestOf("app v2"))); err != nil {
		t.Fatal(err)
	}
	arn, images := w.images("prod", "big")
	if !strings.HasSuffix(arn, "/big:2") || !strings.HasSuffix(images["app"], "@"+digestOf("app v2")) {
		t.Errorf("prod/big runs %s with %s", arn, images["app"])
	}
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out.TaskDefinition.ContainerDefinitions[0].Environment); got != len(env) {
		t.Errorf("the new revision has %d environment variables, want %d", got, len(env))
	}
	t.Logf("a %d-byte task definition deployed", size)
}
