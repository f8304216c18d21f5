package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/plan"
)

// memClaims is a ClaimStore in memory, with DynamoDB's conditions.
type memClaims struct {
	mu       sync.Mutex
	items    map[string]index.Claim
	putErr   error // the next Put fails with it (after landing, when putLands)
	putLands bool
	getErr   error // every Get fails with it
	released int
	renewed  int
}

func (m *memClaims) Put(_ context.Context, c index.Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.putErr; err != nil {
		m.putErr = nil
		if m.putLands {
			m.items[c.Key] = c
		}
		return err
	}
	if _, ok := m.items[c.Key]; ok {
		return index.ErrClaimed
	}
	m.items[c.Key] = c
	return nil
}

func (m *memClaims) TakeOver(_ context.Context, c, old index.Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.items[c.Key]; !ok || cur.Owner != old.Owner || !cur.Expires.Equal(old.Expires) {
		return index.ErrClaimed
	}
	m.items[c.Key] = c
	return nil
}

func (m *memClaims) Get(_ context.Context, key string) (*index.Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.getErr != nil {
		return nil, m.getErr
	}
	if c, ok := m.items[key]; ok {
		return &c, nil
	}
	return nil, nil
}

func (m *memClaims) Record(_ context.Context, key, owner, revision string, done bool, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.items[key]
	if !ok || c.Owner != owner {
		return index.ErrClaimed
	}
	c.Revision, c.Done, c.Expires = revision, done, expires
	m.items[key] = c
	return nil
}

func (m *memClaims) Renew(_ context.Context, key, owner string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.items[key]
	if !ok || c.Owner != owner {
		return index.ErrClaimed
	}
	c.Expires = expires
	m.items[key] = c
	m.renewed++
	return nil
}

func (m *memClaims) Release(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.items[key]; !ok || c.Owner != owner {
		return index.ErrClaimed
	}
	delete(m.items, key)
	m.released++
	return nil
}

// familyECS keeps a family's revisions with their tags, like ECS: the latest answers the
// family's name, ListTaskDefinitions lists them newest first.
type familyECS struct {
	fakeECS
	mu        sync.Mutex
	revisions []*ecs.DescribeTaskDefinitionOutput // revision n at n-1
	// registerErr fails the next RegisterTaskDefinition; registerLands registers it anyway.
	nextErr       error
	registerLands bool
}

func newFamilyECS(reg plan.Registration) *familyECS {
	return &familyECS{
		fakeECS:   fakeECS{running: map[string]string{"web": arnOf("web", 1)}},
		revisions: []*ecs.DescribeTaskDefinitionOutput{{TaskDefinition: reg.From.Definition}},
	}
}

func (f *familyECS) DescribeTaskDefinition(_ context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.TaskDefinition) == "web" {
		return f.revisions[len(f.revisions)-1], nil
	}
	for _, r := range f.revisions {
		if aws.ToString(r.TaskDefinition.TaskDefinitionArn) == aws.ToString(in.TaskDefinition) {
			return r, nil
		}
	}
	return nil, &smithy.GenericAPIError{Code: "ClientException", Message: "Unable to describe task definition."}
}

func (f *familyECS) ListTaskDefinitions(context.Context, *ecs.ListTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ecs.ListTaskDefinitionsOutput{}
	for i := len(f.revisions) - 1; i >= 0; i-- {
		out.TaskDefinitionArns = append(out.TaskDefinitionArns, aws.ToString(f.revisions[i].TaskDefinition.TaskDefinitionArn))
	}
	return out, nil
}

func (f *familyECS) RegisterTaskDefinition(_ context.Context, in *ecs.RegisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.nextErr
	f.nextErr = nil
	if err != nil && !f.registerLands {
		return nil, err
	}
	out := f.add(in)
	if err != nil {
		return nil, err
	}
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: out.TaskDefinition}, nil
}

// add registers in as the next revision. Call with f.mu held.
func (f *familyECS) add(in *ecs.RegisterTaskDefinitionInput) *ecs.DescribeTaskDefinitionOutput {
	f.registered++
	n := int32(len(f.revisions) + 1)
	out := &ecs.DescribeTaskDefinitionOutput{Tags: in.Tags, TaskDefinition: &types.TaskDefinition{
		Family: in.Family, Revision: n, TaskDefinitionArn: aws.String(arnOf(*in.Family, int(n))), ContainerDefinitions: in.ContainerDefinitions,
	}}
	f.revisions = append(f.revisions, out)
	return out
}

func claimsFor(store ClaimStore, log *bytes.Buffer) *Claims {
	return &Claims{Store: store, Log: slog.New(slog.NewTextHandler(log, nil)), Lease: time.Minute, Wait: 50 * time.Millisecond,
		Poll: func(int) time.Duration { return time.Millisecond }}
}

var webAudit = Audit{Tag: "latest", Digest: "sha256:x", EventID: "e1"}

