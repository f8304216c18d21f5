package rollout

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/metrics"
	"github.com/pinroll/pinroll/lambda/internal/notify"
)

// RoleSessionName is the session name pinroll's assumed-role sessions carry, so CloudTrail in
// a target account says who acted.
const RoleSessionName = "pinroll"

// FromAWSConfig builds the engine the way the function and the CLI both run it: ECS and ECR
// clients, one target per role of Config.TargetRoles (after its own account), SSM only when
// write-back is configured, SNS only when a topic is, and every call counted for the
// metrics. Call it once per process.
//
// A target's credentials come from assuming its role, cached and refreshed before they
// expire: one STS call per target per credential lifetime (an hour by default), made the
// first time the target is needed, not at start-up.
func FromAWSConfig(cfg config.Config, awsCfg aws.Config, log *slog.Logger) *Engine {
	awsCfg = awsCfg.Copy()
	awsCfg.APIOptions = append(awsCfg.APIOptions, metrics.CountCalls)
	e := New(cfg, ecs.NewFromConfig(awsCfg), ecr.NewFromConfig(awsCfg), log)
	if len(cfg.TargetRoles) > 0 {
		stsClient := sts.NewFromConfig(awsCfg)
		for _, role := range cfg.TargetRoles {
			e.Targets = append(e.Targets, NewTarget(RoleAccount(role), role, ecs.NewFromConfig(AssumeRole(awsCfg, stsClient, role)), e.ECR))
		}
	}
	claims := &apply.Claims{Log: log} // without the table, registrations say they are unprotected
	if cfg.IndexTable != "" {         // one table, in pinroll's account, for every target: keyed by ARN
		db := dynamodb.NewFromConfig(awsCfg, index.ClientOptions)
		idx := index.New(db, cfg.IndexTable)
		claims.Store = index.NewClaims(db, cfg.IndexTable) // the same table, keys claim#…
		e.Joins = index.NewJoins(db, cfg.IndexTable)       // and join#…
		for _, t := range e.Targets {
			t.Discoverer.Index, t.Discoverer.Log = idx, log
		}
	}
	for _, t := range e.Targets {
		t.Applier.Claims = claims
	}
	if cfg.ParameterPrefix != "" {
		e.SSM = ssm.NewFromConfig(awsCfg)
	}
	if cfg.ContinueQueue != "" {
		e.Queue = sqs.NewFromConfig(awsCfg)
	}
	if cfg.NotifyTopicARN != "" {
		e.Notifier = &notify.Topic{SNS: sns.NewFromConfig(awsCfg), ARN: cfg.NotifyTopicARN, Roles: notify.TargetRoles(cfg.TargetRoles)}
	}
	return e
}

// AssumeRole is awsCfg acting as role: credentials from STS AssumeRole, cached and refreshed
// before they expire.
func AssumeRole(awsCfg aws.Config, stsClient stscreds.AssumeRoleAPIClient, role string) aws.Config {
	c := awsCfg.Copy()
	c.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = RoleSessionName
	}))
	return c
}
