package pinroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// Context keys read by PropsFromContext (cdk.json "context", or `cdk … -c key=value`). Every key
// starting with "pinroll:" must be one of these: a typo fails the synth instead of being ignored.
const (
	CtxClusters            = "pinroll:clusters"
	CtxRepositories        = "pinroll:repositories"
	CtxRequireOptIn        = "pinroll:requireOptIn"
	CtxDryRun              = "pinroll:dryRun"
	CtxRegistryAccounts    = "pinroll:registryAccounts"
	CtxPassRoles           = "pinroll:passRoles"
	CtxParameterPrefix     = "pinroll:parameterPrefix"
	CtxNotify              = "pinroll:notify"
	CtxNotificationEmail   = "pinroll:notificationEmail"
	CtxReconcileRate       = "pinroll:reconcileRate"
	CtxReservedConcurrency = "pinroll:reservedConcurrency"
	CtxCodePath            = "pinroll:codePath"
	CtxStackName           = "pinroll:stackName"
	CtxTargetRoles         = "pinroll:targetRoles"
	CtxVpc                 = "pinroll:vpc"
	CtxLogRetentionDays    = "pinroll:logRetentionDays"
	CtxLogEncryption       = "pinroll:logEncryption"
	CtxAlarmActions        = "pinroll:alarmActions"
	CtxIndexTable          = "pinroll:indexTable"
	CtxSlackWorkspaceID    = "pinroll:slackWorkspaceId"
	CtxSlackChannelID      = "pinroll:slackChannelId"
	CtxTeamsTeamID         = "pinroll:teamsTeamId"
	CtxTeamsChannelID      = "pinroll:teamsChannelId"
	CtxTeamsTenantID       = "pinroll:teamsTenantId"
	CtxChatLoggingLevel    = "pinroll:chatLoggingLevel"
	// Which stacks the app holds: "hub" (the default, what deploy and diff act on), "target", or
	// "all" (make synth: both templates).
	CtxStack               = "pinroll:stack"
	CtxHubRoleArn          = "pinroll:hubRoleArn"
	CtxTargetRoleName      = "pinroll:targetRoleName"
	CtxTargetAlarmTopicArn = "pinroll:targetAlarmTopicArn"
)

var contextKeys = []string{CtxClusters, CtxRepositories, CtxRequireOptIn, CtxDryRun, CtxRegistryAccounts,
	CtxPassRoles, CtxParameterPrefix, CtxNotify, CtxNotificationEmail, CtxReconcileRate,
	CtxReservedConcurrency, CtxCodePath, CtxStackName, CtxTargetRoles, CtxVpc, CtxLogRetentionDays,
	CtxLogEncryption, CtxAlarmActions, CtxStack, CtxHubRoleArn, CtxTargetRoleName, CtxTargetAlarmTopicArn,
	CtxIndexTable, CtxSlackWorkspaceID, CtxSlackChannelID, CtxTeamsTeamID, CtxTeamsChannelID, CtxTeamsTenantID,
	CtxChatLoggingLevel}

// DefaultStackName is the stack's name unless pinroll:stackName says otherwise.
const DefaultStackName = "Pinroll"

// The values of pinroll:stack.
const (
	StackHub    = "hub"
	StackTarget = "target"
	StackAll    = "all"
)

// StackConfig is what the app reads from the CDK context.
type StackConfig struct {
	StackName string // the hub stack's; the target stack is StackName+"Target"
	Stacks    string // StackHub (default), StackTarget or StackAll
	Props     Props
	Target    TargetProps
}

