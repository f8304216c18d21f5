package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// The hub: one registry account (the emulator's default, which holds app:latest and no
// services) and HubTargets target accounts, each HubTarget's fleet pulling app from the hub's
// registry. A push deploys K services in every target.
var HubTarget = Shape{Clusters: 2, PerCluster: 100, Distinct: 200, K: 5}

// HubTargets is the number of target accounts.
const HubTargets = 5

// HubScale is the hub's clock scale, smaller than Scale: with five accounts at once on two
// cores, a request's real-time lag, multiplied by the scale, outgrows the five tokens of each
// bucket that the pacer keeps in reserve (discover.Reserve, a quarter of a second of ECS's
// 20/s) and shows as throttling that real latencies never cause.
const HubScale = 2

func hubAccount(i int) string { return fmt.Sprintf("%012d", 200000000000+i) }

func hubRole(i int) string { return "arn:aws:iam::" + hubAccount(i) + ":role/pinroll-target" }

// hubFleet is the hub's world and its targets' as one fleet file.
func hubFleet(s Shape, targets int) (*fleet.Fleet, error) {
	registry := fmt.Sprintf("{{registry:%s}}", emulator.DefaultAccount)
	worlds := []map[string]any{{
		"name": "registry", "account": emulator.DefaultAccount, "region": awstest.Region,
		"repositories": []fleet.Repository{{Name: Repository, Images: []fleet.Image{{Tags: []string{"latest"}, Manifest: FirstManifest}}}},
	}}
	for t := range targets {
		var tds []fleet.TaskDefinition
		var clusters []fleet.Cluster
		var services []fleet.Service
		for i := range s.K {
			tds = append(tds, taskDefinition(fmt.Sprintf("%s-%d", Repository, i), registry+"/"+Repository+":latest"))
		}
		others := s.Distinct - s.K
		for i := range others {
			tds = append(tds, taskDefinition(fmt.Sprintf("td-%04d", i), fmt.Sprintf("%s/lib-%04d:latest", registry, i)))
		}
		other := 0
		for c := range s.Clusters {
			cluster := fmt.Sprintf("c%02d", c)
			clusters = append(clusters, fleet.Cluster{Name: cluster})
			for j := range s.PerCluster {
				td := ""
				if i, ok := s.Updated(c*s.PerCluster + j); ok {
					td = fmt.Sprintf("%s-%d:1", Repository, i)
				} else {
					td = fmt.Sprintf("td-%04d:1", other%others)
					other++
				}
				services = append(services, fleet.Service{Cluster: cluster, Name: fmt.Sprintf("svc-%03d", j), TaskDefinition: td, DesiredCount: 1, LaunchType: "FARGATE"})
			}
		}
		worlds = append(worlds, map[string]any{"name": fmt.Sprintf("target-%d", t), "account": hubAccount(t), "region": awstest.Region,
			"clusters": clusters, "taskDefinitions": tds, "services": services})
	}
	raw, err := json.Marshal(map[string]any{"worlds": worlds})
	if err != nil {
		return nil, err
	}
	return fleet.Parse(raw)
}

// hubResult is one measured hub push: calls and bound per target, and the time of the whole.
type hubResult struct {
	perTarget []result // calls made acting in each target account, against its own bound
	hubCalls  map[string]int
	elapsed   time.Duration
	throttled int
	which     []string // account and operation of each throttled call
}

// floor is the slowest target's floor: targets run in parallel, each on its own buckets.
func (h hubResult) floor() time.Duration {
	var f time.Duration
	for _, r := range h.perTarget {
		f = max(f, r.floor())
	}
	return f
}

// sumFloor is what the targets would take one after another.
func (h hubResult) sumFloor() time.Duration {
	var f time.Duration
	for _, r := range h.perTarget {
		f += r.floor()
	}
	return f
}

