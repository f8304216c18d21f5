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

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel(os.Getenv("AWS_LAMBDA_LOG_LEVEL"))}))
	cfg, err := config.FromEnv(os.Environ())
	if err != nil {
		log.Error("pinroll cannot start", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("pinroll cannot start: AWS configuration", "error", err)
		os.Exit(1)
	}
	engine := rollout.FromAWSConfig(cfg, awsCfg, log)
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (report.Report, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = rollout.WithHomeAccount(ctx, accountOf(lc.InvokedFunctionArn))
			engine := *engine
			engine.Log = log.With("request_id", lc.AwsRequestID)
			return engine.HandleRaw(ctx, raw)
		}
		return engine.HandleRaw(ctx, raw)
	})
}

// accountOf returns the account of an ARN (arn:partition:service:region:account:…).
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
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
