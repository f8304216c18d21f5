// Package pinroll is the CDK construct that provisions pinroll: the function, the EventBridge rules
// that feed it (ECR push, ECS deployment state change, reconcile schedule), its dead-letter and
// on-failure queues, alarms, an optional SNS topic, and a least-privilege execution role.
//
// Embed it in any CDK Go app with pinroll.New(stack, "Pinroll", &pinroll.Props{…}), or deploy it on
// its own with NewPinrollStack (what infra/main.go does).
package pinroll

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// Props configures pinroll. The zero value is a valid configuration: every cluster of the account
// and region, every repository, no opt-in, live deploys, no topic, reconcile every 15 minutes.
type Props struct {
	// Clusters in scope: names, or ARNs (arn:…:ecs:<region>:<account>:cluster/<name>). Empty means
	// every cluster of the stack's account and region. Scopes PINROLL_CLUSTERS, the ECS deployment
	// rule and the ECS permissions.
	Clusters []string
	// Repositories whose pushes trigger pinroll: exact names, or prefixes written with a trailing
	// "*" ("team-a/*"). Empty means every repository. Scopes the push rule and ecr:DescribeImages.
	// The function itself still matches repositories exactly; this only narrows what reaches it.
	Repositories []string
	// RequireOptIn: only services tagged pinroll:enabled=true are deployed (PINROLL_REQUIRE_OPT_IN).
	RequireOptIn bool
	// DryRun: plan and report, change nothing (PINROLL_DRY_RUN).
	DryRun bool
	// RegistryAccounts whose ECR images may be deployed (PINROLL_REGISTRY_ACCOUNTS). Empty means the
	// stack's own account.
	RegistryAccounts []string
	// PassRoles the function may pass to ECS tasks when it registers a task definition revision:
	// role ARNs or ARN patterns ("arn:aws:iam::123456789012:role/app-*"), or role names or name
	// patterns in the stack's account ("app-*"). Empty means every role of the stack's account;
	// either way only to ecs-tasks.amazonaws.com.
	PassRoles []string
	// ParameterPrefix ("/pinroll"): write each pinned image to SSM under it
	// (PINROLL_PARAMETER_PREFIX). Empty means off.
	ParameterPrefix string
	// Notify creates an SNS topic that receives the alarms and the function's reports
	// (PINROLL_NOTIFY_TOPIC_ARN). Implied by NotificationEmail.
	Notify bool
	// NotificationEmail subscribes this address to the topic (it must confirm the subscription).
	NotificationEmail string
	// ReconcileRate is how often the reconcile rule fires. Nil means 15 minutes.
	ReconcileRate awscdk.Duration
	// DisableReconcile keeps the reconcile rule but disabled.
	DisableReconcile bool
	// ReservedConcurrency of the function. 0 means 1: one invocation at a time serialises deploys
	// and keeps RegisterTaskDefinition under its account-wide 1/s sustained limit.
	ReservedConcurrency int
	// Timeout of one invocation. Nil means 5 minutes.
	Timeout awscdk.Duration
	// LogRetention of the function's log group. Empty means one month.
	LogRetention awslogs.RetentionDays
	// LogLevel of the function's application logs. Empty means INFO.
	LogLevel awslambda.ApplicationLogLevel
	// CodePath is a directory that contains the function's `bootstrap` binary (linux/arm64). Empty
	// means "dist" (relative to the working directory: the repository root under `cdk`). Only the
	// file named bootstrap is packaged.
	CodePath string
}

// Defaults that are design decisions, not accidents; README "Deploy" explains each.
const (
	DefaultCodePath            = "dist"
	DefaultReservedConcurrency = 1
	DefaultReconcileMinutes    = 15
	DefaultTimeoutMinutes      = 5
)