// hub runs one cold push through a hub engine wired as the function wires it (targets from
// PINROLL_TARGET_ROLES), each target paced on its own buckets.
func hub(tb testing.TB, s Shape, targets int, m mode) hubResult {
	tb.Helper()
	f, err := hubFleet(s, targets)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	w := &world{shape: s, mode: m, emu: srv.Emulator(), cfg: awstest.Config(tb, srv.URL()), clock: scaledClock{start: time.Now(), scale: HubScale}}
	if err := w.emu.Load(f); err != nil {
		tb.Fatal(err)
	}
	if m == throttle {
		w.emu.EnableThrottling(w.clock)
	}
	var roles []string
	for i := range targets {
		roles = append(roles, hubRole(i))
	}
	engine := rollout.FromAWSConfig(config.Config{TargetRoles: roles}, w.cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	engine.SetHomeAccount(emulator.DefaultAccount)
	for _, t := range engine.Targets {
		t.Discoverer.Pace = w.pacer() // one pacer per account: ECS's buckets are per account
	}
	event := awstest.PushEvent("hub", emulator.DefaultAccount, Repository, "latest", awstest.Digest(FirstManifest))
	w.emu.ResetCalls()
	start := w.now()
	rep, err := engine.HandleRaw(context.Background(), event)
	elapsed := w.now().Sub(start)
	if err != nil || rep.Outcome != report.Deployed {
		tb.Fatalf("hub push: %v, %s (%s)", err, rep.Outcome, rep.Reason)
	}
	if len(rep.Changes) != targets*s.K {
		tb.Fatalf("hub push: %d services updated, want %d", len(rep.Changes), targets*s.K)
	}
	h := hubResult{elapsed: elapsed, hubCalls: map[string]int{}}
	per := map[string]map[string]int{}
	for _, c := range w.emu.CallLog() {
		if c.Error == "ThrottlingException" {
			h.throttled++
			h.which = append(h.which, c.Account+" "+c.Op)
		}
		if c.Account == emulator.DefaultAccount || c.Service == "sts" {
			h.hubCalls[c.Op]++
			continue
		}
		if per[c.Account] == nil {
			per[c.Account] = map[string]int{}
		}
		per[c.Account][c.Op]++
	}
	for i := range targets {
		bound := LowerBound(s, s.Distinct, s.K, s.K)
		bound.DescribeImages = 0 // the hub's currency check, once for every target
		h.perTarget = append(h.perTarget, result{calls: per[hubAccount(i)], bound: bound})
	}
	return h
}

// TestHubCallsPerTargetWithinFivePercentOfTheBound: in a hub with 5 targets, the calls made
// in each target account stay within 5 % of that account's own lower bound, and the hub
// itself makes one currency check and one STS call per target. In `make test`: counts only.
func TestHubCallsPerTargetWithinFivePercentOfTheBound(t *testing.T) {
	h := hub(t, HubTarget, HubTargets, fast)
	for i, r := range h.perTarget {
		if r.ratio() > 1.05 {
			t.Errorf("target %s: %d calls, %.1f%% over its bound %d: %v", hubAccount(i), r.total(), 100*(r.ratio()-1), r.bound.Total(), r.calls)
		}
		for _, op := range Ops {
			if r.calls[op] < r.bound.Of(op) {
				t.Errorf("target %s: %d %s calls, fewer than the bound's %d: the fleet or the bound is wrong", hubAccount(i), r.calls[op], op, r.bound.Of(op))
			}
		}
	}
	if h.hubCalls["DescribeImages"] != 1 || h.hubCalls["AssumeRole"] != HubTargets {
		t.Errorf("the hub's own calls: %v; want 1 DescribeImages and %d AssumeRole", h.hubCalls, HubTargets)
	}
	t.Logf("hub: per target %d calls (bound %d); hub %v", h.perTarget[0].total(), h.perTarget[0].bound.Total(), h.hubCalls)
}

// hubTable is make bench's hub row: calls per target against the per-account bound, and the
// throttled time against the slowest target's floor (parallel) and the sum of the floors.
func hubTable(b *testing.B, out io.Writer) {
	fast := hub(b, HubTarget, HubTargets, fast)
	thr := hub(b, HubTarget, HubTargets, throttle)
	var calls []int
	for _, r := range fast.perTarget {
		calls = append(calls, r.total())
	}
	fmt.Fprintf(out, "\nhub — 1 registry account, %d target accounts × %v (%d TDs each), one push, K = %d per target; throttled: each account's own ECS buckets, scaled clock %d×\n\n",
		HubTargets, HubTarget, HubTarget.Distinct, HubTarget.K, HubScale)
	fmt.Fprintln(out, "| targets | calls per target (min–max) | bound per target | calls/bound (max) | hub's own calls | throttled | slowest target's floor | time/floor | sum of the floors | throttle errors |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
	worst := 0.0
	for _, r := range fast.perTarget {
		worst = max(worst, r.ratio())
	}
	var hubOps []string
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for op := range fast.hubCalls {
			if !yield(op) {
				return
			}
		}
	}) {
		hubOps = append(hubOps, fmt.Sprintf("%s %d", op, fast.hubCalls[op]))
	}
	fmt.Fprintf(out, "| %d | %d–%d | %d | %.3f | %s | %s | %s | %s | %s | %d |\n",
		HubTargets, slices.Min(calls), slices.Max(calls), fast.perTarget[0].bound.Total(), worst, strings.Join(hubOps, ", "),
		secs(thr.elapsed), secs(thr.floor()), ratio(thr.elapsed, thr.floor()), secs(thr.sumFloor()), thr.throttled)
	if r := thr.elapsed.Seconds() / thr.floor().Seconds(); r > 1.2 {
		b.Errorf("hub: %s throttled is %.2f× the slowest target's floor %s (targets should run in parallel; at most 1.2×); throttled calls: %v", secs(thr.elapsed), r, secs(thr.floor()), thr.which)
	}
}

// BenchmarkHub prints the hub row alone (make bench prints it with the rest).
func BenchmarkHub(b *testing.B) { hubTable(b, os.Stdout) }
