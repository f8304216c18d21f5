package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// ClaimStore keeps claims: *index.Claims, in the index table.
type ClaimStore interface {
	Put(ctx context.Context, c index.Claim) error
	TakeOver(ctx context.Context, c, old index.Claim) error
	Get(ctx context.Context, key string) (*index.Claim, error)
	Record(ctx context.Context, key, owner, revision string, done bool, expires time.Time) error
	Renew(ctx context.Context, key, owner string, expires time.Time) error
	Release(ctx context.Context, key, owner string) error
}

var _ ClaimStore = (*index.Claims)(nil)

// Claims makes registrations and updates safe when several invocations handle the same change
// at once. Before registering a revision, an invocation claims the change — (base revision,
// digest, images), index.ClaimKey — with a conditional write in the index table; exactly one
// wins. The winner registers (or finds what an earlier attempt registered), updates its
// services, then writes the revision on the claim and marks it done. The others wait —
// after their own claims are done, so two invocations never wait on each other — until the
// claim is done, then reuse its revision; their re-read before UpdateService then finds the
// services on it already, and they update nothing twice.
//
// Whoever moves services to the claim's revision holds the claim: an invocation reusing a done
// claim takes it over (a conditional write on its owner and expiry) before its own updates and
// marks it done again after, so two reusing it never update one service twice either.
//
// A claim is a lease (Lease): a holder that crashed blocks nobody for longer. A claim costs two
// writes: the claim, and its revision with done. A claim past its lease that has a revision is
// used as if done; one without a revision is taken over (a
// conditional write on its old owner and expiry), and the new holder looks at ECS afresh before
// registering. A holder that knows it registered nothing (refused, throttled, cancelled before
// sending) releases its claim at once; one whose request's outcome is unknown keeps it until
// the lease ends, so that nothing lands twice.
//
// Without a table (Store nil) or when it cannot be reached, registrations go ahead as before —
// the earlier-attempt check alone protects a redelivery, not concurrent invocations — and the
// log says so at WARN, once per event.
//
// One Claims is shared by every target's Applier. Safe for concurrent use.
type Claims struct {
	Store ClaimStore
	Log   *slog.Logger
	// Lease bounds how long a holder may keep a change to itself (0: DefaultClaimLease).
	Lease time.Duration
	// Wait bounds how long an invocation waits for another's claim (0: DefaultClaimWait).
	Wait time.Duration
	// Timeout bounds one call to the table (0: DefaultClaimTimeout): a hanging table costs at
	// most this before pinroll goes on without the claims.
	Timeout time.Duration
	// Poll is the wait before look n (1, 2, …) at another's claim; nil: 50 ms doubling, at most 1 s.
	Poll func(n int) time.Duration
	// Now is the clock of leases; nil: time.Now.
	Now func() time.Time

	mu     sync.Mutex
	warned map[string]bool // event ID → the WARN was logged
}

// Defaults of Claims.
const (
	DefaultClaimLease   = 2 * time.Minute
	DefaultClaimWait    = 20 * time.Second
	DefaultClaimTimeout = 3 * time.Second
)

func (c *Claims) lease() time.Duration   { return cmpOr(c.Lease, DefaultClaimLease) }
func (c *Claims) wait() time.Duration    { return cmpOr(c.Wait, DefaultClaimWait) }
func (c *Claims) timeout() time.Duration { return cmpOr(c.Timeout, DefaultClaimTimeout) }

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (c *Claims) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Claims) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Claims) poll(n int) time.Duration {
	if c.Poll != nil {
		return c.Poll(n)
	}
	return min(50*time.Millisecond<<min(n-1, 5), time.Second)
}

// unprotected logs, once per event, that its registrations are not protected.
func (c *Claims) unprotected(event string, why string, args ...any) {
	c.mu.Lock()
	if c.warned == nil || len(c.warned) > 1000 {
		c.warned = map[string]bool{}
	}
	seen := c.warned[event]
	c.warned[event] = true
	c.mu.Unlock()
	if seen {
		return
	}
	c.log().Warn("registrations are not protected against concurrent invocations: "+why, append([]any{"event_id", event}, args...)...)
}