var (
	accountRe   = regexp.MustCompile(`^[0-9]{12}$`)
	clusterRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	clusterArn  = regexp.MustCompile(`^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255}$`)
	repoRe      = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
	repoPrefRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*$`)
	roleRe      = regexp.MustCompile(`^[A-Za-z0-9+=,.@_/*-]{1,512}$`)
	roleArnRe   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/*-]+$`)
	paramPrefRe = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)
)

// Validate reports every problem with the props at once, naming each field.
func (p *Props) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, c := range p.Clusters {
		if !clusterRe.MatchString(c) && !clusterArn.MatchString(c) {
			bad("Clusters: %q is neither a cluster name nor a cluster ARN", c)
		}
	}
	for _, r := range p.Repositories {
		if name, isPrefix := strings.CutSuffix(r, "*"); isPrefix {
			if !repoPrefRe.MatchString(name) {
				bad("Repositories: %q is not a repository name prefix followed by *", r)
			}
		} else if !repoRe.MatchString(r) {
			bad("Repositories: %q is not an ECR repository name (end a prefix with *)", r)
		}
	}
	for _, a := range p.RegistryAccounts {
		if !accountRe.MatchString(a) {
			bad("RegistryAccounts: %q is not a 12-digit account id", a)
		}
	}
	for _, r := range p.PassRoles {
		if strings.HasPrefix(r, "arn:") {
			if !roleArnRe.MatchString(r) {
				bad("PassRoles: %q is not an IAM role ARN", r)
			}
		} else if !roleRe.MatchString(r) || r == "*" {
			bad("PassRoles: %q is not a role name or name pattern (leave PassRoles empty for every role of the account)", r)
		}
	}
	if p.ParameterPrefix != "" && !paramPrefRe.MatchString(p.ParameterPrefix) {
		bad("ParameterPrefix: %q must look like /name or /name/sub (leading /, no trailing /)", p.ParameterPrefix)
	}
	if p.NotificationEmail != "" && !strings.Contains(p.NotificationEmail, "@") {
		bad("NotificationEmail: %q is not an e-mail address", p.NotificationEmail)
	}
	if p.ReservedConcurrency < 0 {
		bad("ReservedConcurrency: %d must be at least 1 (0 means the default, 1)", p.ReservedConcurrency)
	}
	bootstrap := filepath.Join(p.codePath(), "bootstrap")
	if st, err := os.Stat(bootstrap); err != nil || st.IsDir() {
		bad("CodePath: %s is missing: build it first with `make dist/bootstrap` "+
			"(CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags '-s -w' -tags lambda.norpc -o dist/bootstrap ./lambda)", bootstrap)
	}
	return errors.Join(errs...)
}

func (p *Props) codePath() string {
	if p.CodePath == "" {
		return DefaultCodePath
	}
	return p.CodePath
}

func (p *Props) reservedConcurrency() float64 {
	if p.ReservedConcurrency == 0 {
		return DefaultReservedConcurrency
	}
	return float64(p.ReservedConcurrency)
}

func (p *Props) reconcileRate() awscdk.Duration {
	if p.ReconcileRate == nil {
		return awscdk.Duration_Minutes(ptr(float64(DefaultReconcileMinutes)))
	}
	return p.ReconcileRate
}

func (p *Props) timeout() awscdk.Duration {
	if p.Timeout == nil {
		return awscdk.Duration_Minutes(ptr(float64(DefaultTimeoutMinutes)))
	}
	return p.Timeout
}

func (p *Props) logRetention() awslogs.RetentionDays {
	if p.LogRetention == "" {
		return awslogs.RetentionDays_ONE_MONTH
	}
	return p.LogRetention
}

func (p *Props) logLevel() awslambda.ApplicationLogLevel {
	if p.LogLevel == "" {
		return awslambda.ApplicationLogLevel_INFO
	}
	return p.LogLevel
}

func (p *Props) notify() bool { return p.Notify || p.NotificationEmail != "" }

func ptr[T any](v T) *T { return &v }
