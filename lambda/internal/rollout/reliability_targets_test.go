package rollout_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// The fault matrix across target accounts: STS AssumeRole failing (for every target), and the
// ECS operations that change or guard state failing in ONE target of two. Each cell's first
// delivery ends deployed, or with an error that names exactly the failed targets while the
// healthy one is deployed; then, faults cleared, the redelivery finishes the job with no
// duplicate revision anywhere.
func TestFaultMatrixAcrossTargets(t *testing.T) {
	type row struct {
		op      string
		account string // "" every account
		applied bool
	}
	rows := []row{
		{"AssumeRole", "", true},
		{"DescribeServices", prodAccount, true},
		{"RegisterTaskDefinition", prodAccount, true},
		{"UpdateService", prodAccount, true},
	}
	faults := []emulator.FaultKind{emulator.Throttle, emulator.ServerError, emulator.Timeout, emulator.Reset}
	var mu sync.Mutex
	results := map[string]string{}
	t.Run("cells", func(t *testing.T) {
		for _, r := range rows {
			for _, kind := range faults {
				for _, times := range []int{1, -1} {
					name := fmt.Sprintf("%s/%s/%d", r.op, kind, times)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { _ = srv.Close() })
						// The world is built and checked with the SDK's default timeouts: under
						// load, the engine's 1-second client timeout would make the setup's own
						// CreateRepository time out after landing and its retry fail ("already
						// exists"). Only the engine under test meets the short timeout.
						cfg := fastConfig(t, srv.URL())
						h := newHub(t, awstest.Config(t, srv.URL()), devAccount, prodAccount)
						digest := h.world()
						event := awstest.PushEvent("m", awstest.Account, "app", "latest", digest)
						// The engine under test: fresh credentials (its STS calls meet the fault).
						engine := atHome(rollout.FromAWSConfig(config.Config{TargetRoles: []string{roleOf(devAccount), roleOf(prodAccount)}}, cfg, slog.New(slog.DiscardHandler)))

						srv.Emulator().InjectFault(r.op, emulator.Fault{Kind: kind, Delay: faultDelay, Applied: r.applied, Account: r.account}, times)
						_, err = engine.HandleRaw(context.Background(), event)
						srv.Emulator().ClearFaults()
						cell := "deployed"
						deployed := func(account string) bool {
							return strings.HasSuffix(image(h.targets[account].ServiceTaskDefinition("prod", "api"), "app"), "@"+digest)
						}
						switch {
						case err == nil:
							for _, a := range []string{devAccount, prodAccount} {
								if !deployed(a) {
									t.Errorf("reported success, but %s was not deployed", a)
								}
							}
						case r.account != "":
							cell = "error: " + r.account
							if !strings.Contains(err.Error(), r.account) || strings.Contains(err.Error(), "account "+devAccount) {
								t.Errorf("error %v; want it to name %s only", err, r.account)
							}
							if !deployed(devAccount) {
								t.Errorf("the healthy target %s was not deployed while %s failed", devAccount, r.account)
							}
						default:
							cell = "error: both"
							if !strings.Contains(err.Error(), devAccount) || !strings.Contains(err.Error(), prodAccount) {
								t.Errorf("error %v; want both targets named", err)
							}
						}
						if times == 1 && err != nil && r.op != "RegisterTaskDefinition" {
							t.Errorf("a single %s on %s was not absorbed by retries: %v", kind, r.op, err)
						}
						if kind == emulator.Timeout {
							time.Sleep(faultDelay + 100*time.Millisecond) // what timed out has landed by the redelivery
						}
						if rep, rerr := engine.HandleRaw(context.Background(), event); rerr != nil {
							t.Errorf("redelivery without faults: %v", rerr)
							cell += " → FAILED"
						} else if err != nil {
							cell += " → ok (" + string(rep.Outcome) + ")"
						}
						for _, a := range []string{devAccount, prodAccount} {
							if !deployed(a) {
								t.Errorf("after the redelivery %s is not deployed", a)
							}
							if n := len(h.targets[a].Revisions("api")); n != 2 {
								t.Errorf("%s: api has %d revisions, want 2 (no duplicate)", a, n)
							}
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
	b.WriteString("\n| operation (where) \\ fault | ")
	for _, k := range faults {
		fmt.Fprintf(&b, "%s once | %s persistent | ", k, k)
	}
	b.WriteString("\n")
	for _, r := range rows {
		where := "every target"
		if r.account != "" {
			where = "one target of two"
		}
		fmt.Fprintf(&b, "| %s (%s) | ", r.op, where)
		for _, k := range faults {
			for _, times := range []int{1, -1} {
				fmt.Fprintf(&b, "%s | ", results[fmt.Sprintf("%s/%s/%d", r.op, k, times)])
			}
		}
		b.WriteString("\n")
	}
	t.Log("fault matrix across targets (first delivery → redelivery; every cell: no duplicate revision):" + b.String())
}
