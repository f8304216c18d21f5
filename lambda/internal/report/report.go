// Package report is the one JSON document pinroll produces for every event it handles
// (README, "The report"). The function returns it, logs it, and may publish it; the CLI
// prints it. Field names are a contract: change them only together with README and tests.
package report

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Outcome says how an event ended.
type Outcome string

const (
	Deployed  Outcome = "deployed"  // services now run a new, digest-pinned revision
	Planned   Outcome = "planned"   // dry run: what would have been deployed
	Unchanged Outcome = "unchanged" // every matching service already pinned to the digest
	// AwaitingApproval: nothing deployed, and at least one service holds a revision that
	// waits for `pinroll approve` (see held).
	AwaitingApproval Outcome = "awaiting_approval"
	Skipped          Outcome = "skipped"     // nothing to do, with the reason
	Verified         Outcome = "verified"    // every running task runs the pinned digest
	Mismatch         Outcome = "mismatch"    // a running task does not run the pinned digest
	RolledBack       Outcome = "rolled_back" // the deployment failed and ECS rolled it back
	// Unverified: nothing could be checked (no service, no running task, no container whose
	// digest can be known), or a check could not be made. Never an all-clear.
	Unverified Outcome = "unverified"
	// EventFailed is the outcome of an event that ended in an error. The function returns the
	// error (so the event is retried); only the log, the metrics and the notification carry it.
	EventFailed Outcome = "failed"
)

// Report is the result of handling one event.
type Report struct {
	EventID   string    `json:"event_id"`
	Kind      string    `json:"kind"`
	Image     string    `json:"image,omitempty"`
	Outcome   Outcome   `json:"outcome"`
	Reason    string    `json:"reason"`
	Changes   []Change  `json:"changes"`
	Unchanged []Service `json:"unchanged,omitempty"`
	// Held lists services whose new revision is registered and waits for an approval.
	Held       []Service  `json:"held,omitempty"`
	Skipped    []Service  `json:"skipped,omitempty"`
	NearMisses []NearMiss `json:"near_misses"`
	// NearMissesOmitted counts near misses left out to keep the report small.
	NearMissesOmitted int `json:"near_misses_omitted,omitempty"`
	// Failed lists services that no retry can deploy: ECS or ECR refused the request as
	// invalid (a tag or size limit, a field it rejects). The others deploy; the event is not an
	// error, because redelivering it cannot help.
	Failed        []Service      `json:"failed,omitempty"`
	Verifications []Verification `json:"verifications,omitempty"`
	// MissingImages lists pinned digests that ECR no longer serves (expired or archived by a
	// lifecycle rule): the service fails when it next starts a task, or a rollback to its
	// previous revision would.
	MissingImages []MissingImage `json:"missing_images,omitempty"`
	// Continuing counts the services whose deploy continues in a later invocation: the push's
	// work did not fit in this one, and the rest was sent to the continuation queue. 0 when
	// nothing continues.
	Continuing int `json:"continuing,omitempty"`
	// Step is the continuation this report is of (1 for the first); 0 for an event's first
	// invocation.
	Step int `json:"step,omitempty"`
	// Totals, in the final report of a push that continued, counts what every invocation did;
	// the lists above are the last invocation's (and the held and failed services carried from
	// the ones before, up to MaxCarried each).
	Totals *Totals `json:"totals,omitempty"`
	// Deployment, in the report of an ECS deployment event, names the deployment and its
	// service: what a rolled_back, verified, mismatch or unverified report is about.
	Deployment *DeploymentRef `json:"deployment,omitempty"`
	// Accounts, in the final report of a push that continued in several target accounts, is
	// each account's share (the totals above are their sum). That report is published by the
	// account that finished last, through the index table's join.
	Accounts []AccountTotals `json:"accounts,omitempty"`
	// Joining, in the final report of one account of such a push, counts the accounts still
	// going: this report is logged, and the event's final report comes with the last of them.
	Joining int `json:"joining,omitempty"`
}

// DeploymentRef is one ECS deployment of a service.
type DeploymentRef struct {
	Account string `json:"account"`
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	ID      string `json:"id"`
	// TaskDefinition is the revision the deployment rolled out, once known.
	TaskDefinition string `json:"task_definition,omitempty"`
}

// AccountTotals is one target account's share of a push that continued.
type AccountTotals struct {
	Account string  `json:"account"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason"`
	Totals  Totals  `json:"totals"`
}

