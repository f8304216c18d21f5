package emulator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// The conditional writes pinroll's claims rely on, through the SDK, against the emulator and
// against moto's DynamoDB: both must answer every step alike. Requests DynamoDB refuses as
// invalid (an unused or undefined placeholder, an update of the key) are checked on the emulator
// only: moto evaluates such a condition anyway or answers 500, where DynamoDB answers
// ValidationException before looking at the item.
func TestDynamoDBConditionalWrites(t *testing.T) {
	backends := map[string]func(t *testing.T) *dynamodb.Client{
		"emulator": func(t *testing.T) *dynamodb.Client { return dynamoClient(start(t, emulator.Options{}), "us-east-1") },
		"moto": func(t *testing.T) *dynamodb.Client {
			m, err := awstest.StartMoto()
			if err != nil {
				t.Skip(err)
			}
			t.Cleanup(m.Close)
			return dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1})
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			createTable(t, db, "claims")
			conditionalWrites(t, db)
			if name == "emulator" {
				invalidExpressions(t, db)
			}
		})
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func conditionalWrites(t *testing.T, db *dynamodb.Client) {
	ctx := context.Background()
	claim := map[string]types.AttributeValue{"arn": s("claim#x"), "owner": s("a"), "expires": n("100")}
	names := map[string]string{"#o": "owner"}
	fails := func(step string, err error) {
		t.Helper()
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			t.Errorf("%s: %v, want ConditionalCheckFailedException", step, err)
			return
		}
		if code, msg := apiCode(err); code != "ConditionalCheckFailedException" || msg != "The conditional request failed" {
			t.Errorf("%s: %s: %s", step, code, msg)
		}
	}
	ok := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	get := func() map[string]types.AttributeValue {
		t.Helper()
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("claims"), Key: key("claim#x"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	put := func(item map[string]types.AttributeValue, cond string, values map[string]types.AttributeValue, names map[string]string) error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("claims"), Item: item, ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: values, ExpressionAttributeNames: names})
		return err
	}

	ok("claim a free key", put(claim, "attribute_not_exists(arn)", nil, nil))
	fails("claim it again", put(claim, "attribute_not_exists(arn)", nil, nil))
	if d := cmp.Diff(claim, get(), attrOpts); d != "" {
		t.Errorf("the claim as read (-want +got):\n%s", d)
	}

	update := func(expr, cond string, values map[string]types.AttributeValue, names map[string]string) error {
		in := &dynamodb.UpdateItemInput{TableName: aws.String("claims"), Key: key("claim#x"), UpdateExpression: aws.String(expr),
			ExpressionAttributeValues: values, ExpressionAttributeNames: names}
		if cond != "" {
			in.ConditionExpression = aws.String(cond)
		}
		_, err := db.UpdateItem(ctx, in)
		return err
	}
	fails("write back as another owner", update("SET revision = :r", "#o = :me", map[string]types.AttributeValue{":r": s("td:2"), ":me": s("b")}, names))
	ok("write back as the owner", update("SET revision = :r, done = :d", "#o = :me", map[string]types.AttributeValue{":r": s("td:2"), ":d": &types.AttributeValueMemberBOOL{Value: true}, ":me": s("a")}, names))
	if got := get(); got["revision"] == nil || got["done"] == nil {
		t.Errorf("after the write-back: %v", got)
	}
	ok("remove", update("REMOVE done", "attribute_exists(revision)", nil, nil))
	if got := get(); got["done"] != nil || got["revision"] == nil {
		t.Errorf("after REMOVE: %v", got)
	}

	// Taking over an expired claim: conditional on the old owner and expiry; numbers compare as numbers.
	next := map[string]types.AttributeValue{"arn": s("claim#x"), "owner": s("b"), "expires": n("200")}
	fails("take over with a stale expiry", put(next, "#o = :old AND expires = :exp", map[string]types.AttributeValue{":old": s("a"), ":exp": n("99")}, names))
	fails("take over before it expired", put(next, "expires < :now", map[string]types.AttributeValue{":now": n("99.5")}, nil))
	ok("take over", put(next, "(#o = :old AND expires = :exp) OR attribute_not_exists(arn)", map[string]types.AttributeValue{":old": s("a"), ":exp": n("100.0")}, names))
	ok("begins_with and NOT", put(next, "begins_with(arn, :p) AND NOT #o <> :me", map[string]types.AttributeValue{":p": s("claim#"), ":me": s("b")}, names))

	del := func(cond string, values map[string]types.AttributeValue) error {
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("claims"), Key: key("claim#x"), ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: values, ExpressionAttributeNames: names})
		return err
	}
	fails("release another's claim", del("#o = :me", map[string]types.AttributeValue{":me": s("a")}))
	ok("release one's own claim", del("#o = :me", map[string]types.AttributeValue{":me": s("b")}))
	if got := get(); got != nil {
		t.Errorf("after the release: %v", got)
	}
	fails("update a missing item on condition", update("SET revision = :r", "attribute_exists(arn)", map[string]types.AttributeValue{":r": s("td:3")}, nil))
	ok("update a missing item creates it", update("SET revision = :r", "", map[string]types.AttributeValue{":r": s("td:3")}, nil))
}

func invalidExpressions(t *testing.T, db *dynamodb.Client) {
	ctx := context.Background()
	claim := map[string]types.AttributeValue{"arn": s("claim#y"), "owner": s("a")}
	names := map[string]string{"#o": "owner"}
	invalid := func(step string, err error, want string) {
		t.Helper()
		if code, msg := apiCode(err); code != "ValidationException" || msg != want {
			t.Errorf("%s: %v, want ValidationException: %s", step, err, want)
		}
	}
	put := func(cond string, values map[string]types.AttributeValue, names map[string]string) error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("claims"), Item: claim, ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: values, ExpressionAttributeNames: names})
		return err
	}
	update := func(expr string, values map[string]types.AttributeValue) error {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("claims"), Key: key("claim#y"), UpdateExpression: aws.String(expr),
			ExpressionAttributeValues: values})
		return err
	}

	invalid("an unused value", put("attribute_not_exists(arn)", map[string]types.AttributeValue{":x": s("1")}, nil),
		"Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}")
	invalid("an undefined value", put("#o = :y", nil, names),
		"Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :y")
	invalid("an undefined name", put("#p = :y", map[string]types.AttributeValue{":y": s("1")}, nil),
		"Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #p")
	invalid("an update of the key", update("SET arn = :r", map[string]types.AttributeValue{":r": s("other")}),
		"One or more parameter values were invalid: Cannot update attribute arn. This attribute is part of the key")
	invalid("a syntax error", put("owner == :y", map[string]types.AttributeValue{":y": s("1")}, nil),
		`Invalid ConditionExpression: Syntax error; token: "=", near: "owner == :y"`)
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("claims"), Key: key("claim#y")}); err != nil {
		t.Fatal(err)
	}
}
