// Command bootstrap is the pinroll Lambda function: `go build -o bootstrap ./lambda`.
//
// It reads its configuration and builds its AWS clients once, at start-up, then hands each
// event to the engine. Everything else lives in internal/.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// How the AWS clients behave under faults. Each HTTP attempt gives up after attemptTimeout (a
// hung connection must not eat the invocation); the SDK's standard retryer retries throttling,
// 5xx answers, timeouts and reset connections up to maxAttempts times with jittered
// exponential backoff up to maxBackoff — every operation but RegisterTaskDefinition, which is
// not idempotent and which the apply package retries itself, after checking what a failed
// attempt may have registered.
const (
	attemptTimeout = 10 * time.Second
	maxAttempts    = 5
	maxBackoff     = 5 * time.Second
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel(os.Getenv("AWS_LAMBDA_LOG_LEVEL"))}))
	cfg, err := config.FromEnv(os.Environ())
	if err != nil {
		log.Error("pinroll cannot start", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(attemptTimeout)),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.MaxBackoff = maxAttempts, maxBackoff })
		}))
	if err != nil {
		log.Error("pinroll cannot start: AWS configuration", "error", err)
		os.Exit(1)
	}
	engine := rollout.FromAWSConfig(cfg, awsCfg, log)
	var home sync.Once
	// The answer is a report for an EventBridge event, and a batch response (the records that
	// failed) for an SQS event of the continuation queue (rollout.Engine.Invoke).
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (any, error) {
		// Stop starting work a safety margin before Lambda's deadline, so the function sends
		// what is left to the continuation queue (or, without one, returns an IncompleteError
		// that a redelivery finishes) rather than being killed mid-way.
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = rollout.WithSafetyMargin(ctx, rollout.SafetyMargin(time.Until(deadline)))
			defer cancel()
		}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			// The function's own account is in its ARN, known from the first invocation on.
			home.Do(func() { engine.SetHomeAccount(rollout.AccountOf(lc.InvokedFunctionArn)) })
			engine := *engine
			engine.Log = log.With("request_id", lc.AwsRequestID)
			return engine.Invoke(ctx, raw)
		}
		return engine.Invoke(ctx, raw)
	})
}

// logLevel maps Lambda's application log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL).
func logLevel(s string) slog.Level {
	switch strings.ToUpper(s) {
	case "TRACE", "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
