package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// matrixWorld: two task definitions in two clusters — api (app + a public sidecar) on
// prod/api, shared (app) on prod/worker and staging/worker — all tracking app:latest, which
// was just pushed. A complete deployment is two new revisions and three updated services.
func matrixWorld(t testing.TB) (*rworld, []byte) {
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}},
		clusters: []string{"prod", "staging"},
		tds: []string{
			taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest"), containerJSON("envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29")),
			taskDefJSON("shared", containerJSON("app", "{{registry}}/app:latest")),
		},
		services: []string{
			serviceJSON("prod", "api", "api:1"),
			serviceJSON("prod", "worker", "shared:1"),
			serviceJSON("staging", "worker", "shared:1"),
		},
	}.build(t)
	w := newRWorld(t, f, config.Config{}, emulator.Options{})
	return w, awstest.PushEvent("matrix", awstest.Account, "app", "latest", digestOf("app v2"))
}

// deployedCompletely checks the end state: exactly one new revision per task definition, and
// every planned service on it with app pinned to the pushed digest.
func (w *rworld) deployedCompletely(digest string) error {
	var problems []string
	for _, family := range []string{"api", "shared"} {
		if n := w.revisions(family); n != 2 {
			problems = append(problems, fmt.Sprintf("%s has %d revisions, want 2", family, n))
		}
	}
	want := w.fleet.Registry() + "/app:latest@" + digest
	for _, s := range [][2]string{{"prod", "api"}, {"prod", "worker"}, {"staging", "worker"}} {
		arn, images := w.images(s[0], s[1])
		if images["app"] != want || !strings.HasSuffix(arn, ":2") {
			problems = append(problems, fmt.Sprintf("%s/%s runs %s (%s)", s[0], s[1], images["app"], arn))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// noDuplicates checks that, whatever happened, no family has more than one new revision.
func (w *rworld) noDuplicates() error {
	for _, family := range []string{"api", "shared"} {
		if n := w.revisions(family); n > 2 {
			return fmt.Errorf("%s has %d revisions: a duplicate was registered", family, n)
		}
	}
	return nil
}

// The fault matrix (issue 6, item 1): every operation on the push path × every fault ×
// once or persistent. Each cell ends deployed — exactly one new revision per task
// definition, every service updated — or with an error naming the failed step; and then,
// faults cleared, a redelivery of the same event completes the work without a duplicate.
// Timeouts and resets strike after the operation ran (emulator.Fault.Applied): the request
// succeeded server-side and only its answer was lost, the hard case for RegisterTaskDefinition.
func TestFaultMatrix(t *testing.T) {
	// applied: a Timeout or Reset strikes after the operation ran (its answer is lost). In the
	// rows marked "(request late/lost)" they strike before: a Timeout's request still runs
	// after the client gave up (it lands late, as on a slow server), a Reset's never runs.
	ops := []struct {
		row, op, step string
		applied       bool
	}{
		{"DescribeImages", "DescribeImages", "currency check", true},
		{"ListClusters", "ListClusters", "list clusters", true},
		{"ListServices", "ListServices", "list services", true},
		{"DescribeServices", "DescribeServices", "describe services", true},
		{"DescribeTaskDefinition", "DescribeTaskDefinition", "describe task definition", true},
		{"RegisterTaskDefinition", "RegisterTaskDefinition", "register", true},
		{"  (request late/lost)", "RegisterTaskDefinition", "register", false},
		{"UpdateService", "UpdateService", "update service", true},
		{"  (request late/lost)", "UpdateService", "update service", false},
	}
	faults := []emulator.FaultKind{emulator.Throttle, emulator.ServerError, emulator.Timeout, emulator.Reset}
	durations := []struct {
		name  string
		times int
	}{{"once", 1}, {"persistent", -1}}

	var mu sync.Mutex
	results := map[string]string{}
	// The group returns once every parallel cell has finished (the testing package waits for
	// a subtest's parallel subtests), so the table below sees every result.
	t.Run("cells", func(t *testing.T) {
		for _, op := range ops {
			for _, kind := range faults {
				for _, d := range durations {
					name := fmt.Sprintf("%s/%s/%s", op.op, kind, d.name)
					if !op.applied {
						name = fmt.Sprintf("%s/%s-before/%s", op.op, kind, d.name)
					}
					t.Run(name, func(t *testing.T) {
						// Each cell has its own emulator; see TestMain for how many run at once.
						t.Parallel()
						w, event := matrixWorld(t)
						digest := digestOf("app v2")
						w.em.InjectFault(op.op, emulator.Fault{Kind: kind, Delay: faultDelay, Applied: op.applied}, d.times)

						err := w.handle(context.Background(), event)
						w.em.ClearFaults()
						var cell string
						switch {
						case err == nil:
							cell = "deployed"
							if derr := w.deployedCompletely(digest); derr != nil {
								t.Errorf("first delivery reported success, but: %v", derr)
							}
						case strings.Contains(err.Error(), op.step):
							cell = "error: " + op.step
						default:
							t.Errorf("first delivery failed without naming the step %q: %v", op.step, err)
							cell = "error (step not named)"
						}
						// RegisterTaskDefinition is retried at once only when nothing can have been
						// registered (throttling); after an ambiguous failure it is left to the
						// redelivery. Every other single fault is absorbed by the SDK's retries.
						absorbable := op.op != "RegisterTaskDefinition" || kind == emulator.Throttle || (op.applied && kind != emulator.ServerError)
						if d.times == 1 && absorbable && err != nil {
							t.Errorf("a single %s on %s was not absorbed by retries: %v", kind, op.op, err)
						}
						if derr := w.noDuplicates(); derr != nil {
							t.Errorf("after the first delivery: %v", derr)
						}
						if kind == emulator.Timeout && !op.applied {
							// Lambda redelivers a failed event a minute or more later: by then a
							// request that timed out has landed (or never will).
							time.Sleep(faultDelay + 100*time.Millisecond)
						}
						if rerr := w.handle(context.Background(), event); rerr != nil {
							t.Errorf("redelivery without faults: %v", rerr)
							cell += " → redelivery FAILED"
						} else if derr := w.deployedCompletely(digest); derr != nil {
							t.Errorf("after the redelivery: %v", derr)
							cell += " → redelivery INCOMPLETE"
						} else if err != nil {
							cell += " → ok"
						}
						mu.Lock()
						results[name] = cell
						mu.Unlock()
					})
				}
			}
		}
	})

	var b strings.Builder
	fmt.Fprintf(&b, "\n| %-22s ", "operation \\ fault")
	for _, kind := range faults {
		for _, d := range durations {
			fmt.Fprintf(&b, "| %-s ", kind.String()+" "+d.name)
		}
	}
	b.WriteString("|\n")
	for _, op := range ops {
		fmt.Fprintf(&b, "| %-22s ", op.row)
		for _, kind := range faults {
			for _, d := range durations {
				name := fmt.Sprintf("%s/%s/%s", op.op, kind, d.name)
				if !op.applied {
					name = fmt.Sprintf("%s/%s-before/%s", op.op, kind, d.name)
				}
				fmt.Fprintf(&b, "| %s ", results[name])
			}
		}
		b.WriteString("|\n")
	}
	t.Log("fault matrix (first delivery → redelivery with faults cleared; every cell: no duplicate revision):" + b.String())
}
