package rollout

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/metrics"
	"github.com/pinroll/pinroll/lambda/internal/notify"
)

// FromAWSConfig builds the engine the way the function and the CLI both run it: ECS and ECR
// clients, SSM only when write-back is configured, SNS only when a topic is, and every call
// counted for the metrics. Call it once per process.
func FromAWSConfig(cfg config.Config, awsCfg aws.Config, log *slog.Logger) *Engine {
	awsCfg = awsCfg.Copy()
	awsCfg.APIOptions = append(awsCfg.APIOptions, metrics.CountCalls)
	e := New(cfg, ecs.NewFromConfig(awsCfg), ecr.NewFromConfig(awsCfg), log)
	if cfg.ParameterPrefix != "" {
		e.SSM = ssm.NewFromConfig(awsCfg)
	}
	if cfg.NotifyTopicARN != "" {
		e.Notifier = &notify.Topic{SNS: sns.NewFromConfig(awsCfg), ARN: cfg.NotifyTopicARN}
	}
	return e
}
