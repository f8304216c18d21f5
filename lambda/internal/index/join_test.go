package index_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pinroll/pinroll/lambda/internal/index"
)

const (
	acctA = "111111111111"
	acctB = "222222222222"
	acctC = "333333333333"
)

// joinLifecycle is what a push that continues in several accounts does with its join, on any
// DynamoDB.
func joinLifecycle(t *testing.T, db *dynamodb.Client, table string) {
	ctx := context.Background()
	joins := index.NewJoins(db, table)

	// A done at once; B and C go on.
	if err := joins.Begin(ctx, "e1", []string{acctB, acctC}, map[string][]byte{acctA: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	parts, waiting, err := joins.Finish(ctx, "e1", acctB, []byte(`{"b":1}`))
	if err != nil || waiting != 1 || len(parts) != 2 {
		t.Fatalf("B finishes first: %d parts, %d waiting, %v; want A's and B's, and C waited for", len(parts), waiting, err)
	}
	// The first invocation delivered again: it knows only its own view (B still going, A
	// done with another part); it must not put B back on the list nor overwrite A's part.
	if err := joins.Begin(ctx, "e1", []string{acctB}, map[string][]byte{acctA: []byte(`{"a":"again"}`)}); err != nil {
		t.Fatal(err)
	}
	parts, waiting, err = joins.Finish(ctx, "e1", acctC, []byte(`{"c":1}`))
	if err != nil || waiting != 0 {
		t.Fatalf("C finishes last: %d waiting, %v; want none", waiting, err)
	}
	want := map[string]string{acctA: `{"a":1}`, acctB: `{"b":1}`, acctC: `{"c":1}`}
	if got := asStrings(parts); !maps.Equal(got, want) {
		t.Errorf("parts %v, want %v", got, want)
	}
	// C's last step delivered again: still last, the same parts (its caller reports again).
	if parts, waiting, err = joins.Finish(ctx, "e1", acctC, []byte(`{"c":1}`)); err != nil || waiting != 0 || len(parts) != 3 {
		t.Errorf("C's last step again: %d parts, %d waiting, %v", len(parts), waiting, err)
	}

	// A join never begun, and one expired, are not there to finish.
	if _, _, err := joins.Finish(ctx, "never", acctA, []byte(`{}`)); !errors.Is(err, index.ErrNoJoin) {
		t.Errorf("finishing a join never begun: %v, want ErrNoJoin", err)
	}
	old := index.NewJoins(db, table)
	old.Now = func() time.Time { return time.Now().Add(-index.JoinRetention - time.Hour) }
	if err := old.Begin(ctx, "e-old", []string{acctA}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := joins.Finish(ctx, "e-old", acctA, []byte(`{}`)); !errors.Is(err, index.ErrNoJoin) {
		t.Errorf("finishing an expired join: %v, want ErrNoJoin", err)
	}
	// An item of another version is not trusted.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
		index.AttrARN: &ddbtypes.AttributeValueMemberS{Value: index.JoinKey("e-v2")}, index.AttrVersion: &ddbtypes.AttributeValueMemberN{Value: "2"},
		index.AttrTTL: &ddbtypes.AttributeValueMemberN{Value: "99999999999"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := joins.Finish(ctx, "e-v2", acctA, []byte(`{}`)); !errors.Is(err, index.ErrNoJoin) {
		t.Errorf("finishing a join of version 2: %v, want ErrNoJoin", err)
	}
	if err := joins.Begin(ctx, "e2", nil, nil); err == nil {
		t.Error("a join with nobody waiting: no error")
	}

	// Chains finishing at the same moment: exactly one is the last.
	accounts := []string{"100000000001", "100000000002", "100000000003", "100000000004", "100000000005", "100000000006"}
	if err := joins.Begin(ctx, "e3", accounts, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	lasts := 0
	var wg sync.WaitGroup
	for _, a := range accounts {
		wg.Go(func() {
			parts, waiting, err := joins.Finish(ctx, "e3", a, []byte(a))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			if waiting == 0 {
				lasts++
				if got := slices.Sorted(maps.Keys(parts)); !slices.Equal(got, accounts) {
					t.Errorf("the last sees parts of %v, want every account", got)
				}
			}
		})
	}
	wg.Wait()
	if lasts != 1 {
		t.Errorf("%d chains were the last, want exactly 1", lasts)
	}

	var nf *ddbtypes.ResourceNotFoundException
	if err := index.NewJoins(db, "missing").Begin(ctx, "e4", []string{acctA}, nil); !errors.As(err, &nf) {
		t.Errorf("a join in a missing table: %v; want ResourceNotFoundException", err)
	}
}

func asStrings(parts map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range parts {
		out[k] = string(v)
	}
	return out
}

func TestJoinsOnTheEmulator(t *testing.T) {
	_, db, _ := world(t)
	joinLifecycle(t, db, "pinroll-index")
}

func TestJoinsOnMoto(t *testing.T) { joinLifecycle(t, motoTable(t), "pinroll-index") }
