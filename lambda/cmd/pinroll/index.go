package main

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/index"
)

// indexCmd groups the commands of the persistent index (PINROLL_INDEX_TABLE).
type indexCmd struct {
	Create indexCreateCmd `cmd:"" help:"Create the index table (partition key arn, on-demand) for a local world or an account without the CDK app."`
}

type indexCreateCmd struct {
	Table string `required:"" placeholder:"NAME" help:"The table's name (what PINROLL_INDEX_TABLE will say)."`
	AWSFlags
}

// Run creates the table, or accepts one that exists with pinroll's key schema.
func (c *indexCreateCmd) Run(e *env) error {
	if !config.ValidTableName(c.Table) {
		return usageError{fmt.Sprintf("--table %q is not a DynamoDB table name (3 to 255 of A-Z, a-z, 0-9, _, - and .)", c.Table)}
	}
	if err := reachable(c.Endpoint); err != nil {
		return err
	}
	cfg, err := awsConfig(e.ctx, c.Endpoint)
	if err != nil {
		return err
	}
	created, err := index.Create(e.ctx, dynamodb.NewFromConfig(cfg), c.Table)
	if err != nil {
		return explain(c.Endpoint, err)
	}
	if created {
		fmt.Fprintf(e.stdout, "created table %s (partition key %s, on-demand); set %s=%s\n", c.Table, index.AttrARN, config.EnvIndexTable, c.Table)
	} else {
		fmt.Fprintf(e.stdout, "table %s already exists with pinroll's key schema; nothing to do\n", c.Table)
	}
	return nil
}