// call runs one table call under the claim timeout.
func (c *Claims) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	return f(ctx)
}

// claimed is a claim this invocation holds.
type claimed struct {
	claim index.Claim
	arn   string
}

// errClaimHeld: another invocation holds the claim and has not registered the revision within
// the wait. Nothing was done; the redelivery of the event finds the revision, or the claim
// expired.
var errClaimHeld = errors.New("another invocation is registering this revision and has not finished; not registered here so as not to register it twice")

// resolution is how a registration is settled: a revision to deploy (with the claim this
// invocation holds, if any), or later (another invocation holds the claim: wait for it after
// this invocation's own claims are done), or an error.
type resolution struct {
	arn   string
	held  *claimed
	later bool
	mine  *index.Claim // with later: this invocation's claim attempt, to settle with later
	err   error
}

// settle registers reg, or finds the revision another invocation registered for it. With wait
// false it returns later instead of waiting for another's claim.
func (a *Applier) settle(ctx context.Context, reg plan.Registration, audit Audit, mine *index.Claim, wait bool) resolution {
	c := a.Claims
	if c == nil {
		arn, err := a.register(ctx, reg, audit, reg.Latest, false)
		return resolution{arn: arn, err: err}
	}
	if c.Store == nil {
		c.unprotected(audit.EventID, "the claims need the index table ("+contract.EnvIndexTable+")")
		arn, err := a.register(ctx, reg, audit, reg.Latest, false)
		return resolution{arn: arn, err: err}
	}
	fresh := mine == nil
	if fresh {
		now := c.now()
		mine = &index.Claim{Key: index.ClaimKey(reg.FromARN(), audit.Digest, reg.Images), Owner: newOwner(), Expires: now.Add(c.lease()),
			Base: reg.FromARN(), Digest: audit.Digest, Event: audit.EventID, At: now}
		err := c.call(ctx, func(ctx context.Context) error { return c.Store.Put(ctx, *mine) })
		if err == nil {
			// Nobody claimed this change: what discovery saw a moment ago is the latest word.
			return a.holdAndRegister(ctx, reg, audit, *mine, reg.Latest)
		}
		if !errors.Is(err, index.ErrClaimed) && notWritten(err) {
			c.unprotected(audit.EventID, "the index table could not be read or written for the claims", "error", err)
			arn, err := a.register(ctx, reg, audit, reg.Latest, false)
			return resolution{arn: arn, err: err}
		}
		// Claimed by another, or the write's outcome is unknown (a timeout, a lost answer):
		// the claim as it is now says which.
	}
	deadline := time.Now().Add(c.wait())
	troubles := 0
	// unreachable goes on without the claims once the table failed twice.
	unreachable := func(err error) (resolution, bool) {
		if troubles++; troubles < 2 && ctx.Err() == nil {
			return resolution{}, false
		}
		c.unprotected(audit.EventID, "the index table could not be read or written for the claims", "error", err)
		arn, err := a.register(ctx, reg, audit, nil, true)
		return resolution{arn: arn, err: err}, true
	}
	for look := 1; ; look++ {
		if err := ctx.Err(); err != nil {
			return resolution{err: err}
		}
		if time.Now().After(deadline.Add(c.wait())) { // claims changing hands all along: give up for now
			return resolution{err: fmt.Errorf("%w (the claim kept changing hands)", errClaimHeld)}
		}
		var cur *index.Claim
		err := c.call(ctx, func(ctx context.Context) (err error) { cur, err = c.Store.Get(ctx, mine.Key); return err })
		now := c.now()
		switch {
		case errors.Is(err, index.ErrBadClaim):
			c.unprotected(audit.EventID, "a claim in the index table is not one pinroll can read", "claim", mine.Key, "error", err)
			arn, err := a.register(ctx, reg, audit, nil, true)
			return resolution{arn: arn, err: err}
		case err != nil:
			if r, done := unreachable(err); done {
				return r
			}
		case cur == nil: // released by a holder that registered nothing (or never written)
			mine.Expires = now.Add(c.lease())
			err := c.call(ctx, func(ctx context.Context) error { return c.Store.Put(ctx, *mine) })
			if err == nil {
				return a.holdAndRegister(ctx, reg, audit, *mine, nil)
			}
			if !errors.Is(err, index.ErrClaimed) {
				if r, done := unreachable(err); done {
					return r
				}
			}
			continue // claimed meanwhile, or its outcome unknown: read it again
		case cur.Owner == mine.Owner: // this invocation's write landed, only its answer was lost
			return a.holdAndRegister(ctx, reg, audit, *cur, nil)
		case cur.Revision != "" && (cur.Done || cur.Expired(now)):
			r := a.reuse(ctx, reg, audit, cur)
			if r.err != nil || r.arn != cur.Revision {
				return r // not trusted: registered as without claims
			}
			// Whoever updates services to the revision holds the claim: two invocations reusing
			// it (for services its registrar did not update) never update one service twice.
			next := *cur
			next.Owner, next.Done, next.Expires, next.Event = mine.Owner, false, now.Add(c.lease()), audit.EventID
			err := c.call(ctx, func(ctx context.Context) error { return c.Store.TakeOver(ctx, next, *cur) })
			if err == nil {
				return resolution{arn: r.arn, held: &claimed{claim: next, arn: r.arn}}
			}
			if !errors.Is(err, index.ErrClaimed) {
				if troubles++; troubles >= 2 {
					c.unprotected(audit.EventID, "the index table could not be read or written for the claims", "error", err)
					return r
				}
			}
			continue // another invocation took it to update its services: wait for it
		case cur.Revision == "" && cur.Expired(now):
			next := *mine
			next.Expires, next.At = now.Add(c.lease()), now
			err := c.call(ctx, func(ctx context.Context) error { return c.Store.TakeOver(ctx, next, *cur) })
			if err == nil {
				c.log().Warn("took over an expired claim: its holder did not finish", "claim", mine.Key, "previous_owner_event", cur.Event, "expired", cur.Expires)
				// The old holder may have registered it after all: look at ECS, not at discovery.
				return a.holdAndRegister(ctx, reg, audit, next, nil)
			}
			if !errors.Is(err, index.ErrClaimed) {
				if r, done := unreachable(err); done {
					return r
				}
			}
			continue // taken over by another, or its outcome unknown: read it again
		case !wait:
			return resolution{later: true, mine: mine}
		case time.Now().After(deadline):
			if cur.Revision != "" {
				// Registered, and its holder is still updating: go on with its revision; the
				// re-read before each update skips what it has done.
				return a.reuse(ctx, reg, audit, cur)
			}
			return resolution{err: fmt.Errorf("%w (claim held by event %s until %s)", errClaimHeld, cur.Event, cur.Expires.UTC().Format(time.RFC3339))}
		}
		if sleep.For(ctx, c.poll(look)) != nil {
			return resolution{err: ctx.Err()}
		}
	}
}

