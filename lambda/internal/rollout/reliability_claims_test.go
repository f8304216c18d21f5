package rollout_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
)

// Issue 13, item 3: several function instances handling deliveries at once. The crowd is
// three engines — separate rollout.Engine values, separate caches, as three Lambda instances
// are — on one emulator, fed 30 pushes of four repository tags in ten rounds. Every push is
// delivered three times: twice at the same moment to two instances and once more a moment
// later to the third (EventBridge delivers at least once; an SQS continuation can be consumed
// twice), and the three pushes of a round are handled at once. A delivery that fails is
// delivered again after the round, as Lambda's retries do.
//
// It counts what must stay 0: duplicate revisions (two revisions of a family registered from
// the same base, for the same digest, with the same content) and double deployments (two
// UpdateService calls for one service to equivalent revisions), and checks that nothing is
// lost: every service ends on the last pushed digest of each image it tracks.

const crowdEngines = 3

// crowdWorld: app, sidecar and worker (:latest), and app:canary.
//
//	web    app:latest + sidecar:latest      prod/web, staging/web
//	api    app:latest                       prod/api
//	worker worker:latest + sidecar:latest   prod/worker
//	canary app:canary                       prod/canary
func crowdWorld(t testing.TB, opts emulator.Options) *rworld {
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app 0"}, "sidecar": {"sidecar 0"}, "worker": {"worker 0"}},
		clusters: []string{"prod", "staging"},
		tds: []string{
			taskDefJSON("web", containerJSON("app", "{{registry}}/app:latest"), containerJSON("sidecar", "{{registry}}/sidecar:latest")),
			taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest")),
			taskDefJSON("worker", containerJSON("worker", "{{registry}}/worker:latest"), containerJSON("sidecar", "{{registry}}/sidecar:latest")),
			taskDefJSON("canary", containerJSON("app", "{{registry}}/app:canary")),
		},
		services: []string{
			serviceJSON("prod", "web", "web:1"), serviceJSON("staging", "web", "web:1"),
			serviceJSON("prod", "api", "api:1"), serviceJSON("prod", "worker", "worker:1"),
			serviceJSON("prod", "canary", "canary:1"),
		},
	}.build(t)
	if opts.DeployDelay == 0 {
		opts.DeployDelay = time.Hour // the replaced deployment is listed in UpdateService's answer, as on ECS
	}
	w := newRWorld(t, f, config.Config{}, opts)
	w.pushImage(t, "app", "canary", "app canary 0")
	return w
}

func (w *rworld) pushImage(t testing.TB, repo, tag, seed string) {
	t.Helper()
	if _, err := ecr.NewFromConfig(w.cfg).PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName: aws.String(repo), ImageManifest: aws.String(manifestOf(seed)), ImageTag: aws.String(tag),
	}); err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
}

// tracked is what each service's containers track: repository:tag by container.
var tracked = map[string]map[string]string{
	"prod/web":    {"app": "app:latest", "sidecar": "sidecar:latest"},
	"staging/web": {"app": "app:latest", "sidecar": "sidecar:latest"},
	"prod/api":    {"app": "app:latest"},
	"prod/worker": {"worker": "worker:latest", "sidecar": "sidecar:latest"},
	"prod/canary": {"app": "app:canary"},
}

// updates records every UpdateService call the engines send: service → task definitions.
type updates struct {
	mu    sync.Mutex
	calls map[string][]string
}

