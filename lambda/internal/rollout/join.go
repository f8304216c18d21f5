package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// One final report for a push that continues in several target accounts.
//
// Each account's work continues as its own chain of steps (the continuation's message group is
// the account, so one account's broken chain never holds up another's), and each chain ends
// with a final report of its account. With the index table, the event's first invocation
// begins a join (index.Joins) naming the accounts still going and holding the share of those
// already done; each chain's last step leaves its account's share in it, and the one that
// leaves nobody waiting reports — logs and notifies — the whole event: totals summed over the
// accounts, each account's outcome in `accounts`. The other accounts' final reports are logged
// with `joining` (how many are still going) and are not notified.
//
// The join is an aid, like the rest of the table: when it cannot be begun or finished (the
// table missing, throttled, the item expired), the account's final report is notified on its
// own, and says why.

// Joins is what the engine needs of index.Joins.
type Joins interface {
	Begin(ctx context.Context, event string, waiting []string, done map[string][]byte) error
	Finish(ctx context.Context, event, account string, part []byte) (parts map[string][]byte, waiting int, err error)
}

var _ Joins = (*index.Joins)(nil)

// joinPart is one account's share as the join keeps it: its outcome and totals, and the first
// of its held and failed services, for the event's final report.
type joinPart struct {
	report.AccountTotals
	Held   []report.Service `json:"held,omitempty"`
	Failed []report.Service `json:"failed,omitempty"`
	// Stopped: the account's chain stopped before its end (a newer push, the registry no
	// longer allowed); the reason says why.
	Stopped bool `json:"stopped,omitempty"`
}

// maxPart bounds one account's share, so that the shares of every account of a join fit in
// one item (index.MaxJoinItem): 8 KiB, less with more than 42 accounts.
func maxPart(accounts int) int { return min(8<<10, index.MaxJoinItem/max(accounts, 1)) }

// encodePart renders rep, an account's final report, as its share of a join of accounts,
// within maxPart: the carried services are cut first, then the reason.
func encodePart(part joinPart, accounts int) []byte {
	limit := maxPart(accounts)
	for {
		raw, _ := json.Marshal(part) // strings and counts only: cannot fail
		switch {
		case len(raw) <= limit:
			return raw
		case len(part.Held)+len(part.Failed) > 0:
			part.Held, part.Failed = part.Held[:len(part.Held)/2], part.Failed[:len(part.Failed)/2]
		default:
			part.Reason = part.Reason[:len(part.Reason)/2] + "…"
		}
	}
}

// firstPart is the share of an account whose work the event's first invocation did whole.
func (e *Engine) firstPart(rep report.Report, account string, p trigger.Push) joinPart {
	var totals report.Totals
	totals.Add(rep)
	outcome, reason := totalsOutcome(totals, p.Digest, "in the event's first invocation")
	return joinPart{AccountTotals: report.AccountTotals{Account: account, Outcome: outcome, Reason: reason, Totals: totals},
		Held: carry(nil, rep.Held), Failed: carry(nil, rep.Failed)}
}

// join leaves rep, the final report of c's account (stopped: its chain stopped early), in the
// event's join: when other accounts are still going, rep says so (Joining) and is not
// notified; when this account is the last, rep becomes the event's final report. Without a
// join, rep stays the account's own.
func (e *Engine) join(ctx context.Context, rep *report.Report, c trigger.Continuation, stopped bool) {
	if c.Join == 0 {
		return
	}
	log := e.Log.With("event_id", c.Push.EventID, "target", c.Target, "step", c.Step)
	if e.Joins == nil {
		log.Warn("the event's report was to be joined across accounts, but this function has no index table (PINROLL_INDEX_TABLE): this account reports on its own")
		return
	}
	mine := joinPart{AccountTotals: report.AccountTotals{Account: c.Target, Outcome: rep.Outcome, Reason: rep.Reason, Totals: *rep.Totals},
		Held: rep.Held, Failed: rep.Failed, Stopped: stopped}
	jctx, cancel := detached(ctx) // the step's context may be done: the margin cut it short
	defer cancel()
	parts, waiting, err := e.Joins.Finish(jctx, c.Push.EventID, c.Target, encodePart(mine, c.Join))
	if err != nil {
		log.Warn("the event's final report cannot be joined across accounts: this account reports on its own", "error", err)
		rep.Reason += fmt.Sprintf(" (account %s alone: the event's report could not be joined: %v)", c.Target, err)
		return
	}
	if waiting > 0 {
		rep.Joining = waiting
		rep.Reason = fmt.Sprintf("account %s done: %s; the event's final report comes with the last of %s still going", c.Target, rep.Reason, count(waiting, "account"))
		return
	}
	shares := make([]joinPart, 0, len(parts))
	for _, account := range slices.Sorted(maps.Keys(parts)) {
		var part joinPart
		if account == c.Target {
			part = mine // as this step knows it, uncut
		} else if err := json.Unmarshal(parts[account], &part); err != nil || part.Account != account {
			log.Warn("a share of the event's join is not one pinroll wrote; the final report leaves it out", "account", account, "error", err)
			continue
		}
		shares = append(shares, part)
	}
	combine(rep, shares, c.Push.Digest, c.Began)
}

// combine makes rep — the last account's final report, whose lists are this invocation's — the
// final report of the whole event from every account's share.
func combine(rep *report.Report, shares []joinPart, digest string, began time.Time) {
	var totals report.Totals
	rep.Accounts, rep.Held, rep.Failed = nil, nil, nil
	for i, s := range shares {
		if i == 0 {
			totals = s.Totals
		} else {
			totals.Combine(s.Totals)
		}
		rep.Accounts = append(rep.Accounts, s.AccountTotals)
		rep.Held = carry(rep.Held, s.Held)
		rep.Failed = carry(rep.Failed, s.Failed)
	}
	rep.Totals = &totals
	rep.Outcome, rep.Reason = totalsOutcome(totals, digest, took(began, totals))
	rep.Reason += " in " + count(len(shares), "account")
	var stopped []string
	for _, s := range shares {
		if s.Stopped {
			stopped = append(stopped, s.Account+": "+s.Reason)
		}
	}
	switch len(stopped) {
	case 0:
	case 1:
		rep.Reason += fmt.Sprintf("; 1 account stopped early (%s)", stopped[0])
	default:
		rep.Reason += fmt.Sprintf("; %d accounts stopped early (%s, and %d more: see accounts)", len(stopped), stopped[0], len(stopped)-1)
	}
}
