// Command sdkhello is the smallest AWS SDK function: aws-lambda-go, config.LoadDefaultConfig and
// the ECS and ECR clients every pinroll deployment needs, built once before lambda.Start. It is
// the baseline `make bench` holds pinroll's start-up to (the target: ≤ 1.3× this). It
// lives in testdata so `go build ./...` leaves it alone.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		os.Exit(1)
	}
	ecsClient, ecrClient := ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)
	lambda.Start(func(context.Context, json.RawMessage) (string, error) {
		_, _ = ecsClient, ecrClient // built before the first event, as a real function builds them
		return "hello", nil
	})
}
