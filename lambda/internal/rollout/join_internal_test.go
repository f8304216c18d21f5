package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// A share stays within its bound however many services it carries, so that every account's
// share fits in one join item; cutting it keeps its totals and outcome.
func TestEncodePartFitsTheJoin(t *testing.T) {
	part := joinPart{AccountTotals: report.AccountTotals{Account: "222222222222", Outcome: report.Deployed, Reason: strings.Repeat("why ", 500),
		Totals: report.Totals{Changes: 1000, Failed: 20, Held: 20, Invocations: 3}}}
	for i := range report.MaxCarried {
		s := report.Service{Account: "222222222222", Cluster: "prod", Service: fmt.Sprintf("%s%03d", strings.Repeat("s", 200), i), Why: strings.Repeat("w", 300)}
		part.Held, part.Failed = append(part.Held, s), append(part.Failed, s)
	}
	for _, accounts := range []int{2, 40, 100, 1000} {
		raw := encodePart(part, accounts)
		if len(raw) > maxPart(accounts) {
			t.Errorf("%d accounts: a share of %d bytes, more than %d", accounts, len(raw), maxPart(accounts))
		}
		if accounts*maxPart(accounts) > 350_000 {
			t.Errorf("%d accounts × %d bytes do not fit one join item", accounts, maxPart(accounts))
		}
		var got joinPart
		if err := json.Unmarshal(raw, &got); err != nil || got.Account != part.Account || got.Totals != part.Totals || got.Outcome != part.Outcome {
			t.Errorf("%d accounts: the cut share reads %+v, %v", accounts, got.AccountTotals, err)
		}
	}
}

// The event's final report sums the accounts' totals — the first invocation, which every
// chain began with, counted once — lists each account, and names an account that stopped.
func TestCombineSumsTheAccounts(t *testing.T) {
	shares := []joinPart{
		{AccountTotals: report.AccountTotals{Account: "111111111111", Outcome: report.Skipped, Totals: report.Totals{Invocations: 1}}},
		{AccountTotals: report.AccountTotals{Account: "222222222222", Outcome: report.Deployed, Totals: report.Totals{Changes: 70, Invocations: 2}}},
		{AccountTotals: report.AccountTotals{Account: "333333333333", Outcome: report.Skipped, Reason: "the rollout stops at step 2: a newer push", Totals: report.Totals{Changes: 40, Held: 2, Invocations: 3}},
			Held: []report.Service{{Service: "pay"}}, Stopped: true},
	}
	var rep report.Report
	combine(&rep, shares, "sha256:abc", time.Now().Add(-time.Minute))
	want := report.Totals{Changes: 110, Held: 2, Invocations: 4}
	if *rep.Totals != want {
		t.Errorf("totals %+v, want %+v", *rep.Totals, want)
	}
	if rep.Outcome != report.Deployed || len(rep.Accounts) != 3 || len(rep.Held) != 1 {
		t.Errorf("%s, %d accounts, held %v", rep.Outcome, len(rep.Accounts), rep.Held)
	}
	for _, w := range []string{"110 services pinned to sha256:abc", "over 4 invocations", "in 3 accounts", "1 account stopped early (333333333333: the rollout stops at step 2"} {
		if !strings.Contains(rep.Reason, w) {
			t.Errorf("reason %q does not say %q", rep.Reason, w)
		}
	}
}
