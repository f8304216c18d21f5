package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func TestIndexCreate(t *testing.T) {
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, out, errOut := runCLI(t, "index", "create", "--table", "pinroll-index", "--endpoint-url", srv.URL())
	if code != exitOK || !strings.Contains(out, "created table pinroll-index") {
		t.Fatalf("index create: exit %d, %q, %q", code, out, errOut)
	}
	desc, err := dynamodb.NewFromConfig(awstest.Config(t, srv.URL())).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("pinroll-index")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(desc.Table.KeySchema[0].AttributeName) + " " + string(desc.Table.BillingModeSummary.BillingMode); got != "arn PAY_PER_REQUEST" {
		t.Errorf("table: %s", got)
	}
	code, out, _ = runCLI(t, "index", "create", "--table", "pinroll-index", "--endpoint-url", srv.URL())
	if code != exitOK || !strings.Contains(out, "already exists") {
		t.Errorf("index create again: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI(t, "index", "create", "--table", "x", "--endpoint-url", srv.URL())
	if code != exitUsage || !strings.Contains(errOut, "not a DynamoDB table name") {
		t.Errorf("index create --table x: exit %d, %q", code, errOut)
	}
}