func (u *updates) middleware(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("recordUpdateService", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if p, ok := in.Parameters.(*ecs.UpdateServiceInput); ok {
			cluster := aws.ToString(p.Cluster)
			cluster = cluster[strings.LastIndex(cluster, "/")+1:]
			u.mu.Lock()
			u.calls[cluster+"/"+aws.ToString(p.Service)] = append(u.calls[cluster+"/"+aws.ToString(p.Service)], aws.ToString(p.TaskDefinition))
			u.mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

// lockedBuffer is a log sink several engines write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// crowdRun is one measurement's setting.
type crowdRun struct {
	name    string
	engines int
	// sequential: one delivery at a time (concurrency 1, the baseline); else all of a round's at once.
	sequential bool
	table      string // "": no index table configured; "missing": configured, not created
	faults     func(em *emulator.Emulator, round int)
}

// crowdResult is what a run measured.
type crowdResult struct {
	duplicates, doubles, registrations, updateCalls, failedDeliveries int
	lost                                                              []string
	logs                                                              string
}

func (r crowdResult) String() string {
	return fmt.Sprintf("duplicate_revisions=%d double_deployments=%d registrations=%d update_service_calls=%d deliveries_failed_after_retries=%d lost=%d",
		r.duplicates, r.doubles, r.registrations, r.updateCalls, r.failedDeliveries, len(r.lost))
}

func runCrowd(t *testing.T, run crowdRun) crowdResult {
	w := crowdWorld(t, emulator.Options{})
	ctx := context.Background()
	rec := &updates{calls: map[string][]string{}}
	logs := &lockedBuffer{}
	cfg := w.cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, rec.middleware)
	pc := config.Config{}
	switch run.table {
	case "":
	case "missing":
		pc.IndexTable = "pinroll-absent"
	default:
		pc.IndexTable = run.table
		if _, err := index.Create(ctx, dynamodb.NewFromConfig(awstest.Config(t, w.srv.URL())), run.table); err != nil {
			t.Fatal(err)
		}
	}
	engines := make([]*rollout.Engine, run.engines)
	for i := range engines {
		log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("engine", i)
		engines[i] = atHome(rollout.FromAWSConfig(pc, cfg, log))
		// The emulator does not throttle here; at ECS's real pace (RegisterTaskDefinition 1 a
		// second past its burst) the crowd's ~60–180 registrations would wait minutes of wall
		// time and space the engines apart, which is the opposite of what this test wants.
		engines[i].Home().Discoverer.Pace = nil
		shortClaims(engines[i])
	}

	type push struct{ repo, tag string }
	cycle := []push{{"app", "latest"}, {"sidecar", "latest"}, {"worker", "latest"}, {"app", "canary"}}
	latest := map[string]string{"app:latest": digestOf("app 0"), "sidecar:latest": digestOf("sidecar 0"), "worker:latest": digestOf("worker 0"), "app:canary": digestOf("app canary 0")}
	failed := 0
	const rounds, perRound = 10, 3
	for round := range rounds {
		var events [][]byte
		for i := range perRound {
			p := cycle[(round*perRound+i)%len(cycle)]
			seed := fmt.Sprintf("%s %s %d", p.repo, p.tag, round+1)
			w.pushImage(t, p.repo, p.tag, seed)
			latest[p.repo+":"+p.tag] = digestOf(seed)
			events = append(events, awstest.PushEvent(fmt.Sprintf("push-%d-%d", round, i), awstest.Account, p.repo, p.tag, digestOf(seed)))
		}
		if run.faults != nil {
			run.faults(w.em, round)
		}
		type delivery struct {
			engine int
			event  []byte
		}
		var deliveries []delivery
		for i, ev := range events {
			for d := range 3 {
				deliveries = append(deliveries, delivery{engine: (round + i + d) % run.engines, event: ev})
			}
		}
		errs := make([]error, len(deliveries))
		var wg sync.WaitGroup
		for k, d := range deliveries {
			if run.sequential {
				_, errs[k] = engines[d.engine].HandleRaw(ctx, d.event)
				continue
			}
			wg.Go(func() {
				if k%3 == 2 {
					time.Sleep(time.Duration(k%5) * time.Millisecond) // the third delivery: a moment later
				}
				_, errs[k] = engines[d.engine].HandleRaw(ctx, d.event)
			})
		}
		wg.Wait()
		w.em.ClearFaults()
		// Lambda delivers a failed event again (twice): the same event, any instance.
		for k, err := range errs {
			for retry := 1; err != nil && retry <= 2; retry++ {
				_, err = engines[(deliveries[k].engine+retry)%run.engines].HandleRaw(ctx, deliveries[k].event)
			}
			if err != nil {
				failed++
				t.Logf("round %d: a delivery still fails after Lambda's retries: %v", round, err)
			}
		}
	}

	res := crowdResult{failedDeliveries: failed, logs: logs.String()}
	res.duplicates, res.registrations, res.doubles = w.countDuplicates(t, rec)
	for _, calls := range rec.calls {
		res.updateCalls += len(calls)
	}
	reg := w.fleet.Registry()
	for _, svc := range slices.Sorted(maps.Keys(tracked)) {
		cluster, name, _ := strings.Cut(svc, "/")
		_, images := w.images(cluster, name)
		for container, ref := range tracked[svc] {
			repo, tag, _ := strings.Cut(ref, ":")
			if want := reg + "/" + repo + ":" + tag + "@" + latest[ref]; images[container] != want {
				res.lost = append(res.lost, fmt.Sprintf("%s container %s runs %s, want %s", svc, container, images[container], want))
			}
		}
	}
	return res
}

// countDuplicates groups every revision pinroll registered by (family, pinroll:previous,
// pinroll:digest, content): each group beyond its first revision is a duplicate. An
// UpdateService call of a service to a group it was already sent to is a double deployment.
func (w *rworld) countDuplicates(t *testing.T, rec *updates) (duplicates, registrations, doubles int) {
	t.Helper()
	ctx := context.Background()
	type group struct {
		arn  string
		in   *ecs.RegisterTaskDefinitionInput
		prev string
		dig  string
	}
	canonical := map[string]string{} // revision ARN → its group's first ARN
	for _, family := range []string{"web", "api", "worker", "canary"} {
		var groups []group
		p := ecs.NewListTaskDefinitionsPaginator(w.ecs, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, arn := range page.TaskDefinitionArns {
				out, err := w.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
				if err != nil {
					t.Fatal(err)
				}
				tags := map[string]string{}
				for _, tag := range out.Tags {
					tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
				}
				canonical[arn] = arn
				if tags[apply.TagPrevious] == "" {
					continue // not registered by pinroll
				}
				registrations++
				in, err := taskdef.Clone(out.TaskDefinition, nil)
				if err != nil {
					t.Fatal(err)
				}
				g := group{arn: arn, in: in, prev: tags[apply.TagPrevious], dig: tags[apply.TagDigest]}
				i := slices.IndexFunc(groups, func(o group) bool { return o.prev == g.prev && o.dig == g.dig && taskdef.Equal(o.in, g.in) })
				if i >= 0 {
					duplicates++
					canonical[arn] = groups[i].arn
					continue
				}
				groups = append(groups, g)
			}
		}
	}
	for svc, calls := range rec.calls {
		seen := map[string]bool{}
		for _, arn := range calls {
			c := canonical[arn]
			if c == "" {
				c = arn
			}
			if seen[c] {
				doubles++
				t.Logf("double deployment of %s to %s: its updates, in order: %v", svc, c, calls)
			}
			seen[c] = true
		}
	}
	return duplicates, registrations, doubles
}

// shortClaims scales the claims' timings down to the emulator's: leases of seconds, polls of
// milliseconds. The wait outlasts a holder's faulted registration (a client timeout).
func shortClaims(e *rollout.Engine) {
	c := e.Home().Applier.Claims
	c.Lease, c.Wait, c.Poll = 10*time.Second, 15*time.Second, func(int) time.Duration { return 5 * time.Millisecond }
}

// faultsEachRound injects, at the start of every round, n faults of kind on each op, striking
// after the operation ran (its state change happens, its answer is late or lost).
func faultsEachRound(kind emulator.FaultKind, n int, ops ...string) func(*emulator.Emulator, int) {
	return func(em *emulator.Emulator, _ int) {
		for _, op := range ops {
			em.InjectFault(op, emulator.Fault{Kind: kind, Delay: faultDelay, Applied: true}, n)
		}
	}
}

// unprotected is the WARN that says registrations are not protected.
const unprotected = "registrations are not protected against concurrent invocations"

func TestCrowdOfEngines(t *testing.T) {
	const table = "pinroll-index"
	claimWrites := []string{"PutItem", "UpdateItem"}
	for _, tc := range []struct {
		run crowdRun
		// protected: 0 duplicates, 0 double deployments, every delivery done; else (no
		// usable table) only nothing lost, and the log says registrations are unprotected.
		protected bool
	}{
		{crowdRun{name: "concurrency 1", engines: 1, sequential: true, table: table}, true},
		{crowdRun{name: "3 engines", engines: crowdEngines, table: table}, true},
		{crowdRun{name: "3 engines, RegisterTaskDefinition times out after registering", engines: crowdEngines, table: table,
			faults: faultsEachRound(emulator.Timeout, 2, "RegisterTaskDefinition")}, true},
		{crowdRun{name: "3 engines, RegisterTaskDefinition's connection reset after registering", engines: crowdEngines, table: table,
			faults: faultsEachRound(emulator.Reset, 2, "RegisterTaskDefinition")}, true},
		{crowdRun{name: "3 engines, claim writes time out after writing", engines: crowdEngines, table: table,
			faults: faultsEachRound(emulator.Timeout, 2, claimWrites...)}, true},
		{crowdRun{name: "3 engines, claim writes' connections reset after writing", engines: crowdEngines, table: table,
			faults: faultsEachRound(emulator.Reset, 2, claimWrites...)}, true},
		{crowdRun{name: "3 engines, no table", engines: crowdEngines}, false},
		{crowdRun{name: "3 engines, table missing", engines: crowdEngines, table: "missing"}, false},
		{crowdRun{name: "3 engines, table throttled every other round", engines: crowdEngines, table: table,
			faults: func(em *emulator.Emulator, round int) {
				if round%2 == 1 {
					for _, op := range []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem"} {
						em.InjectFault(op, emulator.Fault{Kind: emulator.Throttle}, -1)
					}
				}
			}}, false},
	} {
		t.Run(tc.run.name, func(t *testing.T) {
			res := runCrowd(t, tc.run)
			t.Logf("BENCH crowd %q engines=%d sequential=%t pushes=30 deliveries=90 table=%q %s",
				tc.run.name, tc.run.engines, tc.run.sequential, tc.run.table, res)
			for _, l := range res.lost {
				if tc.protected {
					t.Errorf("lost: %s", l)
				} else {
					// Without claims, three engines racing on one service (duplicate revisions,
					// duplicate deployments) rarely lose an update: about 1 run in 15 under
					// -race. Measured, not asserted, so the suite does not flake on the very
					// behaviour the claims remove.
					t.Logf("KNOWN without claims, lost: %s", l)
				}
			}
			warned := strings.Contains(res.logs, unprotected)
			if tc.protected {
				if res.duplicates != 0 || res.doubles != 0 || res.failedDeliveries != 0 {
					t.Errorf("%s; want 0 duplicates, 0 double deployments, every delivery done; the warnings:\n%s", res, res.logs)
				}
				if warned {
					t.Errorf("the log says registrations are unprotected, with the table working:\n%s", res.logs)
				}
			} else if !warned {
				t.Errorf("without a usable table the log does not say %q:\n%s", unprotected, res.logs)
			}
		})
	}
}