func webRegistration() plan.Registration {
	reg := registration("web")
	reg.From.Definition.Revision = 1
	return reg
}

func applyWeb(a *Applier) Result {
	return a.Apply(context.Background(), plan.Plan{Registrations: []plan.Registration{webRegistration()}}, webAudit, nil)
}

func TestAClaimedChangeIsRegisteredOnceAndMarkedDone(t *testing.T) {
	f := newFamilyECS(webRegistration())
	store := &memClaims{items: map[string]index.Claim{}}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || len(res.Changes) != 1 || f.registered != 1 {
		t.Fatalf("apply: %v, %d changes, %d registered", err, len(res.Changes), f.registered)
	}
	c := store.items[index.ClaimKey(arnOf("web", 1), webAudit.Digest, webRegistration().Images)]
	if c.Revision != arnOf("web", 2) || !c.Done || c.Event != "e1" || c.Base != arnOf("web", 1) {
		t.Errorf("claim after apply: %+v; want web:2, done", c)
	}
	// A second invocation of the same change reuses it: nothing registered, nothing updated.
	res = applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || len(res.Changes) != 1 || f.registered != 1 || len(f.updated) != 1 {
		t.Errorf("second apply: %v, %d changes, %d registered, updates %v; want reuse", err, len(res.Changes), f.registered, f.updated)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("warnings with a working table:\n%s", log.String())
	}
}

// A holder that crashed after its registration landed, before writing it on its claim: once
// the lease is over the claim is taken over, and the new holder finds that revision even
// though another change of the family landed after it.
func TestAnExpiredClaimIsTakenOverAndItsRevisionFound(t *testing.T) {
	reg := webRegistration()
	f := newFamilyECS(reg)
	in, err := Input(reg, Audit{Tag: "latest", Digest: "sha256:x", EventID: "crashed"})
	if err != nil {
		t.Fatal(err)
	}
	f.add(in) // web:2, the crashed holder's
	other := webRegistration()
	other.Images = map[string]string{"app": "r/app:latest@sha256:other"}
	oin, _ := Input(other, Audit{Tag: "latest", Digest: "sha256:other", EventID: "other"})
	f.add(oin) // web:3, another push's, the family's latest
	f.registered = 0
	key := index.ClaimKey(arnOf("web", 1), webAudit.Digest, reg.Images)
	store := &memClaims{items: map[string]index.Claim{key: {Key: key, Owner: "crashed", Expires: time.Now().Add(-time.Second), Event: "crashed"}}}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || len(res.Changes) != 1 || res.Changes[0].TaskDefinition != arnOf("web", 2) || f.registered != 0 {
		t.Fatalf("apply: %v, changes %+v, %d registered; want web:2 reused", err, res.Changes, f.registered)
	}
	if c := store.items[key]; c.Owner == "crashed" || c.Revision != arnOf("web", 2) || !c.Done {
		t.Errorf("claim after the takeover: %+v", c)
	}
	if !strings.Contains(log.String(), "took over an expired claim") {
		t.Errorf("the takeover is not logged:\n%s", log.String())
	}
}

// A claim held by a live invocation that has registered nothing yet: the others wait (bounded)
// and then leave the step pending rather than register it beside it.
func TestALiveClaimIsNotRegisteredBeside(t *testing.T) {
	reg := webRegistration()
	f := newFamilyECS(reg)
	key := index.ClaimKey(arnOf("web", 1), webAudit.Digest, reg.Images)
	store := &memClaims{items: map[string]index.Claim{key: {Key: key, Owner: "live", Expires: time.Now().Add(time.Minute), Event: "e1"}}}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); !errors.Is(err, errClaimHeld) || f.registered != 0 || len(f.updated) != 0 {
		t.Errorf("apply beside a live claim: %v, %d registered, updates %v; want pending, nothing done", err, f.registered, f.updated)
	}
}

// A registration ECS refuses registered nothing: the claim is released at once. One whose
// answer was lost, not found afterwards, may land still: the claim is kept until its lease ends.
func TestAFailedHolderReleasesOnlyWhatCertainlyFailed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		released int
	}{
		{"refused", &smithy.GenericAPIError{Code: "ClientException", Message: "Too many tags"}, 1},
		{"outcome unknown", fmt.Errorf("read tcp: %w", errors.New("connection reset by peer")), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFamilyECS(webRegistration())
			f.nextErr = tc.err
			store := &memClaims{items: map[string]index.Claim{}}
			var log bytes.Buffer
			res := applyWeb(&Applier{ECS: f, Retryer: alwaysRetry{}, Claims: claimsFor(store, &log)})
			if len(res.Changes) != 0 || store.released != tc.released || len(store.items) != 1-tc.released {
				t.Errorf("%d changes, %d released, %d claims left; want %d released", len(res.Changes), store.released, len(store.items), tc.released)
			}
		})
	}
}

