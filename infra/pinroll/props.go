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
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
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
	// ReservedConcurrency of the function: at least 2, the continuation queue's event source
	// mapping's maximum concurrency, since Lambda throttles the queue's messages when the function
	// has less (README "The continuation queue"). 0 means 3: the mapping's 2, and 1 more so that a push
	// never waits behind two running continuations. Concurrent invocations are safe through the
	// index table's claims (README "Reliability").
	ReservedConcurrency int
	// Timeout of one invocation (at most Lambda's 15 minutes). Nil means 5 minutes. The
	// continuation queue's visibility timeout is 6 times it, and its stuck-chain alarm twice that.
	Timeout awscdk.Duration
	// LogRetention of the function's log group. Empty means one year, the minimum Control Tower's
	// CT.CLOUDWATCH.PR.2 accepts.
	LogRetention awslogs.RetentionDays
	// NoLogEncryption leaves the log group encrypted by CloudWatch Logs' own key instead of a
	// customer-managed KMS key with rotation (which CT.CLOUDWATCH.PR.3 requires; $1 a month).
	NoLogEncryption bool
	// NoAlarmActions: without Notify, do not create a topic for the alarms, so they have no action
	// (CT.CLOUDWATCH.PR.1 then fails). With Notify the alarms always publish to its topic.
	NoAlarmActions bool
	// Vpc places the function in a VPC (CT.LAMBDA.PR.3). Nil means outside any VPC.
	Vpc *VpcConfig
	// TargetRoles are the role ARNs, one per target account, that the function assumes to deploy
	// there (PINROLL_TARGET_ROLES); each is a target stack's role (NewTargetStack). The function may
	// assume exactly these, the default bus accepts ECS deployment events forwarded from their
	// accounts, and the deployment rule takes them.
	TargetRoles []string
	// LogLevel of the function's application logs. Empty means INFO.
	LogLevel awslambda.ApplicationLogLevel
	// NoIndexTable: no DynamoDB index table (PINROLL_INDEX_TABLE). By default pinroll keeps what
	// discovery learns about each task-definition revision in a table, so a cold start describes
	// only revisions it has never seen (README "The index").
	NoIndexTable bool
	// Chat delivers the topic's notifications to a Slack channel or a Microsoft Teams channel (or
	// both) through Amazon Q Developer in chat applications (formerly AWS Chatbot). Implies Notify.
	Chat *ChatConfig
	// CodePath is a directory that contains the function's `bootstrap` binary (linux/arm64). Empty
	// means "dist" (relative to the working directory: the repository root under `cdk`). Only the
	// file named bootstrap is packaged.
	CodePath string
}

// VpcConfig is where the function's network interfaces go: private subnets whose route reaches the
// AWS APIs (interface endpoints or a NAT gateway; README "Deploy"), and security groups; without
// them, pinroll creates in VpcID a security group that allows outbound HTTPS only.
type VpcConfig struct {
	SubnetIDs        []string
	SecurityGroupIDs []string
	VpcID            string
	// Endpoints creates, in VpcID and SubnetIDs, the interface endpoints the function calls (ECS,
	// ECR API, and STS, SNS, SSM when configured), reachable on 443 from the function's security
	// groups. Leave it off when the VPC already has them or a NAT gateway.
	Endpoints bool
	// RouteTableIDs are the route tables of SubnetIDs: with Endpoints and the index table, pinroll
	// adds a DynamoDB gateway endpoint to them (DynamoDB's free endpoint; it is routed, not placed
	// in subnets, so it needs the route tables).
	RouteTableIDs []string
}

// ChatConfig names the chat channels of Amazon Q Developer in chat applications. The Slack
// workspace or the Microsoft Teams team must have been authorised once in the Amazon Q Developer
// console of the account (README "Deploy"); the channel configuration only names it.
type ChatConfig struct {
	SlackWorkspaceID string // e.g. T0123ABCD (the console shows it after the authorisation)
	SlackChannelID   string // e.g. C0123ABCD (the channel's details in Slack; private channels need /invite @Amazon Q)
	TeamsTeamID      string // the team's id (a UUID, from the team's link)
	TeamsChannelID   string // the channel's id from its link (19%3a…%40thread.tacv2)
	TeamsTenantID    string // the Microsoft Entra tenant id (a UUID)
	// LoggingLevel of the channel configurations' logs in CloudWatch Logs: ERROR, INFO or NONE.
	// Empty means ERROR.
	LoggingLevel string
}

func (c *ChatConfig) slack() bool { return c != nil && c.SlackWorkspaceID != "" }
func (c *ChatConfig) teams() bool { return c != nil && c.TeamsTeamID != "" }

