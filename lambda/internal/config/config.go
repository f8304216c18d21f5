// Package config reads pinroll's function configuration from the environment.
//
// Every PINROLL_* variable is known here; an unknown one, or a known one with a bad
// value, is a start-up error that names it, so a typo never silently changes behaviour.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/pattern"
)

// Config is the function's configuration (README, "Configuration").
type Config struct {
	// Clusters in scope, names or ARNs. Empty: every cluster in the account and region.
	Clusters []string
	// DryRun plans and reports but changes nothing.
	DryRun bool
	// RequireOptIn limits pinroll to services tagged pinroll:enabled=true.
	RequireOptIn bool
	// RegistryAccounts whose ECR images may be deployed. Empty: the account pinroll runs in
	// (the Lambda's own account; for a local replay, the event's account).
	RegistryAccounts []string
	// NotifyTopicARN receives every non-trivial report. Empty: no notifications.
	NotifyTopicARN string
	// ParameterPrefix, when set, is where pinned images are written in SSM Parameter Store.
	ParameterPrefix string
	// TargetRoles are IAM roles in other accounts (one per account) that pinroll assumes to
	// deploy there too, in its own region. Empty: only its own account.
	TargetRoles []string
	// IndexTable is the DynamoDB table (a name, in pinroll's own account and region) that
	// keeps described task-definition revisions across cold starts, shared by every target.
	// Empty: no index.
	IndexTable string
	// ContinueQueue is the URL of the SQS FIFO queue that carries the rest of a push's work
	// when it cannot finish inside one invocation (the function consumes it through an event
	// source mapping). Empty: no continuations; work that cannot finish in time is left to a
	// redelivery of the event, as before.
	ContinueQueue string
}

// Variable names (lambda/contract holds them, shared with the CDK app).
const (
	EnvClusters         = contract.EnvClusters
	EnvDryRun           = contract.EnvDryRun
	EnvRequireOptIn     = contract.EnvRequireOptIn
	EnvRegistryAccounts = contract.EnvRegistryAccounts
	EnvNotifyTopicARN   = contract.EnvNotifyTopicARN
	EnvParameterPrefix  = contract.EnvParameterPrefix
	EnvTargetRoles      = contract.EnvTargetRoles
	EnvIndexTable       = contract.EnvIndexTable
	EnvContinueQueue    = contract.EnvContinueQueue
)

var (
	// Lengths are limits on the string or its groups, not counted repetitions, which Go's
	// regexp would unroll at every start-up (see package pattern).
	accountPattern   = pattern.Must(`^[0-9]+$`).Len(12, 12)
	clusterPattern   = pattern.Must(`^(?:([A-Za-z0-9_-]+)|arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/([A-Za-z0-9_-]+))$`).Groups(255, 255)
	topicPattern     = pattern.Must(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]+)(\.fifo)?$`).Groups(256)
	parameterPattern = pattern.Must(`^(/[A-Za-z0-9_.-]+)+$`)
	rolePattern      = pattern.Must(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_/-]+)$`).Groups(512)
	// tablePattern is DynamoDB's rule for table names: 3 to 255 of a-z, A-Z, 0-9, _ - and .
	tablePattern = pattern.Must(`^[A-Za-z0-9_.-]+$`).Len(3, 255)
	// queuePattern is an SQS FIFO queue URL: https://sqs.<region>.amazonaws.com/<account>/<name>.fifo
	// (http and any host are accepted too, for local emulators such as pinroll's and moto's).
	// A queue name has 1 to 80 characters, ".fifo" included.
	queuePattern = pattern.Must(`^https?://[A-Za-z0-9.:\[\]-]+/[0-9]{12}/([A-Za-z0-9_-]+)\.fifo$`).Groups(75)
)

