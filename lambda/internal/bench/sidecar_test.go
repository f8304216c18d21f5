package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// Sidecar is the fleet of the long push: 20 × 100 services, each with its own task
// definition, and every task definition runs the pushed repository (a shared sidecar image),
// so one push registers 2,000 revisions — over 33 minutes of RegisterTaskDefinition's 1 a
// second, more than two Lambda invocations of 15 minutes.
var Sidecar = Shape{Clusters: 20, PerCluster: 100, Distinct: 2000, K: 2000}

// SidecarScale is the long push's clock: 50× the wall clock, so its half hour of throttled
// time takes about 40 s. (At 10× it would take 3.5 minutes; at 50× pinroll's own round trips,
// multiplied fifty-fold, still fit between two registration tokens.)
const SidecarScale = 50

// lambdaTimeout is the function's timeout: each invocation gets at most this much (simulated).
const lambdaTimeout = 15 * time.Minute

// sidecarRun is what the long push measured.
type sidecarRun struct {
	elapsed     time.Duration // simulated, first invocation to final report
	invocations int
	errors      int // invocations that returned an error to Lambda (a function error)
	failed      int // records returned in batchItemFailures
	dlq         int // messages in the dead-letter queue at the end
	duplicates  int // families with more than one revision pinned to the digest
	lost        int // services not running a pinned revision at the end
	final       report.Report
	registered  int // RegisterTaskDefinition calls
	throttled   int
	which       map[string]int // throttled calls by operation
	maxMessage  int            // the largest continuation message, bytes
}

// floor is RegisterTaskDefinition's: the registrations beyond its burst, at 1 a second.
func (r sidecarRun) floor() time.Duration {
	l := emulator.ECSLimits["RegisterTaskDefinition"]
	return time.Duration((float64(Sidecar.K) - l.Burst) / l.PerSecond * float64(time.Second))
}

// sidecar runs the long push as Lambda would: the push event in one invocation, then every
// continuation the event source mapping delivers, each a new process (empty cache, a fresh
// pacer that takes the buckets' level from the message) with 15 simulated minutes less the
// safety margin, against the emulator's ECS buckets on the same clock.
func sidecar(tb testing.TB) sidecarRun {
	tb.Helper()
	w := newWorld(tb, Sidecar, fast)
	w.clock = scaledClock{start: time.Now(), scale: SidecarScale}
	w.mode = throttle
	w.emu.EnableThrottling(w.clock)
	url, err := w.emu.CreateQueue(emulator.DefaultAccount, emulator.DefaultRegion, "pinroll-continue.fifo", "pinroll-continue-dlq.fifo", 5, 90*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	var run sidecarRun
	logged := &awstest.Reports{}
	engine := func() *rollout.Engine {
		e := rollout.FromAWSConfig(config.Config{ContinueQueue: url}, w.cfg, logged.Logger())
		e.SetHomeAccount(emulator.DefaultAccount)
		e.Home().Discoverer.Pace = discover.NewPacer(discover.ECSLimits, w.clock)
		e.Budget = func(ctx context.Context) (time.Duration, bool) {
			d, ok := ctx.Deadline()
			return time.Until(d) * SidecarScale, ok
		}
		return e
	}
	// One invocation: Lambda's deadline, less the safety margin the function applies.
	invocation := func() (context.Context, context.CancelFunc) {
		margin := rollout.SafetyMargin(lambdaTimeout)
		return context.WithTimeout(context.Background(), (lambdaTimeout-margin)/SidecarScale)
	}
	w.emu.ResetCalls()
	start := w.clock.Now()
	ctx, cancel := invocation()
	first, err := engine().HandleRaw(ctx, w.push(tb, "sidecar", NextManifest))
	cancel()
	run.invocations++
	if err != nil {
		run.errors++
		tb.Errorf("sidecar: the first invocation returned an error: %v", err)
	}
	if first.Continuing == 0 {
		tb.Errorf("sidecar: the first invocation did not continue: %s %q", first.Outcome, first.Reason)
	}
	sqsClient := sqs.NewFromConfig(w.cfg)
	mapping := &awstest.EventSourceMapping{SQS: sqsClient, QueueURL: url, BatchSize: 1, Invoke: func(_ context.Context, event []byte) ([]byte, error) {
		ctx, cancel := invocation()
		defer cancel()
		out, err := engine().Invoke(ctx, event)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}}
	for range 50 {
		for _, m := range w.emu.QueueMessages(emulator.DefaultAccount, emulator.DefaultRegion, "pinroll-continue.fifo") {
			run.maxMessage = max(run.maxMessage, len(m.Body))
		}
		d, ok, err := mapping.Poll(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if !ok {
			break
		}
		run.invocations++
		if d.Err != nil {
			run.errors++
		}
		run.failed += len(d.Failed)
	}
	run.elapsed = w.clock.Now().Sub(start)
	for _, c := range w.emu.CallLog() {
		if c.Error == "ThrottlingException" {
			run.throttled++
			if run.which == nil {
				run.which = map[string]int{}
			}
			run.which[c.Op]++
		}
	}
	run.registered = w.emu.Calls()["RegisterTaskDefinition"]
	w.emu.DisableThrottling()
	run.dlq = len(w.emu.QueueMessages(emulator.DefaultAccount, emulator.DefaultRegion, "pinroll-continue-dlq.fifo"))
	for _, r := range logged.Take() {
		if r.Totals != nil {
			run.final = r
		}
	}
	run.duplicates, run.lost = sidecarCheck(tb, w)
	return run
}

// sidecarCheck counts the families with more than two revisions (the original and one
// pinned) and the services that do not run a revision pinned to the pushed digest.
func sidecarCheck(tb testing.TB, w *world) (duplicates, lost int) {
	tb.Helper()
	ctx := context.Background()
	client := ecs.NewFromConfig(w.cfg)
	revisions := map[string]int{}
	p := ecs.NewListTaskDefinitionsPaginator(client, &ecs.ListTaskDefinitionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		for _, arn := range page.TaskDefinitionArns {
			revisions[discover.Family(arn)]++
		}
	}
	for _, n := range revisions {
		if n > 2 {
			duplicates++
		}
	}
	digest := awstest.Digest(NextManifest)
	for c := range Sidecar.Clusters {
		cluster := fmt.Sprintf("c%02d", c)
		for j := 0; j < Sidecar.PerCluster; j += 10 {
			var names []string
			for k := j; k < j+10; k++ {
				names = append(names, fmt.Sprintf("svc-%03d", k))
			}
			out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: names})
			if err != nil {
				tb.Fatal(err)
			}
			for _, s := range out.Services {
				td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: s.TaskDefinition})
				if err != nil {
					tb.Fatal(err)
				}
				if !strings.HasSuffix(aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image), "@"+digest) {
					lost++
				}
			}
			lost += len(names) - len(out.Services)
		}
	}
	return duplicates, lost
}