func (c *ChatConfig) loggingLevel() string {
	if c.LoggingLevel == "" {
		return "ERROR"
	}
	return c.LoggingLevel
}

// Defaults that are design decisions, not accidents; README "Deploy" explains each.
const (
	DefaultCodePath            = "dist"
	DefaultReservedConcurrency = continueMaxConcurrency + 1
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
	// An exact role ARN (no wildcard: sts:AssumeRole is granted on exactly these), path allowed.
	targetRoleRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$`)
	subnetRe     = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	sgRe         = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)
	vpcRe        = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	rtbRe        = regexp.MustCompile(`^rtb-[0-9a-f]{8,17}$`)
	// The patterns of AWS::Chatbot::SlackChannelConfiguration and MicrosoftTeamsChannelConfiguration.
	slackWorkspaceRe = regexp.MustCompile(`^[0-9A-Z]{1,255}$`)
	slackChannelRe   = regexp.MustCompile(`^[A-Za-z0-9]{1,255}$`)
	uuidRe           = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	teamsChannelRe   = regexp.MustCompile(`^[a-zA-Z0-9-_=+/.,]*%3[aA][a-zA-Z0-9-_=+/.,]*%40[a-zA-Z0-9-_=+/.,]*$`)
)

// Validate reports every problem with the props at once, naming each field.
func (p *Props) Validate() error {
	errs := []error{p.validateScope()}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
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
	if p.ParameterPrefix != "" && !paramPrefRe.MatchString(p.ParameterPrefix) {
		bad("ParameterPrefix: %q must look like /name or /name/sub (leading /, no trailing /)", p.ParameterPrefix)
	}
	if p.NotificationEmail != "" && !strings.Contains(p.NotificationEmail, "@") {
		bad("NotificationEmail: %q is not an e-mail address", p.NotificationEmail)
	}
	byAccount := map[string]string{}
	for _, r := range p.TargetRoles {
		m := targetRoleRe.FindStringSubmatch(r)
		switch {
		case m == nil:
			bad("TargetRoles (%s): %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>, no wildcard)", CtxTargetRoles, r)
		case byAccount[m[1]] == r:
			bad("TargetRoles (%s): %q is listed twice", CtxTargetRoles, r)
		case byAccount[m[1]] != "":
			bad("TargetRoles (%s): %q and %q are both in account %s: one target role per account", CtxTargetRoles, byAccount[m[1]], r, m[1])
		default:
			byAccount[m[1]] = r
		}
	}
	if v := p.Vpc; v != nil {
		if len(v.SubnetIDs) == 0 {
			bad("Vpc: SubnetIDs is empty: give the private subnets the function runs in")
		}
		for _, id := range v.SubnetIDs {
			if !subnetRe.MatchString(id) {
				bad("Vpc: %q is not a subnet id (subnet-…)", id)
			}
		}
		for _, id := range v.SecurityGroupIDs {
			if !sgRe.MatchString(id) {
				bad("Vpc: %q is not a security group id (sg-…)", id)
			}
		}
		if v.VpcID != "" && !vpcRe.MatchString(v.VpcID) {
			bad("Vpc: %q is not a VPC id (vpc-…)", v.VpcID)
		}
		if v.Endpoints && v.VpcID == "" {
			bad("Vpc: Endpoints needs the VpcID to create them in")
		}
		for _, id := range v.RouteTableIDs {
			if !rtbRe.MatchString(id) {
				bad("Vpc: %q is not a route table id (rtb-…)", id)
			}
		}
		// Without a route to DynamoDB every index batch would wait for its timeout before ECS.
		if v.Endpoints && !p.NoIndexTable && len(v.RouteTableIDs) == 0 {
			bad("Vpc: Endpoints with the index table needs the subnets' RouteTableIDs (routeTableIds, rtb-…) for the DynamoDB gateway endpoint; "+
				"or set %s=false", CtxIndexTable)
		}
		if len(v.SecurityGroupIDs) == 0 && v.VpcID == "" {
			bad("Vpc: give SecurityGroupIDs, or VpcID (pinroll then creates an HTTPS-egress-only security group)")
		}
	}
	if c := p.Chat; c != nil {
		switch {
		case (c.SlackWorkspaceID == "") != (c.SlackChannelID == ""):
			bad("Chat (%s, %s): give both the Slack workspace id and the channel id, or neither", CtxSlackWorkspaceID, CtxSlackChannelID)
		case c.SlackWorkspaceID != "" && !slackWorkspaceRe.MatchString(c.SlackWorkspaceID):
			bad("Chat (%s): %q is not a Slack workspace id (T0123ABCD)", CtxSlackWorkspaceID, c.SlackWorkspaceID)
		case c.SlackChannelID != "" && !slackChannelRe.MatchString(c.SlackChannelID):
			bad("Chat (%s): %q is not a Slack channel id (C0123ABCD)", CtxSlackChannelID, c.SlackChannelID)
		}
		n := 0
		for _, v := range []string{c.TeamsTeamID, c.TeamsChannelID, c.TeamsTenantID} {
			if v != "" {
				n++
			}
		}
		switch {
		case n != 0 && n != 3:
			bad("Chat (%s, %s, %s): give the Teams team id, channel id and tenant id, or none", CtxTeamsTeamID, CtxTeamsChannelID, CtxTeamsTenantID)
		case n == 3 && !uuidRe.MatchString(c.TeamsTeamID):
			bad("Chat (%s): %q is not a Teams team id (a UUID)", CtxTeamsTeamID, c.TeamsTeamID)
		case n == 3 && !uuidRe.MatchString(c.TeamsTenantID):
			bad("Chat (%s): %q is not a tenant id (a UUID)", CtxTeamsTenantID, c.TeamsTenantID)
		case n == 3 && !teamsChannelRe.MatchString(c.TeamsChannelID):
			bad("Chat (%s): %q is not a Teams channel id as its link gives it (19%%3a…%%40thread.tacv2)", CtxTeamsChannelID, c.TeamsChannelID)
		}
		if n == 0 && c.SlackWorkspaceID == "" && c.SlackChannelID == "" {
			bad("Chat: names no Slack or Teams channel")
		}
		switch c.LoggingLevel {
		case "", "ERROR", "INFO", "NONE":
		default:
			bad("Chat (%s): %q is not ERROR, INFO or NONE", CtxChatLoggingLevel, c.LoggingLevel)
		}
	}
	if p.ReservedConcurrency < 0 || p.ReservedConcurrency == 1 {
		// AWS: "Don't set maximum concurrency higher than the function's reserved concurrency",
		// or Lambda may throttle the queue's messages (Lambda Developer Guide, "Configuring
		// scaling behavior for SQS event source mappings").
		bad("ReservedConcurrency (%s): %d is below %d, the continuation queue's maximum concurrency (the least Lambda allows): "+
			"Lambda would throttle the queue's messages; give at least %d (0 means the default, %d)",
			CtxReservedConcurrency, p.ReservedConcurrency, continueMaxConcurrency, continueMaxConcurrency, DefaultReservedConcurrency)
	}
	if t := p.Timeout; t != nil {
		if *t.IsUnresolved() {
			bad("Timeout: must be a literal duration (awscdk.Duration_Minutes(…)): the continuation queue's visibility timeout is computed from it")
		} else if s := *t.ToSeconds(&awscdk.TimeConversionOptions{Integral: jsii.Bool(false)}); s < 1 || s > 15*60 || s != float64(int(s)) {
			bad("Timeout: %v seconds is not a whole number of seconds from 1 to 900 (Lambda's range: up to 15 minutes)", s)
		}
	}
	bootstrap := filepath.Join(p.codePath(), "bootstrap")
	if st, err := os.Stat(bootstrap); err != nil || st.IsDir() {
		bad("CodePath: %s is missing: build it first with `make dist/bootstrap` "+
			"(CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags '-s -w' -tags lambda.norpc -o dist/bootstrap ./lambda)", bootstrap)
	}
	return errors.Join(errs...)
}

// validateScope checks the fields the hub shares with the target (TargetProps).
func (p *Props) validateScope() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, c := range p.Clusters {
		if !clusterRe.MatchString(c) && !clusterArn.MatchString(c) {
			bad("Clusters: %q is neither a cluster name nor a cluster ARN", c)
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
		return awslogs.RetentionDays_ONE_YEAR
	}
	return p.LogRetention
}

func (p *Props) logLevel() awslambda.ApplicationLogLevel {
	if p.LogLevel == "" {
		return awslambda.ApplicationLogLevel_INFO
	}
	return p.LogLevel
}

func (p *Props) notify() bool {
	return p.Notify || p.NotificationEmail != "" || p.Chat.slack() || p.Chat.teams()
}

// topic: a topic exists for the reports, or for the alarms' actions.
func (p *Props) topic() bool { return p.notify() || !p.NoAlarmActions }

// targetAccounts are the accounts of TargetRoles, in order, without repeats.
func (p *Props) targetAccounts() []string {
	var out []string
	for _, r := range p.TargetRoles {
		if m := targetRoleRe.FindStringSubmatch(r); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
