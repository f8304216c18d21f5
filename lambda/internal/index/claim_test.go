package index_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/index"
)

func TestClaimKeyNamesTheChange(t *testing.T) {
	base := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"
	images := map[string]string{"app": "r/app:latest@sha256:a", "sidecar": "r/sidecar:latest@sha256:b"}
	k := index.ClaimKey(base, "sha256:a", images)
	if !strings.HasPrefix(k, index.ClaimPrefix+base+"#") || strings.HasPrefix(k, "arn:") {
		t.Errorf("key %s: want %s<base>#<hash>, never a task definition's ARN", k, index.ClaimPrefix)
	}
	same := index.ClaimKey(base, "sha256:a", map[string]string{"sidecar": "r/sidecar:latest@sha256:b", "app": "r/app:latest@sha256:a"})
	if same != k {
		t.Errorf("the same change keyed twice: %s, %s", k, same)
	}
	for name, other := range map[string]string{
		"another base":   index.ClaimKey(strings.TrimSuffix(base, "7")+"8", "sha256:a", images),
		"another digest": index.ClaimKey(base, "sha256:c", images),
		"other images":   index.ClaimKey(base, "sha256:a", map[string]string{"app": "r/app:latest@sha256:a"}),
	} {
		if other == k {
			t.Errorf("%s has the same key", name)
		}
	}
}

// claimLifecycle is what apply does with claims, on any DynamoDB.
func claimLifecycle(t *testing.T, db *dynamodb.Client, table string) {
	ctx := context.Background()
	claims := index.NewClaims(db, table)
	now := time.Now().Truncate(time.Millisecond)
	key := index.ClaimKey("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", "sha256:a", map[string]string{"app": "r/app@sha256:a"})
	a := index.Claim{Key: key, Owner: "owner-a", Expires: now.Add(time.Minute), Base: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", Digest: "sha256:a", Event: "e1", At: now}
	if err := claims.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := a
	b.Owner, b.Event = "owner-b", "e2"
	if err := claims.Put(ctx, b); !errors.Is(err, index.ErrClaimed) {
		t.Fatalf("a second claim: %v, want ErrClaimed", err)
	}
	got, err := claims.Get(ctx, key)
	if err != nil || got == nil || got.Owner != "owner-a" || !got.Expires.Equal(a.Expires) || got.Revision != "" || got.Done || got.Event != "e1" || got.Digest != "sha256:a" {
		t.Fatalf("claim as read: %+v, %v", got, err)
	}
	if got.Expired(now) || !got.Expired(now.Add(time.Minute)) {
		t.Errorf("lease: expired at claim time %v, at its end %v", got.Expired(now), got.Expired(now.Add(time.Minute)))
	}
	rev := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
	if err := claims.Record(ctx, key, "owner-b", rev, false, now.Add(time.Hour)); !errors.Is(err, index.ErrClaimed) {
		t.Errorf("write-back by another owner: %v, want ErrClaimed", err)
	}
	if err := claims.Record(ctx, key, "owner-a", rev, true, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err = claims.Get(ctx, key); err != nil || got.Revision != rev || !got.Done || !got.Expires.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("after the write-back: %+v, %v", got, err)
	}
	if err := claims.Renew(ctx, key, "owner-b", now.Add(time.Hour)); !errors.Is(err, index.ErrClaimed) {
		t.Errorf("renewal by another owner: %v, want ErrClaimed", err)
	}
	if err := claims.Renew(ctx, key, "owner-a", now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err = claims.Get(ctx, key); err != nil || !got.Expires.Equal(now.Add(3*time.Minute)) || got.Revision != rev {
		t.Fatalf("after the renewal: %+v, %v", got, err)
	}
	// A takeover is conditional on the claim as read: the one that read an older state loses.
	if err := claims.TakeOver(ctx, b, a); !errors.Is(err, index.ErrClaimed) {
		t.Errorf("take over from a stale read: %v, want ErrClaimed", err)
	}
	if err := claims.TakeOver(ctx, b, *got); err != nil {
		t.Fatal(err)
	}
	if got, err = claims.Get(ctx, key); err != nil || got.Owner != "owner-b" || got.Revision != "" {
		t.Fatalf("after the takeover: %+v, %v", got, err)
	}
	if err := claims.Release(ctx, key, "owner-a"); !errors.Is(err, index.ErrClaimed) {
		t.Errorf("release by a former owner: %v, want ErrClaimed", err)
	}
	if err := claims.Release(ctx, key, "owner-b"); err != nil {
		t.Fatal(err)
	}
	if got, err = claims.Get(ctx, key); err != nil || got != nil {
		t.Errorf("after the release: %+v, %v", got, err)
	}

	// Claims and cached revisions share the table and never mix.
	tbl := index.New(db, table)
	r := revision("123456789012", "web")
	if _, err := tbl.Put(ctx, []*index.Revision{r}); err != nil {
		t.Fatal(err)
	}
	if err := claims.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	res, err := tbl.Get(ctx, []string{arnOf(r), key})
	if err != nil || len(res.Found) != 1 || res.Found[arnOf(r)] == nil || len(res.Bad) != 1 {
		t.Errorf("the cache reading a revision and a claim: found %d, bad %v, %v; want the revision, and the claim ignored", len(res.Found), res.Bad, err)
	}
	if c, err := claims.Get(ctx, arnOf(r)); !errors.Is(err, index.ErrBadClaim) {
		t.Errorf("a cached revision read as a claim: %+v, %v; want ErrBadClaim", c, err)
	}

	// An item of another version is not trusted.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
		index.AttrARN: &ddbtypes.AttributeValueMemberS{Value: key}, index.AttrVersion: &ddbtypes.AttributeValueMemberN{Value: "2"},
		index.AttrOwner: &ddbtypes.AttributeValueMemberS{Value: "x"},
	}}); err != nil {
		t.Fatal(err)
	}
	if c, err := claims.Get(ctx, key); !errors.Is(err, index.ErrBadClaim) {
		t.Errorf("a claim of version 2: %+v, %v; want ErrBadClaim", c, err)
	}

	err = index.NewClaims(db, "missing").Put(ctx, a)
	var nf *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &nf) || errors.Is(err, index.ErrClaimed) {
		t.Errorf("a claim in a missing table: %v; want ResourceNotFoundException, not ErrClaimed", err)
	}
}

func TestClaimsOnTheEmulator(t *testing.T) {
	_, db, _ := world(t)
	claimLifecycle(t, db, "pinroll-index")
}

func TestClaimsOnMoto(t *testing.T) { claimLifecycle(t, motoTable(t), "pinroll-index") }

// motoTable is a DynamoDB client of a moto server the test starts (and stops), with the table
// pinroll-index created by index.Create.
func motoTable(t *testing.T) *dynamodb.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("moto: not in -short")
	}
	m, err := awstest.StartMoto()
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(m.Close)
	db := dynamodb.NewFromConfig(awstest.Config(t, m.URL))
	if _, err := index.Create(context.Background(), db, "pinroll-index"); err != nil {
		t.Fatal(err)
	}
	return db
}
