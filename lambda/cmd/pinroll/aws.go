package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// awsConfig loads the SDK configuration. With an endpoint (the local emulator or moto) it
// points every client there and, when no credentials are configured, uses dummy ones: the
// emulators do not check them, and a newcomer needs no AWS account.
// The CLI's AWS clients behave as the function's do.
const (
	attemptTimeout = 10 * time.Second
	maxAttempts    = 5
	maxBackoff     = 5 * time.Second
)

func awsConfig(ctx context.Context, endpoint string) (aws.Config, error) {
	// The function's client policy (lambda/main.go): a timeout per HTTP attempt, and the SDK's
	// standard retryer for throttling, 5xx, timeouts and resets (RegisterTaskDefinition is
	// retried by the apply package itself, never blindly).
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(attemptTimeout)),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.MaxBackoff = maxAttempts, maxBackoff })
		}),
	}
	if endpoint != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(endpoint))
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, awsconfig.WithRegion("us-east-1"))
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: set AWS_REGION (or give --endpoint-url for a local emulator)")
	}
	return cfg, nil
}