// FromEnv builds a Config from environment entries in "KEY=value" form (os.Environ()).
// All problems are reported together.
func FromEnv(environ []string) (Config, error) {
	var cfg Config
	var problems []error
	for _, kv := range environ {
		key, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, "PINROLL_") {
			continue
		}
		if err := cfg.set(key, value); err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

func (c *Config) set(key, value string) error {
	value = strings.TrimSpace(value)
	var err error
	switch key {
	case EnvClusters:
		c.Clusters, err = list(key, value, clusterPattern, "a cluster name or ARN")
	case EnvDryRun:
		c.DryRun, err = boolean(key, value)
	case EnvRequireOptIn:
		c.RequireOptIn, err = boolean(key, value)
	case EnvRegistryAccounts:
		c.RegistryAccounts, err = list(key, value, accountPattern, "a 12-digit account id")
	case EnvNotifyTopicARN:
		if value != "" && !topicPattern.MatchString(value) {
			err = fmt.Errorf("%s=%q: not an SNS topic ARN", key, value)
		}
		c.NotifyTopicARN = value
	case EnvParameterPrefix:
		if value != "" && (!parameterPattern.MatchString(value) || strings.HasPrefix(strings.ToLower(value), "/aws") || strings.HasPrefix(strings.ToLower(value), "/ssm")) {
			err = fmt.Errorf("%s=%q: want a parameter path such as /pinroll/images (starts with /, no trailing /, not under /aws or /ssm)", key, value)
		}
		c.ParameterPrefix = value
	case EnvTargetRoles:
		c.TargetRoles, err = list(key, value, rolePattern, "an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")
		if err == nil {
			err = oneRolePerAccount(key, c.TargetRoles)
		}
	case EnvIndexTable:
		if value != "" && !tablePattern.MatchString(value) {
			err = fmt.Errorf("%s=%q: not a DynamoDB table name (3 to 255 of A-Z, a-z, 0-9, _, - and .; a name, not an ARN)", key, value)
		}
		c.IndexTable = value
	case EnvContinueQueue:
		if value != "" && !queuePattern.MatchString(value) {
			err = fmt.Errorf("%s=%q: not the URL of an SQS FIFO queue (want https://sqs.<region>.amazonaws.com/<12-digit account>/<name>.fifo)", key, value)
		}
		c.ContinueQueue = value
	default:
		err = fmt.Errorf("%s: unknown variable (known: %s)", key, strings.Join(Known(), ", "))
	}
	return err
}

// Known lists the PINROLL_* variables pinroll reads.
func Known() []string {
	return []string{EnvClusters, EnvDryRun, EnvRequireOptIn, EnvRegistryAccounts, EnvNotifyTopicARN, EnvParameterPrefix, EnvTargetRoles, EnvIndexTable, EnvContinueQueue}
}

// oneRolePerAccount refuses two roles in one account: pinroll would deploy there twice.
func oneRolePerAccount(key string, roles []string) error {
	seen := map[string]string{}
	for _, r := range roles {
		account := strings.Split(r, ":")[4]
		if other, ok := seen[account]; ok {
			return fmt.Errorf("%s: %s and %s are both in account %s; give one role per account", key, other, r, account)
		}
		seen[account] = r
	}
	return nil
}

func boolean(key, value string) (bool, error) {
	if value == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", key, value)
	}
	return b, nil
}

func list(key, value string, valid pattern.Pattern, what string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !valid.MatchString(item) {
			return nil, fmt.Errorf("%s: %q is not %s", key, item, what)
		}
		if !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	return out, nil
}

// RegistryAllowed reports whether images of the given registry account may be deployed.
// home is the account pinroll runs in, used when RegistryAccounts is empty.
func (c Config) RegistryAllowed(account, home string) bool {
	if len(c.RegistryAccounts) == 0 {
		return account == home
	}
	return slices.Contains(c.RegistryAccounts, account)
}

// ValidTableName reports whether name follows DynamoDB's rule for table names.
func ValidTableName(name string) bool { return tablePattern.MatchString(name) }