// A claim write whose answer was lost, but which landed: the invocation finds its own claim and
// goes on as its holder.
func TestALostClaimAnswerIsFoundToBeOwn(t *testing.T) {
	f := newFamilyECS(webRegistration())
	store := &memClaims{items: map[string]index.Claim{}, putErr: errors.New("i/o timeout"), putLands: true}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || f.registered != 1 || len(res.Changes) != 1 {
		t.Errorf("apply: %v, %d registered, %d changes", err, f.registered, len(res.Changes))
	}
	for _, c := range store.items {
		if !c.Done || c.Revision != arnOf("web", 2) {
			t.Errorf("claim: %+v", c)
		}
	}
}

// A claim naming a revision that is not this change's (a corrupt table) is not trusted.
func TestAClaimNamingAnotherRevisionIsNotTrusted(t *testing.T) {
	reg := webRegistration()
	f := newFamilyECS(reg)
	key := index.ClaimKey(arnOf("web", 1), webAudit.Digest, reg.Images)
	store := &memClaims{items: map[string]index.Claim{key: {Key: key, Owner: "x", Expires: time.Now().Add(time.Minute), Revision: arnOf("web", 1), Done: true}}}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || len(res.Changes) != 1 || res.Changes[0].TaskDefinition != arnOf("web", 2) || f.registered != 1 {
		t.Errorf("apply: %v, changes %+v, %d registered; want web:2 registered", err, res.Changes, f.registered)
	}
	if !strings.Contains(log.String(), "a claim names a revision that is not this change's") {
		t.Errorf("not logged:\n%s", log.String())
	}
}

// Without the table the registration goes ahead as before, and the log says once per event
// that it is not protected.
func TestWithoutTheTableTheLogSaysOncePerEvent(t *testing.T) {
	var log bytes.Buffer
	claims := claimsFor(nil, &log)
	claims.Store = nil
	two := plan.Plan{Registrations: []plan.Registration{registration("a"), registration("b")}}
	f := &fakeECS{running: map[string]string{"a": arnOf("a", 1), "b": arnOf("b", 1)}}
	a := &Applier{ECS: f, Retryer: noRetry{}, Claims: claims}
	for _, ev := range []string{"e1", "e1", "e2"} {
		if err := a.Apply(context.Background(), two, Audit{Tag: "latest", Digest: "sha256:x", EventID: ev}, nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "registrations are not protected against concurrent invocations: the claims need the index table (PINROLL_INDEX_TABLE)"); n != 2 {
		t.Errorf("%d warnings for 2 events:\n%s", n, log.String())
	}
}

// alwaysRetry says every failure may be retried, so register's own judgement decides.
type alwaysRetry struct{ noRetry }

func (alwaysRetry) IsErrorRetryable(error) bool { return true }
func (alwaysRetry) MaxAttempts() int            { return 3 }

// A table that stops answering (a claim write timed out, the reads fail): the registration goes
// ahead as without the table, and the log says it is not protected.
func TestAnUnreachableTableFallsBack(t *testing.T) {
	f := newFamilyECS(webRegistration())
	store := &memClaims{items: map[string]index.Claim{}, putErr: errors.New("i/o timeout"), getErr: errors.New("connection refused")}
	var log bytes.Buffer
	res := applyWeb(&Applier{ECS: f, Retryer: noRetry{}, Claims: claimsFor(store, &log)})
	if err := res.Err(); err != nil || f.registered != 1 || len(res.Changes) != 1 {
		t.Errorf("apply: %v, %d registered, %d changes; want deployed as without the table", err, f.registered, len(res.Changes))
	}
	if n := strings.Count(log.String(), "registrations are not protected against concurrent invocations: the index table could not be read or written"); n != 1 {
		t.Errorf("%d warnings:\n%s", n, log.String())
	}
}

// slowUpdates is familyECS whose UpdateService takes a while: a holder slower than its lease.
type slowUpdates struct {
	*familyECS
	delay time.Duration
}

func (s slowUpdates) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	time.Sleep(s.delay)
	return s.familyECS.UpdateService(ctx, in, opts...)
}

// A holder still working when half its lease is gone renews it: nobody may take over the claim
// of a live holder.
func TestALiveHolderRenewsItsLease(t *testing.T) {
	f := newFamilyECS(webRegistration())
	store := &memClaims{items: map[string]index.Claim{}}
	var log bytes.Buffer
	claims := claimsFor(store, &log)
	claims.Lease = 80 * time.Millisecond
	res := applyWeb(&Applier{ECS: slowUpdates{familyECS: f, delay: 200 * time.Millisecond}, Retryer: noRetry{}, Claims: claims})
	if err := res.Err(); err != nil || len(res.Changes) != 1 {
		t.Fatalf("apply: %v, %d changes", err, len(res.Changes))
	}
	if store.renewed == 0 {
		t.Errorf("the lease was never renewed while the holder updated for longer than it")
	}
}
