package index_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/index"
)

// exportAll lets cmp look at the SDK's unexported zero-size markers.
var exportAll = cmp.Exporter(func(reflect.Type) bool { return true })

type fileResponder []byte

func (body fileResponder) Do(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
}

// kitchenSink is the taskdef package's fixture, every field of a task definition set, decoded
// by the SDK from its DescribeTaskDefinition answer exactly as in production.
func kitchenSink(tb testing.TB) *index.Revision {
	tb.Helper()
	body, err := os.ReadFile("../taskdef/testdata/kitchen-sink.json")
	if err != nil {
		tb.Fatal(err)
	}
	client := ecs.New(ecs.Options{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}, HTTPClient: fileResponder(body), Retryer: aws.NopRetryer{}})
	out, err := client.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("kitchen-sink"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		tb.Fatal(err)
	}
	return &index.Revision{Definition: out.TaskDefinition, Tags: out.Tags}
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	rev := kitchenSink(t)
	item, err := (&index.Table{}).Encode(rev)
	if err != nil {
		t.Fatal(err)
	}
	back, err := index.Decode(aws.ToString(rev.Definition.TaskDefinitionArn), item)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rev, back, exportAll); d != "" {
		t.Errorf("round trip through an item (-described +decoded):\n%s", d)
	}
	if back.Definition.ContainerDefinitions[0].ResourceRequirements == nil {
		t.Fatal("the fixture lost its resource requirements")
	}
	raw, _ := index.Marshal(rev)
	t.Logf("kitchen sink: %d bytes of JSON, item of %d bytes", len(raw), index.ItemSize(item))
}

// revision is a modest task definition of family f, revision 1, in account.
func revision(account, f string) *index.Revision {
	arn := fmt.Sprintf("arn:aws:ecs:us-east-1:%s:task-definition/%s:1", account, f)
	return &index.Revision{Definition: &types.TaskDefinition{
		TaskDefinitionArn: aws.String(arn), Family: aws.String(f), Revision: 1, Status: types.TaskDefinitionStatusActive,
		RegisteredAt:         aws.Time(time.Date(2026, 11, 28, 3, 12, 9, 0, time.UTC)),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String("123456789012.dkr.ecr.us-east-1.amazonaws.com/" + f + ":latest"), Essential: aws.Bool(true)}},
	}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}}}
}

func arnOf(r *index.Revision) string { return aws.ToString(r.Definition.TaskDefinitionArn) }

// world is the emulator with an empty index table.
func world(t *testing.T) (*emulator.Emulator, *dynamodb.Client, *index.Table) {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	db := dynamodb.NewFromConfig(awstest.Config(t, srv.URL()))
	if _, err := index.Create(context.Background(), db, "pinroll-index"); err != nil {
		t.Fatal(err)
	}
	tbl := index.New(db, "pinroll-index")
	tbl.Backoff = func(int) time.Duration { return time.Millisecond }
	return srv.Emulator(), db, tbl
}

