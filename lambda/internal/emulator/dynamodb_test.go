package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func dynamoClient(srv *emulator.Server, region string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL()),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
}

func createTable(t *testing.T, db *dynamodb.Client, name string) {
	t.Helper()
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("arn"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("arn"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func key(s string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"arn": &types.AttributeValueMemberS{Value: s}}
}

func item(s, data string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"arn": &types.AttributeValueMemberS{Value: s}, "td": &types.AttributeValueMemberB{Value: []byte(data)}, "v": &types.AttributeValueMemberN{Value: "1"}}
}

var attrOpts = cmpopts.IgnoreUnexported(types.AttributeValueMemberS{}, types.AttributeValueMemberB{}, types.AttributeValueMemberN{})

func apiCode(err error) (string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

func TestDynamoDBTables(t *testing.T) {
	srv := start(t, emulator.Options{})
	ctx := context.Background()
	db := dynamoClient(srv, "us-east-1")
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("pinroll-index")})
	if code, msg := apiCode(err); code != "ResourceNotFoundException" || msg != "Requested resource not found: Table: pinroll-index not found" {
		t.Fatalf("DescribeTable of a missing table: %v", err)
	}
	createTable(t, db, "pinroll-index")
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("pinroll-index"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("arn"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("arn"), KeyType: types.KeyTypeHash}}})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("CreateTable twice: %v, want ResourceInUseException", err)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("pinroll-index")})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{aws.ToString(out.Table.TableArn), string(out.Table.TableStatus), string(out.Table.BillingModeSummary.BillingMode), aws.ToString(out.Table.KeySchema[0].AttributeName), string(out.Table.KeySchema[0].KeyType)}
	want := []string{"arn:aws:dynamodb:us-east-1:123456789012:table/pinroll-index", "ACTIVE", "PAY_PER_REQUEST", "arn", "HASH"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("DescribeTable (-want +got):\n%s", d)
	}
	// Tables are per region.
	_, err = dynamoClient(srv, "eu-west-1").GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("pinroll-index"), Key: key("a")})
	if code, _ := apiCode(err); code != "ResourceNotFoundException" {
		t.Errorf("GetItem in another region: %v, want ResourceNotFoundException", err)
	}
}

func TestDynamoDBItems(t *testing.T) {
	srv := start(t, emulator.Options{})
	ctx := context.Background()
	db := dynamoClient(srv, "us-east-1")
	createTable(t, db, "idx")
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("idx"), Item: item("a", "alpha")}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("idx"), Key: key("a")})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(item("a", "alpha"), got.Item, attrOpts); d != "" {
		t.Errorf("GetItem (-want +got):\n%s", d)
	}
	missing, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("idx"), Key: key("zzz")})
	if err != nil || missing.Item != nil {
		t.Errorf("GetItem of a missing key: %v, %v", missing.Item, err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("idx"), Item: map[string]types.AttributeValue{"other": &types.AttributeValueMemberS{Value: "x"}}})
	if code, msg := apiCode(err); code != "ValidationException" || msg != "One or more parameter values were invalid: Missing the key arn in the item" {
		t.Errorf("PutItem without the key: %v", err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("idx"), Item: item("big", strings.Repeat("x", 400*1024))})
	if code, msg := apiCode(err); code != "ValidationException" || msg != "Item size has exceeded the maximum allowed size" {
		t.Errorf("PutItem above 400 KB: %v", err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("nope"), Item: item("a", "x")})
	if code, msg := apiCode(err); code != "ResourceNotFoundException" || msg != "Requested resource not found" {
		t.Errorf("PutItem to a missing table: %v", err)
	}
}

func TestDynamoDBBatches(t *testing.T) {
	srv := start(t, emulator.Options{})
	ctx := context.Background()
	db := dynamoClient(srv, "us-east-1")
	createTable(t, db, "idx")
	var writes []types.WriteRequest
	for i := range 26 {
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item(fmt.Sprint(i), "data")}})
	}
	_, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"idx": writes}})
	if code, msg := apiCode(err); code != "ValidationException" || !strings.Contains(msg, "Member must have length less than or equal to 25") {
		t.Errorf("BatchWriteItem of 26: %v", err)
	}
	big := []types.WriteRequest{{PutRequest: &types.PutRequest{Item: item("big", strings.Repeat("x", 400*1024))}}}
	_, err = db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"idx": big}})
	if code, msg := apiCode(err); code != "ValidationException" || msg != "Item size has exceeded the maximum allowed size" {
		t.Errorf("BatchWriteItem above 400 KB: %v", err)
	}
	out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"idx": writes[:25]}})
	if err != nil || len(out.UnprocessedItems) != 0 {
		t.Fatalf("BatchWriteItem of 25: %v, unprocessed %v", err, out.UnprocessedItems)
	}
	var keys []map[string]types.AttributeValue
	for i := range 101 {
		keys = append(keys, key(fmt.Sprint(i)))
	}
	_, err = db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"idx": {Keys: keys}}})
	if code, msg := apiCode(err); code != "ValidationException" || msg != "Too many items requested for the BatchGetItem call" {
		t.Errorf("BatchGetItem of 101: %v", err)
	}
	_, err = db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"missing": {Keys: keys[:1]}}})
	if code, msg := apiCode(err); code != "ResourceNotFoundException" || msg != "Requested resource not found" {
		t.Errorf("BatchGetItem of a missing table: %v", err)
	}
	got, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"idx": {Keys: keys[:100]}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Responses["idx"]); n != 25 || len(got.UnprocessedKeys) != 0 {
		t.Errorf("BatchGetItem of 100 keys, 25 present: %d items, %d tables unprocessed", n, len(got.UnprocessedKeys))
	}

	// A busy partition: half the work comes back unprocessed, to be retried.
	srv.Emulator().SetDynamoDBUnprocessed(1)
	got, err = db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"idx": {Keys: keys[:10]}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, u := len(got.Responses["idx"]), len(got.UnprocessedKeys["idx"].Keys); n != 5 || u != 5 {
		t.Errorf("BatchGetItem, busy: %d items, %d unprocessed; want 5 and 5", n, u)
	}
	srv.Emulator().SetDynamoDBUnprocessed(1)
	w, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"idx": writes[:4]}})
	if err != nil || len(w.UnprocessedItems["idx"]) != 2 {
		t.Errorf("BatchWriteItem, busy: %v, %d unprocessed, want 2", err, len(w.UnprocessedItems["idx"]))
	}
	if c := srv.Emulator().Calls(); c["BatchGetItem"] != 4 || c["BatchWriteItem"] != 4 {
		t.Errorf("calls counted: %v", c)
	}
}