// holdAndRegister registers reg under the claim this invocation holds and returns it held: its
// revision is written on the claim, with done, once the services are updated (done). A failure
// that proves nothing was registered releases the claim; one of unknown outcome keeps it until
// its lease ends.
//
// The revision is written once, after the updates, not also right after registering: a claim
// then costs two writes, and others wait for done in any case. A holder that crashes in between
// leaves a claim without a revision; whoever takes it over finds the revision among the family's
// recent ones (register with deep).
func (a *Applier) holdAndRegister(ctx context.Context, reg plan.Registration, audit Audit, mine index.Claim, firstLook *discover.TaskDefinition) resolution {
	c := a.Claims
	rctx, cancel := context.WithDeadline(ctx, mine.Expires.Add(-c.lease()/2))
	arn, err := a.register(rctx, reg, audit, firstLook, firstLook == nil)
	cancel()
	if err != nil {
		if !errors.Is(err, errUnknownOutcome) {
			if rerr := c.call(context.WithoutCancel(ctx), func(ctx context.Context) error { return c.Store.Release(ctx, mine.Key, mine.Owner) }); rerr != nil {
				c.log().Warn("claim not released; it expires at the end of its lease", "claim", mine.Key, "expires", mine.Expires, "error", rerr)
			}
		}
		return resolution{err: err}
	}
	return resolution{arn: arn, held: &claimed{claim: mine, arn: arn}}
}