func TestPutAndGetInBatches(t *testing.T) {
	emu, _, tbl := world(t)
	ctx := context.Background()
	var revs []*index.Revision
	var arns []string
	for i := range 130 {
		r := revision("123456789012", fmt.Sprintf("td-%03d", i))
		revs = append(revs, r)
		arns = append(arns, arnOf(r))
	}
	calls, err := tbl.Put(ctx, revs)
	if err != nil || calls != 6 {
		t.Fatalf("Put of 130: %d calls, %v; want 6 (25 a call)", calls, err)
	}
	other := revision("210987654321", "td-000") // the same family in another account: not written
	res, err := tbl.Get(ctx, append(arns, arnOf(other)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 2 || len(res.Bad) != 0 {
		t.Errorf("Get of 131: %d calls, bad %v; want 2 calls", res.Calls, res.Bad)
	}
	want := map[string]*index.Revision{}
	for _, r := range revs {
		want[arnOf(r)] = r
	}
	if d := cmp.Diff(want, res.Found, exportAll); d != "" {
		t.Errorf("found (-written +read):\n%s", d)
	}
	if c := emu.Calls(); c["BatchGetItem"] != 2 || c["BatchWriteItem"] != 6 {
		t.Errorf("calls: %v", c)
	}
}

func TestUnprocessedAreRetried(t *testing.T) {
	emu, _, tbl := world(t)
	ctx := context.Background()
	var revs []*index.Revision
	var arns []string
	for i := range 20 {
		r := revision("123456789012", fmt.Sprintf("td-%03d", i))
		revs, arns = append(revs, r), append(arns, arnOf(r))
	}
	emu.SetDynamoDBUnprocessed(2) // 20 → 10 written, 10 → 5 written, then the last 5
	calls, err := tbl.Put(ctx, revs)
	if err != nil || calls != 3 {
		t.Fatalf("Put with unprocessed items: %d calls, %v; want 3", calls, err)
	}
	emu.SetDynamoDBUnprocessed(2)
	res, err := tbl.Get(ctx, arns)
	if err != nil || res.Calls != 3 || len(res.Found) != 20 {
		t.Fatalf("Get with unprocessed keys: %d calls, %d found, %v; want 3 and 20", res.Calls, len(res.Found), err)
	}
	// Bounded: still unprocessed after the last attempt is simply not found.
	tbl.Attempts = 2
	emu.SetDynamoDBUnprocessed(5)
	res, err = tbl.Get(ctx, arns)
	if err != nil || res.Calls != 2 || len(res.Found) != 15 {
		t.Fatalf("Get, busy beyond the attempts: %d calls, %d found, %v; want 2 and 15", res.Calls, len(res.Found), err)
	}
	emu.SetDynamoDBUnprocessed(5)
	if _, err := tbl.Put(ctx, revs); err == nil {
		t.Error("Put, busy beyond the attempts: no error")
	}
}

func TestCorruptItemsAreIgnored(t *testing.T) {
	_, db, tbl := world(t)
	ctx := context.Background()
	good, other := revision("123456789012", "good"), revision("123456789012", "other")
	if _, err := tbl.Put(ctx, []*index.Revision{good}); err != nil {
		t.Fatal(err)
	}
	valid, _ := tbl.Encode(other)
	corrupt := map[string]map[string]ddbtypes.AttributeValue{}
	with := func(name string, change func(map[string]ddbtypes.AttributeValue)) {
		item := map[string]ddbtypes.AttributeValue{}
		for k, v := range valid {
			item[k] = v
		}
		arn := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/%s:1", name)
		item[index.AttrARN] = &ddbtypes.AttributeValueMemberS{Value: arn}
		change(item)
		corrupt[arn] = item
	}
	// Holds another revision's (valid, checksummed) content under its key.
	with("claims-another", func(map[string]ddbtypes.AttributeValue) {})
	with("not-gzip", func(i map[string]ddbtypes.AttributeValue) {
		i[index.AttrData] = &ddbtypes.AttributeValueMemberB{Value: []byte("{}")}
	})
	with("bad-checksum", func(i map[string]ddbtypes.AttributeValue) {
		i[index.AttrSHA] = &ddbtypes.AttributeValueMemberS{Value: "00"}
	})
	with("future-version", func(i map[string]ddbtypes.AttributeValue) {
		i[index.AttrVersion] = &ddbtypes.AttributeValueMemberN{Value: "2"}
	})
	with("no-data", func(i map[string]ddbtypes.AttributeValue) { delete(i, index.AttrData) })
	with("data-as-string", func(i map[string]ddbtypes.AttributeValue) {
		i[index.AttrData] = &ddbtypes.AttributeValueMemberS{Value: "x"}
	})
	arns := []string{arnOf(good)}
	for arn, item := range corrupt {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("pinroll-index"), Item: item}); err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
	}
	res, err := tbl.Get(ctx, arns)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]*index.Revision{arnOf(good): good}, res.Found, exportAll); d != "" {
		t.Errorf("found (-want +got):\n%s", d)
	}
	for arn := range corrupt {
		if res.Bad[arn] == nil {
			t.Errorf("%s: not reported bad", arn)
		}
	}
	// Rewritten once described: the corrupt item is replaced.
	fixed := revision("123456789012", "not-gzip")
	if _, err := tbl.Put(ctx, []*index.Revision{fixed}); err != nil {
		t.Fatal(err)
	}
	res, err = tbl.Get(ctx, []string{arnOf(fixed)})
	if err != nil || res.Found[arnOf(fixed)] == nil {
		t.Errorf("after the rewrite: %v, %v", res.Found, err)
	}
}

