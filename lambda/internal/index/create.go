package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// Creator is the part of the DynamoDB API that creates the table, with the SDK's signatures.
type Creator interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var _ Creator = (*dynamodb.Client)(nil)

// CreateTableInput is the table as pinroll needs it: partition key arn (S), no sort key,
// on-demand capacity. (The CDK app also turns on point-in-time recovery and encryption with
// its key; a local world does without.)
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(AttrARN), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(AttrARN), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}
}

// Create creates the table and waits (up to a minute) until it is ACTIVE. A table that
// already exists with the key schema is left as it is (created false); one with another key
// schema is an error.
func Create(ctx context.Context, db Creator, name string) (created bool, err error) {
	_, err = db.CreateTable(ctx, CreateTableInput(name))
	var inUse *ddbtypes.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
	case err != nil:
		return false, fmt.Errorf("create table %s: %w", name, err)
	default:
		created = true
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return created, fmt.Errorf("describe table %s: %w", name, err)
		}
		ks := out.Table.KeySchema
		if len(ks) != 1 || aws.ToString(ks[0].AttributeName) != AttrARN || ks[0].KeyType != ddbtypes.KeyTypeHash {
			return created, fmt.Errorf("table %s exists with another key schema; pinroll's index needs the partition key %s (S) and no sort key", name, AttrARN)
		}
		if out.Table.TableStatus == ddbtypes.TableStatusActive {
			return created, nil
		}
		if time.Now().After(deadline) {
			return created, fmt.Errorf("table %s is %s after a minute", name, out.Table.TableStatus)
		}
		if err := sleep.For(ctx, time.Second); err != nil {
			return created, err
		}
	}
}

// ClientOptions tune the DynamoDB client of the index: the index is an optimisation, so a
// throttled or failing table costs at most one quick retry (2 attempts, backoff at most
// 250 ms) before discovery falls back to ECS, instead of the SDK's seconds of backoff.
func ClientOptions(o *dynamodb.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 2
		so.MaxBackoff = 250 * time.Millisecond
	})
	o.RetryMaxAttempts = 0
}