// Totals counts what the invocations of one push that continued did, together.
type Totals struct {
	Changes     int `json:"changes"`
	Unchanged   int `json:"unchanged"`
	Held        int `json:"held"`
	Skipped     int `json:"skipped"`
	Failed      int `json:"failed"`
	Invocations int `json:"invocations"`
}

// Add counts one invocation's report into t.
func (t *Totals) Add(r Report) {
	t.Changes += len(r.Changes)
	t.Unchanged += len(r.Unchanged)
	t.Held += len(r.Held)
	t.Skipped += len(r.Skipped)
	t.Failed += len(r.Failed)
	t.Invocations++
}

// Combine adds another target account's totals of the same push: the one invocation every
// account's chain began with, the event's first, counts once.
func (t *Totals) Combine(o Totals) {
	t.Changes += o.Changes
	t.Unchanged += o.Unchanged
	t.Held += o.Held
	t.Skipped += o.Skipped
	t.Failed += o.Failed
	t.Invocations += max(o.Invocations-1, 0)
}

// MaxCarried is how many held and how many failed services a continuation carries to the
// final report (the totals count them all).
const MaxCarried = 20

// MissingImage is a digest a service pins (its current revision, or the previous one a
// rollback restores) that ECR cannot serve.
type MissingImage struct {
	Account  string `json:"account"`
	Cluster  string `json:"cluster"`
	Service  string `json:"service"`
	Revision string `json:"revision"` // family:revision that pins it
	Image    string `json:"image"`    // the pinned reference
	Why      string `json:"why"`      // e.g. "not in ECR (expired or deleted)", "archived"
}

// Change is one service moved to a new task-definition revision.
type Change struct {
	Account                string            `json:"account"`
	Cluster                string            `json:"cluster"`
	Service                string            `json:"service"`
	TaskDefinition         string            `json:"task_definition"`
	PreviousTaskDefinition string            `json:"previous_task_definition"`
	Containers             []ContainerChange `json:"containers"`
}

// ContainerChange is one container's image, before and after.
type ContainerChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Service names a service that was left alone, and why.
type Service struct {
	Account string `json:"account"`
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Why     string `json:"why"`
}

// The reason of a held service says what it waits for: one held for approval begins with
// WaitsForApproval (WouldWaitForApproval in a dry run); any other waits for its wave.
const (
	WaitsForApproval     = "waits for approval of "
	WouldWaitForApproval = "would wait for approval"
)

// ForApproval reports whether a held service waits for an approval (else for its wave).
func (s Service) ForApproval() bool {
	return strings.HasPrefix(s.Why, WaitsForApproval) || strings.HasPrefix(s.Why, WouldWaitForApproval)
}

// NearMiss is a container whose image looks related to the pushed one but is not it.
type NearMiss struct {
	Account   string `json:"account"`
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Container string `json:"container"`
	Image     string `json:"image"`
	Why       string `json:"why"`
}

// Verification compares what one container of one task runs with what it should run.
type Verification struct {
	Account   string `json:"account,omitempty"`
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Task      string `json:"task,omitempty"`
	Container string `json:"container"`
	Want      string `json:"want"`
	Running   string `json:"running"`
	OK        bool   `json:"ok"`
	Why       string `json:"why,omitempty"`
}

