// Command hello is the smallest aws-lambda-go function: the start-up and size baseline that
// `make bench` compares pinroll's bootstrap with. It lives in testdata so `go build ./...`
// leaves it alone.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (string, error) { return "hello", nil })
}
