package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// Target is one account pinroll deploys in, in its own region: the account it runs in (the
// engine's first target, Role "") or a workload account it reaches by assuming Role. Each has
// its own clients and its own pacer and cache (in Discoverer), because ECS's request buckets
// are per account and region: one account's fleet never slows another's.
type Target struct {
	// Account is the 12-digit account. For the first target it may be "" until known (the
	// function learns it from its first invocation; a local replay takes the event's).
	Account    string
	Role       string // the IAM role assumed to act in Account; "" for pinroll's own account
	ECS        ECS
	Discoverer *discover.Discoverer
	Applier    *apply.Applier
	Verifier   *verify.Verifier
}

// NewTarget wires a target from its ECS client. registry is the ECR client of the registry
// pinroll deploys from (its own account's): verification looks up tags there.
func NewTarget(account, role string, ecsClient ECS, registry verify.ECR) *Target {
	d := discover.New(ecsClient)
	return &Target{
		Account:    account,
		Role:       role,
		ECS:        ecsClient,
		Discoverer: d,
		Applier:    &apply.Applier{ECS: ecsClient, Pace: sharedPace{d}},
		Verifier:   &verify.Verifier{ECS: ecsClient, ECR: registry},
	}
}

// sharedPace is the target's one pacer as apply sees it: the discoverer's, whichever it is
// when apply calls (tests and benchmarks replace or remove it), so discovery and apply draw
// from the same copy of the account's buckets.
type sharedPace struct{ d *discover.Discoverer }

func (p sharedPace) Wait(ctx context.Context, op string) error { return p.d.Pace.Wait(ctx, op) }

// Pacer is the target's pacer: the copy of its account's ECS buckets that discovery and apply
// share (nil: nothing is paced).
func (t *Target) Pacer() *discover.Pacer { return t.Discoverer.Pace }

// RoleAccount is the account of an IAM role ARN ("" when it is not one).
func RoleAccount(role string) string {
	a, err := arn.Parse(role)
	if err != nil || a.Service != "iam" {
		return ""
	}
	return a.AccountID
}

// String names the target in logs and errors.
func (t *Target) String() string {
	account := t.Account
	if account == "" {
		account = "(this account)"
	}
	if t.Role == "" {
		return "account " + account
	}
	return "account " + account + " (role " + t.Role + ")"
}

// Home is the account pinroll runs in: the first target.
func (e *Engine) Home() *Target { return e.Targets[0] }

// homeAccount is the account pinroll runs in, or, when it is not known (a local replay
// without one), fallback: the event's account.
func (e *Engine) homeAccount(fallback string) string {
	if a := e.Home().Account; a != "" {
		return a
	}
	return fallback
}

// target is the target whose account is account (nil when there is none). Without target
// accounts every event is pinroll's own account's — EventBridge delivers nothing else unless
// someone forwards it, and then this account's credentials decide what it may see — so the
// single target takes it, as it always has: locally, under the Lambda Runtime Interface
// Emulator, the function's made-up account differs from the emulator's.
func (e *Engine) target(account string) *Target {
	if len(e.Targets) == 1 {
		return e.Home()
	}
	for _, t := range e.Targets {
		if t.Account == account {
			return t
		}
	}
	if e.Home().Account == "" {
		return e.Home() // a local replay that was not told its account
	}
	return nil
}

// maxParallelTargets bounds how many accounts are worked on at once.
const maxParallelTargets = 8

// TargetError is the failure of one target account. The others were handled; Lambda
// retries the event, and the redelivery finishes this one without repeating what is done.
type TargetError struct {
	Target string
	Err    error
}

func (e *TargetError) Error() string { return e.Target + ": " + e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// TargetsError lists the targets that failed when pinroll deploys to several.
type TargetsError struct{ Failed []*TargetError }

func (e *TargetsError) Error() string {
	msgs := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("%d of the target accounts failed (the others are done; a redelivery finishes the job): %s", len(e.Failed), strings.Join(msgs, "; "))
}

func (e *TargetsError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// eachTarget runs work for every target, in parallel (bounded), and merges what they report.
// One target failing does not stop the others. With a single target its error is returned
// as it is; with several, a TargetsError names each failed target.
func (e *Engine) eachTarget(ctx context.Context, work func(context.Context, *Target) (report.Report, error)) (report.Report, error) {
	if len(e.Targets) == 1 {
		return work(ctx, e.Targets[0])
	}
	parts := make([]report.Report, len(e.Targets))
	errs := make([]error, len(e.Targets))
	slots := make(chan struct{}, maxParallelTargets)
	var wg sync.WaitGroup
	for i, t := range e.Targets {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("internal error: %v", p)
				}
			}()
			parts[i], errs[i] = work(ctx, t)
		})
	}
	wg.Wait()
	var merged report.Report
	var failed []*TargetError
	for i, t := range e.Targets {
		merged.Merge(parts[i])
		if errs[i] != nil {
			e.Log.Error("target failed", "target", t.String(), "error", errs[i])
			failed = append(failed, &TargetError{Target: t.String(), Err: errs[i]})
		}
	}
	if len(failed) > 0 {
		return merged, &TargetsError{Failed: failed}
	}
	return merged, nil
}