// Merge appends o's lists to r's: the parts of one event's report that several target
// accounts produced.
func (r *Report) Merge(o Report) {
	r.Changes = append(r.Changes, o.Changes...)
	r.Unchanged = append(r.Unchanged, o.Unchanged...)
	r.Held = append(r.Held, o.Held...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Failed = append(r.Failed, o.Failed...)
	r.NearMisses = append(r.NearMisses, o.NearMisses...)
	r.NearMissesOmitted += o.NearMissesOmitted
	r.Verifications = append(r.Verifications, o.Verifications...)
	r.MissingImages = append(r.MissingImages, o.MissingImages...)
	r.Continuing += o.Continuing
}

// LimitNearMisses keeps at most n near misses, counting the others in NearMissesOmitted.
func (r *Report) LimitNearMisses(n int) {
	if len(r.NearMisses) > n {
		r.NearMissesOmitted += len(r.NearMisses) - n
		r.NearMisses = r.NearMisses[:n]
	}
}

// Normalize makes empty lists encode as [] rather than null, so scripts can rely on them.
func (r *Report) Normalize() {
	if r.Changes == nil {
		r.Changes = []Change{}
	}
	if r.NearMisses == nil {
		r.NearMisses = []NearMiss{}
	}
}

// MarshalJSON encodes the report with its lists normalized.
func (r Report) MarshalJSON() ([]byte, error) {
	r.Normalize()
	type plain Report
	return json.Marshal(plain(r))
}

// IsFailure reports whether an operator must look at the report: a verification that failed
// or could not be made, a rollback, an event that failed, or a service that failed for good.
func (r Report) IsFailure() bool {
	switch r.Outcome {
	case Mismatch, RolledBack, Unverified, EventFailed:
		return true
	}
	return len(r.Failed) > 0 || len(r.MissingImages) > 0
}

// Summary is a readable rendering for terminals: the outcome line, then one line per change,
// skip and near miss.
func (r Report) Summary() string {
	where := func(_, cluster, service string) string { return cluster + "/" + service }
	if r.accounts() > 1 {
		where = func(account, cluster, service string) string { return account + " " + cluster + "/" + service }
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s", strings.ToUpper(string(r.Outcome)), r.Reason)
	if r.Image != "" {
		fmt.Fprintf(&b, "\n  image  %s", r.Image)
	}
	for _, a := range r.Accounts {
		fmt.Fprintf(&b, "\n  account %s  %s: %d changed, %d unchanged, %d held, %d failed", a.Account, strings.ToUpper(string(a.Outcome)),
			a.Totals.Changes, a.Totals.Unchanged, a.Totals.Held, a.Totals.Failed)
	}
	for _, c := range r.Changes {
		for _, cc := range c.Containers {
			fmt.Fprintf(&b, "\n  %-28s %-10s %s\n  %-28s %-10s → %s", where(c.Account, c.Cluster, c.Service), cc.Name, cc.From, "", "", cc.To)
		}
		next := Revision(c.TaskDefinition)
		if next == "" {
			next = "a new revision"
		}
		fmt.Fprintf(&b, "\n  %-28s %-10s revision %s → %s", "", "", Revision(c.PreviousTaskDefinition), next)
	}
	for _, s := range r.Unchanged {
		fmt.Fprintf(&b, "\n  %-28s unchanged: %s", where(s.Account, s.Cluster, s.Service), s.Why)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\n  %-28s skipped: %s", where(s.Account, s.Cluster, s.Service), s.Why)
	}
	for _, s := range r.Held {
		fmt.Fprintf(&b, "\n  %-28s HELD: %s", where(s.Account, s.Cluster, s.Service), s.Why)
	}
	for _, m := range r.MissingImages {
		fmt.Fprintf(&b, "\n  %-28s MISSING IMAGE %s %s: %s", where(m.Account, m.Cluster, m.Service), m.Revision, m.Image, m.Why)
	}
	for _, s := range r.Failed {
		fmt.Fprintf(&b, "\n  %-28s FAILED, not deployed: %s", where(s.Account, s.Cluster, s.Service), s.Why)
	}
	for _, n := range r.NearMisses {
		fmt.Fprintf(&b, "\n  %-28s near miss, not touched: %s (%s)", where(n.Account, n.Cluster, n.Service), n.Image, n.Why)
	}
	if r.NearMissesOmitted > 0 {
		fmt.Fprintf(&b, "\n  … and %d more near misses", r.NearMissesOmitted)
	}
	for _, v := range r.Verifications {
		mark := "ok"
		if !v.OK {
			mark = "MISMATCH"
		}
		fmt.Fprintf(&b, "\n  %-28s %-10s %-8s running %s, want %s %s", where(v.Account, v.Cluster, v.Service), v.Container, mark, short(v.Running), short(v.Want), v.Why)
	}
	return b.String()
}

// accounts counts the accounts the report's entries name.
func (r Report) accounts() int {
	seen := map[string]bool{}
	for _, c := range r.Changes {
		seen[c.Account] = true
	}
	for _, list := range [][]Service{r.Unchanged, r.Skipped, r.Held, r.Failed} {
		for _, s := range list {
			seen[s.Account] = true
		}
	}
	for _, n := range r.NearMisses {
		seen[n.Account] = true
	}
	for _, v := range r.Verifications {
		seen[v.Account] = true
	}
	for _, m := range r.MissingImages {
		seen[m.Account] = true
	}
	delete(seen, "")
	return len(seen)
}

// Revision is the last part of an ARN: family:revision for a task definition, the id for a task.
func Revision(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// short abbreviates a digest to sha256: and 12 hex digits for tables.
func short(digest string) string {
	if strings.HasPrefix(digest, "sha256:") && len(digest) > 19 {
		return digest[:19]
	}
	return digest
}