// keeper renews the leases of the claims one Apply call holds while it works on them — a large
// plan, a slow table — so that nobody takes over a claim whose holder is alive: a claim whose
// lease is half gone is renewed (checked every quarter lease).
type keeper struct {
	c     *Claims
	mu    sync.Mutex
	held  map[*claimed]time.Time // claim → end of its lease
	stop  chan struct{}
	ended chan struct{}
}

// keep starts renewing the leases of the claims given to add, until close (nil without a table).
func (c *Claims) keep(ctx context.Context) *keeper {
	if c == nil || c.Store == nil {
		return nil
	}
	k := &keeper{c: c, held: map[*claimed]time.Time{}, stop: make(chan struct{}), ended: make(chan struct{})}
	go k.run(context.WithoutCancel(ctx))
	return k
}

func (k *keeper) add(h *claimed) {
	if k == nil || h == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[h] = h.claim.Expires
}

func (k *keeper) drop(h *claimed) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.held, h)
}

func (k *keeper) close() {
	if k == nil {
		return
	}
	close(k.stop)
	<-k.ended
}

func (k *keeper) run(ctx context.Context) {
	defer close(k.ended)
	c := k.c
	tick := time.NewTicker(c.lease() / 4)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		k.mu.Lock()
		due := map[*claimed]time.Time{}
		for h, exp := range k.held {
			if exp.Sub(c.now()) < c.lease()/2 {
				due[h] = c.now().Add(c.lease())
			}
		}
		k.mu.Unlock()
		for h, exp := range due {
			err := c.call(ctx, func(ctx context.Context) error { return c.Store.Renew(ctx, h.claim.Key, h.claim.Owner, exp) })
			if err != nil {
				c.log().Warn("claim lease not renewed", "claim", h.claim.Key, "error", err)
				continue
			}
			k.mu.Lock()
			if _, ok := k.held[h]; ok {
				k.held[h] = exp
			}
			k.mu.Unlock()
		}
	}
}

// done writes on the claims this invocation holds their revisions, and that they are done:
// their services are updated (or their updates failed: the others' re-reads decide then).
func (a *Applier) done(ctx context.Context, keep *keeper, held []*claimed) {
	c := a.Claims
	for _, h := range held {
		keep.drop(h)
		if err := c.call(context.WithoutCancel(ctx), func(ctx context.Context) error {
			return c.Store.Record(ctx, h.claim.Key, h.claim.Owner, h.arn, true, c.now())
		}); err != nil {
			c.log().Warn("claim not marked done; others wait for it to expire, then find its revision in ECS", "claim", h.claim.Key, "revision", h.arn, "error", err)
		}
	}
}

// reuse checks the revision another invocation wrote on cur — registered by pinroll from the
// same base, for the same digest, with the same content — and returns it. One that does not
// match (a corrupt table) is not trusted: reg is registered as without claims.
func (a *Applier) reuse(ctx context.Context, reg plan.Registration, audit Audit, cur *index.Claim) resolution {
	want, err := Input(reg, audit)
	if err != nil {
		return resolution{err: err}
	}
	if err := a.wait(ctx, "DescribeTaskDefinition"); err != nil {
		return resolution{err: err}
	}
	out, err := a.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(cur.Revision), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return resolution{err: fmt.Errorf("describe %s, registered by another invocation: %w", report.Revision(cur.Revision), err)}
	}
	arn, err := matches(reg, audit, want, &discover.TaskDefinition{Definition: out.TaskDefinition, Tags: out.Tags})
	if err != nil || arn == "" || arn != cur.Revision {
		a.Claims.unprotected(audit.EventID, "a claim names a revision that is not this change's", "claim", cur.Key, "revision", cur.Revision)
		arn, err := a.register(ctx, reg, audit, nil, true)
		return resolution{arn: arn, err: err}
	}
	return resolution{arn: arn}
}

// notWritten reports whether a failed table write certainly changed nothing: DynamoDB refused
// it (no such table, access denied, throttled, invalid), as opposed to a timeout, a lost
// connection or a server error, after which the write may have landed.
func notWritten(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

func newOwner() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