// retention is every log retention CloudWatch Logs accepts, by days.
var retention = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// PropsFromContext turns CDK context values into props. Values come typed from cdk.json (lists,
// booleans, numbers) or as strings from `-c` (lists comma-separated); both are accepted.
func PropsFromContext(ctx map[string]any) (StackConfig, error) {
	cfg := StackConfig{StackName: DefaultStackName, Stacks: StackHub}
	p := &cfg.Props
	var errs []error
	for k := range ctx {
		if strings.HasPrefix(k, "pinroll:") && !slices.Contains(contextKeys, k) {
			errs = append(errs, fmt.Errorf("unknown context key %q (known: %s)", k, strings.Join(contextKeys, ", ")))
		}
	}
	list := func(k string) []string {
		switch v := ctx[k].(type) {
		case nil:
			return nil
		case string:
			var out []string
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out
		case []any:
			var out []string
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					errs = append(errs, fmt.Errorf("%s: element %v is not a string", k, e))
					continue
				}
				out = append(out, s)
			}
			return out
		default:
			errs = append(errs, fmt.Errorf("%s: want a list of strings or a comma-separated string, got %T", k, v))
			return nil
		}
	}
	str := func(k string) string {
		switch v := ctx[k].(type) {
		case nil:
			return ""
		case string:
			return v
		default:
			errs = append(errs, fmt.Errorf("%s: want a string, got %T", k, v))
			return ""
		}
	}
	boolean := func(k string) bool {
		switch v := ctx[k].(type) {
		case nil:
			return false
		case bool:
			return v
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, v))
			}
			return b
		default:
			errs = append(errs, fmt.Errorf("%s: want true or false, got %T", k, v))
			return false
		}
	}

	booleanOr := func(k string, def bool) bool {
		if _, ok := ctx[k]; !ok {
			return def
		}
		return boolean(k)
	}

	p.Clusters = list(CtxClusters)
	p.Repositories = list(CtxRepositories)
	p.RequireOptIn = boolean(CtxRequireOptIn)
	p.DryRun = boolean(CtxDryRun)
	p.RegistryAccounts = list(CtxRegistryAccounts)
	p.PassRoles = list(CtxPassRoles)
	p.ParameterPrefix = str(CtxParameterPrefix)
	p.Notify = boolean(CtxNotify)
	p.NotificationEmail = str(CtxNotificationEmail)
	p.CodePath = str(CtxCodePath)
	p.TargetRoles = list(CtxTargetRoles)
	p.NoLogEncryption = !booleanOr(CtxLogEncryption, true)
	p.NoAlarmActions = !booleanOr(CtxAlarmActions, true)
	p.NoIndexTable = !booleanOr(CtxIndexTable, true)
	chat := ChatConfig{
		SlackWorkspaceID: str(CtxSlackWorkspaceID), SlackChannelID: str(CtxSlackChannelID),
		TeamsTeamID: str(CtxTeamsTeamID), TeamsChannelID: str(CtxTeamsChannelID), TeamsTenantID: str(CtxTeamsTenantID),
		LoggingLevel: str(CtxChatLoggingLevel),
	}
	if chat != (ChatConfig{}) {
		p.Chat = &chat
	}
	if v, ok := ctx[CtxLogRetentionDays]; ok {
		var days int
		switch v := v.(type) {
		case float64:
			days = int(v)
			if float64(days) != v {
				days = -1
			}
		case string:
			n, err := strconv.Atoi(v)
			if err != nil {
				n = -1
			}
			days = n
		}
		r, ok := retention[days]
		if !ok {
			var valid []int
			for d := range retention {
				valid = append(valid, d)
			}
			slices.Sort(valid)
			errs = append(errs, fmt.Errorf("%s: %v is not a retention CloudWatch Logs accepts (days: %v)", CtxLogRetentionDays, v, valid))
		}
		p.LogRetention = r
	}
	p.Vpc = vpcConfig(ctx[CtxVpc], &errs)
	switch st := str(CtxStack); st {
	case "":
	case StackHub, StackTarget, StackAll:
		cfg.Stacks = st
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not %s, %s or %s", CtxStack, st, StackHub, StackTarget, StackAll))
	}
	// The target stack shares the scope of the hub: the same clusters and pass roles.
	cfg.Target = TargetProps{
		HubRoleArn: str(CtxHubRoleArn), RoleName: str(CtxTargetRoleName), AlarmTopicArn: str(CtxTargetAlarmTopicArn),
		Clusters: p.Clusters, PassRoles: p.PassRoles,
	}
	if name := str(CtxStackName); name != "" {
		cfg.StackName = name
	}

	switch rate := str(CtxReconcileRate); rate {
	case "":
	case "off":
		p.DisableReconcile = true
	default:
		d, err := parseRate(rate)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", CtxReconcileRate, err))
		}
		p.ReconcileRate = d
	}

	switch v := ctx[CtxReservedConcurrency].(type) {
	case nil:
	case float64:
		p.ReservedConcurrency = int(v)
		if float64(p.ReservedConcurrency) != v || v < 1 {
			errs = append(errs, fmt.Errorf("%s: %v is not a whole number ≥ 1", CtxReservedConcurrency, v))
		}
	case string:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number ≥ 1", CtxReservedConcurrency, v))
		}
		p.ReservedConcurrency = n
	default:
		errs = append(errs, fmt.Errorf("%s: want a number, got %T", CtxReservedConcurrency, v))
	}
	return cfg, errors.Join(errs...)
}