func TestOversizedRevisionIsNotWritten(t *testing.T) {
	_, _, tbl := world(t)
	ctx := context.Background()
	huge := revision("123456789012", "huge")
	// Barely compressible: 800 KB of random hex in the environment (gzip halves it, no more).
	noise := make([]byte, 400<<10)
	_, _ = rand.Read(noise)
	text := hex.EncodeToString(noise)
	for i := range 8 {
		huge.Definition.ContainerDefinitions[0].Environment = append(huge.Definition.ContainerDefinitions[0].Environment,
			types.KeyValuePair{Name: aws.String(fmt.Sprint("V", i)), Value: aws.String(text[i*100<<10 : (i+1)*100<<10])})
	}
	small := revision("123456789012", "small")
	calls, err := tbl.Put(ctx, []*index.Revision{huge, small})
	if !errors.Is(err, index.ErrTooLarge) || calls != 1 {
		t.Fatalf("Put of an oversized revision: %d calls, %v; want ErrTooLarge and the other written", calls, err)
	}
	res, err := tbl.Get(ctx, []string{arnOf(huge), arnOf(small)})
	if err != nil || len(res.Found) != 1 || res.Found[arnOf(small)] == nil {
		t.Errorf("after: found %v, %v", res.Found, err)
	}
}

func TestMissingTableIsAnError(t *testing.T) {
	_, db, _ := world(t)
	tbl := index.New(db, "no-such-table")
	_, err := tbl.Get(context.Background(), []string{"arn:aws:ecs:us-east-1:123456789012:task-definition/a:1"})
	var nf *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Get from a missing table: %v, want ResourceNotFoundException", err)
	}
	_, err = tbl.Put(context.Background(), []*index.Revision{revision("123456789012", "a")})
	if !errors.As(err, &nf) {
		t.Errorf("Put to a missing table: %v, want ResourceNotFoundException", err)
	}
}

// TestMoto runs the index against moto's DynamoDB: the same calls, another implementation.
func TestMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("moto: not in -short")
	}
	m, err := awstest.StartMoto()
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	ctx := context.Background()
	db := dynamodb.NewFromConfig(awstest.Config(t, m.URL))
	created, err := index.Create(ctx, db, "pinroll-index")
	if err != nil || !created {
		t.Fatalf("create on moto: %v, %v", created, err)
	}
	if created, err := index.Create(ctx, db, "pinroll-index"); err != nil || created {
		t.Fatalf("create again on moto: %v, %v; want it left as it is", created, err)
	}
	tbl := index.New(db, "pinroll-index")
	revs := []*index.Revision{kitchenSink(t)}
	var arns []string
	for i := range 60 {
		revs = append(revs, revision("123456789012", fmt.Sprintf("td-%03d", i)))
	}
	for _, r := range revs {
		arns = append(arns, arnOf(r))
	}
	if calls, err := tbl.Put(ctx, revs); err != nil || calls != 3 {
		t.Fatalf("Put on moto: %d calls, %v", calls, err)
	}
	res, err := tbl.Get(ctx, append(arns, "arn:aws:ecs:us-east-1:123456789012:task-definition/never:1"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*index.Revision{}
	for _, r := range revs {
		want[arnOf(r)] = r
	}
	if d := cmp.Diff(want, res.Found, exportAll); d != "" || res.Calls != 1 {
		t.Errorf("Get on moto, %d calls (-written +read):\n%s", res.Calls, d)
	}
	_, err = index.New(db, "missing").Get(ctx, arns[:1])
	var nf *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("moto, missing table: %v", err)
	}
}