// sidecarTable prints the long push's row and fails the bench when a target is missed.
func sidecarTable(b *testing.B, out io.Writer) {
	r := sidecar(b)
	fmt.Fprintf(out, "\nlong push — %v services, every one of its %d task definitions runs the pushed repository (a shared sidecar image); ECS's buckets, scaled clock %d×; each invocation at most %s (simulated), a new process; continuations through the SQS FIFO queue\n\n",
		Sidecar, Sidecar.Distinct, SidecarScale, lambdaTimeout)
	fmt.Fprintln(out, "| push | registrations | throttled | RegisterTaskDefinition floor | time/floor | invocations | duplicate revisions | lost steps | errors to Lambda | dead-letter messages | largest message | throttle errors |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(out, "| 2,000-task-definition push of a shared sidecar image (%v) | %d | %s | %s | %s | %d | %d | %d | %d | %d | %d B | %d |\n",
		Sidecar, r.registered, secs(r.elapsed), secs(r.floor()), ratio(r.elapsed, r.floor()), r.invocations, r.duplicates, r.lost, r.errors, r.dlq, r.maxMessage, r.throttled)
	if r.throttled > 0 {
		fmt.Fprintf(out, "throttled calls (retried by the SDK): %v\n", r.which)
	}
	if r.final.Totals != nil {
		fmt.Fprintf(out, "\nfinal report: %s — %s (totals: %+v)\n", r.final.Outcome, r.final.Reason, *r.final.Totals)
	}
	checkSidecar(b, r)
}

func checkSidecar(tb testing.TB, r sidecarRun) {
	tb.Helper()
	if q := r.elapsed.Seconds() / r.floor().Seconds(); q > 1.2 {
		tb.Errorf("long push: %s is %.2f× its RegisterTaskDefinition floor %s (target ≤ 1.2×)", secs(r.elapsed), q, secs(r.floor()))
	}
	if r.duplicates != 0 || r.lost != 0 || r.errors != 0 || r.failed != 0 || r.dlq != 0 {
		tb.Errorf("long push: %d duplicate revisions, %d lost steps, %d errors to Lambda, %d failed records, %d dead-letter messages; want none", r.duplicates, r.lost, r.errors, r.failed, r.dlq)
	}
	if r.final.Totals == nil || r.final.Totals.Changes != Sidecar.K || r.final.Totals.Invocations != r.invocations {
		tb.Errorf("long push: final report %s %q totals %+v; want %d changes over %d invocations", r.final.Outcome, r.final.Reason, r.final.Totals, Sidecar.K, r.invocations)
	}
}

// BenchmarkSidecar prints the long push's row alone:
// go test -run '^$' -bench '^BenchmarkSidecar$' -benchtime 1x ./lambda/internal/bench/
func BenchmarkSidecar(b *testing.B) {
	for range b.N {
		sidecarTable(b, os.Stdout)
	}
}