// vpcConfig reads pinroll:vpc: an object {"subnetIds": […], "securityGroupIds": […]} or
// {"subnetIds": […], "vpcId": "vpc-…"}, with "endpoints": true to create the interface endpoints
// (cdk.json), the same object as a JSON string, or a comma-separated list of subnet-, sg- and vpc-
// ids and the word endpoints (`-c pinroll:vpc=subnet-a,subnet-b,vpc-c,endpoints`).
func vpcConfig(v any, errs *[]error) *VpcConfig {
	bad := func(format string, args ...any) *VpcConfig {
		*errs = append(*errs, fmt.Errorf(CtxVpc+": "+format, args...))
		return nil
	}
	if s, ok := v.(string); ok {
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				return bad("%v", err)
			}
			v = m
		} else {
			c := &VpcConfig{}
			for _, id := range strings.Split(s, ",") {
				switch id = strings.TrimSpace(id); {
				case strings.HasPrefix(id, "subnet-"):
					c.SubnetIDs = append(c.SubnetIDs, id)
				case strings.HasPrefix(id, "sg-"):
					c.SecurityGroupIDs = append(c.SecurityGroupIDs, id)
				case strings.HasPrefix(id, "vpc-"):
					c.VpcID = id
				case strings.HasPrefix(id, "rtb-"):
					c.RouteTableIDs = append(c.RouteTableIDs, id)
				case id == "endpoints":
					c.Endpoints = true
				default:
					return bad("%q is not a subnet-, sg-, vpc- or rtb- id, nor \"endpoints\"", id)
				}
			}
			return c
		}
	}
	switch v := v.(type) {
	case nil:
		return nil
	case map[string]any:
		c := &VpcConfig{}
		for k := range v {
			if k != "subnetIds" && k != "securityGroupIds" && k != "vpcId" && k != "endpoints" && k != "routeTableIds" {
				return bad("unknown field %q (known: subnetIds, securityGroupIds, vpcId, endpoints, routeTableIds)", k)
			}
		}
		c.SubnetIDs, c.SecurityGroupIDs = asStrings(v["subnetIds"]), asStrings(v["securityGroupIds"])
		c.RouteTableIDs = asStrings(v["routeTableIds"])
		c.VpcID, _ = v["vpcId"].(string)
		switch e := v["endpoints"].(type) {
		case nil:
		case bool:
			c.Endpoints = e
		default:
			return bad("endpoints: want true or false, got %T", e)
		}
		return c
	default:
		return bad("want an object {subnetIds, securityGroupIds | vpcId} or a comma-separated list of ids, got %T", v)
	}
}

func asStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

var rateRe = regexp.MustCompile(`^([1-9][0-9]*) (minute|minutes|hour|hours|day|days)$`)

// parseRate reads an EventBridge rate ("15 minutes", "1 hour", "2 days").
func parseRate(s string) (awscdk.Duration, error) {
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%q: want \"<n> minutes|hours|days\" (e.g. \"15 minutes\") or \"off\"", s)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	switch strings.TrimSuffix(m[2], "s") {
	case "minute":
		return awscdk.Duration_Minutes(&n), nil
	case "hour":
		return awscdk.Duration_Hours(&n), nil
	default:
		return awscdk.Duration_Days(&n), nil
	}
}
