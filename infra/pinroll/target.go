package pinroll

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
	"github.com/pinroll/pinroll/lambda/contract"
)

// TargetProps configure the target of a hub: what one workload account (in one region) deploys
// for a pinroll hub in another account. The zero value is valid: the hub's function role ARN is
// then a parameter of the template (StackSets pass it once for every account).
type TargetProps struct {
	// HubRoleArn is the hub's function role (the hub stack's FunctionRoleArn output). Empty: the
	// template takes it as the HubFunctionRoleArn parameter.
	HubRoleArn string
	// RoleName of the target role, the name the hub's pinroll:targetRoles lists. Empty means
	// "pinroll-target-<region>": IAM is global and each region has its own hub.
	RoleName string
	// Clusters and PassRoles scope the role as they scope the hub's function (Props).
	Clusters  []string
	PassRoles []string
	// AlarmTopicArn: an SNS topic of this account that an alarm on the dead-letter queue publishes
	// to. Empty means no alarm (a forwarded event lost is a deployment the hub does not verify;
	// reconciliation still finds any drift).
	AlarmTopicArn string
}

var (
	roleNameRe = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`)
	topicArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)
)

// Validate reports every problem with the props at once, naming each field.
func (p *TargetProps) Validate() error {
	var errs []error
	if p.HubRoleArn != "" && !targetRoleRe.MatchString(p.HubRoleArn) {
		errs = append(errs, fmt.Errorf("HubRoleArn: %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", p.HubRoleArn))
	}
	if p.AlarmTopicArn != "" && !topicArnRe.MatchString(p.AlarmTopicArn) {
		errs = append(errs, fmt.Errorf("AlarmTopicArn: %q is not an SNS topic ARN", p.AlarmTopicArn))
	}
	if p.RoleName != "" && !roleNameRe.MatchString(p.RoleName) {
		errs = append(errs, fmt.Errorf("RoleName: %q is not an IAM role name", p.RoleName))
	}
	// The same rules as the hub's for the shared fields.
	shared := Props{Clusters: p.Clusters, PassRoles: p.PassRoles}
	if err := shared.validateScope(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Target is the target construct: the role the hub assumes, and the forwarding of this account's
// ECS deployment events to the hub's default bus.
type Target struct {
	constructs.Construct
	Role            awsiam.Role // assumed by the hub's function only
	ForwardRule     awsevents.Rule
	ForwardRole     awsiam.Role         // EventBridge's, to put events on the hub's bus
	DeadLetterQueue awssqs.Queue        // events EventBridge could not deliver to the hub's bus
	Alarm           awscloudwatch.Alarm // on DeadLetterQueue; nil without TargetProps.AlarmTopicArn
	HubRoleArn      *string             // the prop, or the parameter's value
}

// NewTarget adds a target to scope. It panics on invalid props (as CDK constructs throw).
func NewTarget(scope constructs.Construct, id string, props *TargetProps) *Target {
	if props == nil {
		props = &TargetProps{}
	}
	if err := props.Validate(); err != nil {
		panic(err)
	}
	c := constructs.NewConstruct(scope, &id)
	t := &Target{Construct: c}
	hubRole := jsii.String(props.HubRoleArn)
	if props.HubRoleArn == "" {
		hubRole = awscdk.NewCfnParameter(awscdk.Stack_Of(c), jsii.String("HubFunctionRoleArn"), &awscdk.CfnParameterProps{
			Type:           jsii.String("String"),
			Description:    jsii.String("The pinroll hub's function role (output FunctionRoleArn of the hub stack)"),
			AllowedPattern: jsii.String(targetRoleRe.String()),
		}).ValueAsString()
	}
	t.HubRoleArn = hubRole
	// The account and partition of the hub, from its role ARN (arn:<partition>:iam::<account>:role/…).
	hubPartition := awscdk.Fn_Select(jsii.Number(1), awscdk.Fn_Split(jsii.String(":"), hubRole, nil))
	hubAccount := awscdk.Fn_Select(jsii.Number(4), awscdk.Fn_Split(jsii.String(":"), hubRole, nil))
	if m := targetRoleRe.FindStringSubmatch(props.HubRoleArn); m != nil {
		hubPartition, hubAccount = awscdk.Aws_PARTITION(), jsii.String(m[1])
	}

	roleName := jsii.String(props.RoleName)
	if props.RoleName == "" {
		roleName = awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("pinroll-target-"), awscdk.Aws_REGION()})
	}
	// Trust: the hub account, on the condition that the caller is the hub's function role. The
	// account principal (not the role ARN as principal) keeps the trust valid when the hub role is
	// replaced and lets the target deploy before the hub exists (IAM resolves a role principal to its
	// unique id, and refuses one that does not exist). No sts:ExternalId: it guards against a third
	// party's confused deputy, and here the caller is named exactly by ARN within one organisation.
	t.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		RoleName:    roleName,
		Description: jsii.String("pinroll target: the pinroll hub deploys ECS services of this account with this role"),
		AssumedBy: awsiam.NewPrincipalWithConditions(
			awsiam.NewAccountPrincipal(hubAccount),
			&map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": hubRole}},
		),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	s := newScope(&Props{Clusters: props.Clusters, PassRoles: props.PassRoles})
	for _, st := range ecsStatements(s) {
		t.Role.AddToPrincipalPolicy(st)
	}
	list := ecsSuppressions(s)
	cdknag.NagSuppressions_AddResourceSuppressions(t.Role, &list, jsii.Bool(true))

	t.DeadLetterQueue = newDeadLetterQueue(c, "DeadLetterQueue")
	cdknag.NagSuppressions_AddResourceSuppressions(t.DeadLetterQueue, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself the forwarding rule's dead-letter destination; a second-level DLQ would add nothing."),
	}}, jsii.Bool(false))

	hubBus := awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("arn:"), hubPartition, jsii.String(":events:"), awscdk.Aws_REGION(), jsii.String(":"), hubAccount,
		jsii.String(":event-bus/default"),
	})
	t.ForwardRole = awsiam.NewRole(c, jsii.String("ForwardRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil),
		Description: jsii.String("pinroll target: EventBridge forwards ECS deployment events to the hub's bus"),
	})
	deployment := &awsevents.EventPattern{
		Source:     jsii.Strings(contract.SourceECS),
		DetailType: jsii.Strings(contract.DetailTypeDeployment),
		Detail: &map[string]any{
			"eventName": []string{"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"},
		},
	}
	if len(s.servicePrefixes) > 0 {
		var m []any
		for _, sp := range s.servicePrefixes {
			m = append(m, awsevents.Match_Prefix(tok(sp)))
		}
		deployment.Resources = awsevents.Match_AnyOf(m...)
	}
	t.ForwardRule = awsevents.NewRule(c, jsii.String("ForwardRule"), &awsevents.RuleProps{
		Description:  jsii.String("pinroll target: ECS deployment finished in a cluster in scope, for the hub to verify"),
		EventPattern: deployment,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewEventBus(
			awsevents.EventBus_FromEventBusArn(c, jsii.String("HubBus"), hubBus),
			&awseventstargets.EventBusProps{DeadLetterQueue: t.DeadLetterQueue, Role: t.ForwardRole},
		)},
	})
	// The L2 event-bus target has no retry settings; EventBridge honours them for every target.
	t.ForwardRule.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("Targets.0.RetryPolicy"), map[string]any{
		"MaximumRetryAttempts":     targetRetries,
		"MaximumEventAgeInSeconds": targetMaxEventHours * 3600,
	})
	if props.AlarmTopicArn != "" {
		t.Alarm = awscloudwatch.NewAlarm(c, jsii.String("DeadLetterQueueNotEmpty"), &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String("pinroll target: a deployment event could not be forwarded to the hub; read the dead-letter queue"),
			Metric: t.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
				Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum"),
			}),
			Threshold:          jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		t.Alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(
			awssns.Topic_FromTopicArn(c, jsii.String("AlarmTopic"), jsii.String(props.AlarmTopicArn))))
	}
	return t
}

// TargetStackProps are the target stack's props: CDK's own, and the target's.
type TargetStackProps struct {
	awscdk.StackProps
	Target TargetProps
}

// NewTargetStack is a stack holding one Target, deployable by CloudFormation StackSets: no assets,
// and no CDK bootstrap version check (the workload accounts need not be bootstrapped).
func NewTargetStack(scope constructs.Construct, id string, props *TargetStackProps) awscdk.Stack {
	if props == nil {
		props = &TargetStackProps{}
	}
	sprops := props.StackProps
	if sprops.Description == nil {
		sprops.Description = jsii.String("pinroll target: lets a pinroll hub deploy this account's ECS services and verify their deployments")
	}
	if sprops.Synthesizer == nil {
		sprops.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
			GenerateBootstrapVersionRule: jsii.Bool(false),
		})
	}
	stack := awscdk.NewStack(scope, &id, &sprops)
	t := NewTarget(stack, "Target", &props.Target)
	awscdk.NewCfnOutput(stack, jsii.String("TargetRoleArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("List it in the hub's pinroll:targetRoles"),
		Value:       t.Role.RoleArn(),
	})
	return stack
}
