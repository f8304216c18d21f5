package pinroll

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awschatbot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
	"github.com/pinroll/pinroll/lambda/contract"
)

// Delivery settings. EventBridge → Lambda is an asynchronous invoke that only fails when the
// Invoke API itself fails, so the target policy is generous; the function's own retries follow
// Lambda's documented behaviour (two retries), bounded so a stale event does not run hours later.
const (
	targetRetries       = 8
	targetMaxEventHours = 2
	functionRetries     = 2
	functionMaxEventAge = 2 // hours
	queueRetentionDays  = 14
)

// Pinroll is the construct. Its fields are exposed for embedding apps (extra alarms, dashboards).
type Pinroll struct {
	constructs.Construct
	Function          awslambda.Function
	Role              awsiam.Role
	LogGroup          awslogs.LogGroup
	LogKey            awskms.Key // encrypts LogGroup; nil with Props.NoLogEncryption
	PushRule          awsevents.Rule
	ReplicationRule   awsevents.Rule // ECR Replication Action: a replica arrived in this region or account
	DeploymentRule    awsevents.Rule
	ReconcileRule     awsevents.Rule
	DeadLetterQueue   awssqs.Queue // events EventBridge could not deliver to the function
	FailedInvocations awssqs.Queue // events the function failed on after its retries
	Topic             awssns.Topic // the alarms' and (with Props.Notify) the reports'; nil with NoAlarmActions and no Notify
	Alarms            []awscloudwatch.Alarm
	BusPolicy         awsevents.CfnEventBusPolicy // nil without Props.TargetRoles
	SecurityGroup     awsec2.CfnSecurityGroup     // nil unless Props.Vpc names a VpcID and no security groups
	Endpoints         []awsec2.CfnVPCEndpoint     // nil unless Props.Vpc.Endpoints
	IndexTable        awsdynamodb.Table           // the index (PINROLL_INDEX_TABLE); nil with Props.NoIndexTable
	Dashboard         awscloudwatch.Dashboard
	ChatRole          awsiam.Role                                      // nil without Props.Chat
	ChatPolicy        awsiam.ManagedPolicy                             // the chat role's permissions and the channels' guardrail
	SlackChannel      awschatbot.CfnSlackChannelConfiguration          // nil without a Slack channel
	TeamsChannel      awschatbot.CfnMicrosoftTeamsChannelConfiguration // nil without a Teams channel

	// ContinueQueue carries the rest of an event's work past one invocation (FIFO,
	// PINROLL_CONTINUE_QUEUE_URL); ContinueMapping is the function's event source mapping on it;
	// ContinueDeadLetterQueue keeps the continuations that failed continueMaxReceives times.
	ContinueQueue           awssqs.Queue
	ContinueDeadLetterQueue awssqs.Queue
	ContinueMapping         awslambda.EventSourceMapping
}

// New adds pinroll to scope. It panics on invalid props (as CDK constructs throw); call
// Props.Validate first for a friendly error.
func New(scope constructs.Construct, id string, props *Props) *Pinroll {
	if props == nil {
		props = &Props{}
	}
	if err := props.Validate(); err != nil {
		panic(err)
	}
	c := constructs.NewConstruct(scope, &id)
	p := &Pinroll{Construct: c}
	s := newScope(props)

	p.DeadLetterQueue = newDeadLetterQueue(c, "DeadLetterQueue")
	p.FailedInvocations = newDeadLetterQueue(c, "FailedInvocations")
	p.ContinueQueue, p.ContinueDeadLetterQueue = newContinueQueues(c, props.timeout())

	if props.topic() {
		p.Topic = newTopic(c, props)
	}

	logProps := &awslogs.LogGroupProps{Retention: props.logRetention()}
	if !props.NoLogEncryption {
		p.LogKey = newLogKey(c)
		logProps.EncryptionKey = p.LogKey
	}
	p.LogGroup = awslogs.NewLogGroup(c, jsii.String("Logs"), logProps)
	if !props.NoIndexTable {
		p.IndexTable = newIndexTable(c, p.LogKey)
	}
	p.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("pinroll: pins ECS task definitions to ECR image digests"),
	})
	if v := props.Vpc; v != nil && v.VpcID != "" && len(v.SecurityGroupIDs) == 0 {
		p.SecurityGroup = awsec2.NewCfnSecurityGroup(c, jsii.String("SecurityGroup"), &awsec2.CfnSecurityGroupProps{
			GroupDescription: jsii.String("pinroll: outbound HTTPS to the AWS APIs only, nothing inbound"),
			VpcId:            jsii.String(v.VpcID),
			SecurityGroupEgress: []any{&awsec2.CfnSecurityGroup_EgressProperty{
				Description: jsii.String("HTTPS to the AWS APIs (interface endpoints or NAT)"),
				IpProtocol:  jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
				CidrIp: jsii.String("0.0.0.0/0"),
			}},
		})
	}
	for _, st := range statements(s, p, props) {
		p.Role.AddToPrincipalPolicy(st)
	}

	env := map[string]*string{}
	set := func(k, v string) {
		if v != "" {
			env[k] = jsii.String(v)
		}
	}
	set(contract.EnvClusters, strings.Join(props.Clusters, ","))
	set(contract.EnvRegistryAccounts, strings.Join(props.RegistryAccounts, ","))
	set(contract.EnvParameterPrefix, props.ParameterPrefix)
	set(contract.EnvTargetRoles, strings.Join(props.TargetRoles, ","))
	if props.DryRun {
		set(contract.EnvDryRun, "true")
	}
	if props.RequireOptIn {
		set(contract.EnvRequireOptIn, "true")
	}
	if props.notify() {
		env[contract.EnvNotifyTopicARN] = p.Topic.TopicArn()
	}
	if p.IndexTable != nil {
		env[contract.EnvIndexTable] = p.IndexTable.TableName()
	}
	env[contract.EnvContinueQueue] = p.ContinueQueue.QueueUrl()
	env[contract.EnvGOGC] = jsii.String(contract.GOGC) // no collection before the first event (see contract)

	p.Function = awslambda.NewFunction(c, jsii.String("Function"), &awslambda.FunctionProps{
		Description:  jsii.String("pinroll: on ECR push, re-register ECS task definitions pinned by digest and update services"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code: awslambda.Code_FromAsset(jsii.String(props.codePath()), &awss3assets.AssetOptions{
			// Only the binary: dist/ may hold other build outputs.
			Exclude: jsii.Strings("*", "!bootstrap"),
		}),
		MemorySize:                   jsii.Number(256),
		Timeout:                      props.timeout(),
		Role:                         p.Role,
		Environment:                  &env,
		LogGroup:                     p.LogGroup,
		LoggingFormat:                awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2:        props.logLevel(),
		SystemLogLevelV2:             awslambda.SystemLogLevel_WARN,
		ReservedConcurrentExecutions: jsii.Number(props.reservedConcurrency()),
		RetryAttempts:                jsii.Number(functionRetries),
		MaxEventAge:                  awscdk.Duration_Hours(jsii.Number(functionMaxEventAge)),
		OnFailure:                    awslambdadestinations.NewSqsDestination(p.FailedInvocations),
	})
	if v := props.Vpc; v != nil {
		sgs := jsii.Strings(v.SecurityGroupIDs...)
		if p.SecurityGroup != nil {
			sgs = &[]*string{p.SecurityGroup.AttrGroupId()}
		}
		// The L1 property: the L2's Vpc prop wants an IVpc, which needs a lookup (credentials) or
		// every subnet's availability zone; CloudFormation needs only the ids.
		fn := p.Function.Node().DefaultChild().(awslambda.CfnFunction)
		fn.AddPropertyOverride(jsii.String("VpcConfig"), map[string]any{
			"SubnetIds":        jsii.Strings(v.SubnetIDs...),
			"SecurityGroupIds": sgs,
		})
		// Lambda checks the role's EC2 permissions when it attaches the function: CDK already makes
		// the function depend on the role's policy.
		if v.Endpoints {
			p.Endpoints = endpoints(c, props, sgs)
		}
	}

	p.ContinueMapping = newContinueMapping(c, p.Function, p.ContinueQueue)

	target := func() awsevents.IRuleTarget {
		return awseventstargets.NewLambdaFunction(p.Function, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: p.DeadLetterQueue,
			RetryAttempts:   jsii.Number(targetRetries),
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(targetMaxEventHours)),
		})
	}

	p.PushRule = awsevents.NewRule(c, jsii.String("PushRule"), &awsevents.RuleProps{
		Description:  jsii.String("pinroll: tagged image pushed to ECR"),
		EventPattern: pushPattern(props.Repositories),
		Targets:      &[]awsevents.IRuleTarget{target()},
	})
	p.ReplicationRule = awsevents.NewRule(c, jsii.String("ReplicationRule"), &awsevents.RuleProps{
		Description:  jsii.String("pinroll: tagged image replicated into this region's registry (deploy the replica)"),
		EventPattern: replicationPattern(props.Repositories),
		Targets:      &[]awsevents.IRuleTarget{target()},
	})

	deployment := &awsevents.EventPattern{
		Source:     jsii.Strings(contract.SourceECS),
		DetailType: jsii.Strings(contract.DetailTypeDeployment),
		Detail: &map[string]any{
			// IN_PROGRESS says nothing to verify yet; FAILED covers circuit-breaker rollbacks.
			"eventName": []string{"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"},
		},
	}
	targets := props.targetAccounts()
	if len(s.servicePrefixes) > 0 {
		var m []any
		for _, sp := range s.servicePrefixes {
			m = append(m, awsevents.Match_Prefix(tok(sp)))
		}
		// A cluster given by name is that cluster in every account pinroll deploys to.
		for _, a := range targets {
			for _, sp := range s.servicePrefixes {
				if strings.Contains(sp, account) {
					m = append(m, awsevents.Match_Prefix(tok(strings.ReplaceAll(sp, account, a))))
				}
			}
		}
		deployment.Resources = awsevents.Match_AnyOf(m...)
	}
	if len(targets) > 0 {
		// Forwarded events keep their account: name every account whose deployments pinroll
		// verifies, so that nothing else the bus accepts (a registry account's forwarding) gets in.
		deployment.Account = toks(append([]string{account}, targets...))
		p.BusPolicy = busPolicy(c, targets)
	}
	p.DeploymentRule = awsevents.NewRule(c, jsii.String("DeploymentRule"), &awsevents.RuleProps{
		Description:  jsii.String("pinroll: ECS deployment finished in a cluster in scope (verify the running digest)"),
		EventPattern: deployment,
		Targets:      &[]awsevents.IRuleTarget{target()},
	})

	p.ReconcileRule = awsevents.NewRule(c, jsii.String("ReconcileRule"), &awsevents.RuleProps{
		Description: jsii.String("pinroll: reconcile pinned images with ECR (push events are best effort)"),
		Schedule:    awsevents.Schedule_Rate(props.reconcileRate()),
		Enabled:     jsii.Bool(!props.DisableReconcile),
		Targets:     &[]awsevents.IRuleTarget{target()},
	})

	p.Alarms = alarms(c, p)
	if props.Chat != nil {
		chat(c, p, props)
	}
	p.Dashboard = newDashboard(c, p, props)
	suppress(p, s, props)
	return p
}

// newDeadLetterQueue: SSE-SQS (no key to manage, works with EventBridge and Lambda destinations),
// TLS only, 14 days (the SQS maximum) to read and redrive. It is a dead-letter queue, so Control
// Tower's CT.SQS.PR.1 asks for a RedriveAllowPolicy instead of a RedrivePolicy, and only allowAll or
// byQueue pass. byQueue must name the source queues, and these dead letters come from EventBridge
// and Lambda, not from a queue; allowAll only lets a queue of this same account (whose owner can
// already write here) name it as its dead-letter queue, and an unexpected message trips the alarm:
// noise at worst, never a lost or hidden message. Redriving out of it (StartMessageMoveTask to a
// chosen destination, or README "When an alarm fires") is unaffected either way.
func newDeadLetterQueue(c constructs.Construct, id string) awssqs.Queue {
	return awssqs.NewQueue(c, &id, &awssqs.QueueProps{
		Encryption:         awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:         jsii.Bool(true),
		RetentionPeriod:    awscdk.Duration_Days(jsii.Number(queueRetentionDays)),
		RedriveAllowPolicy: &awssqs.RedriveAllowPolicy{RedrivePermission: awssqs.RedrivePermission_ALLOW_ALL},
	})
}

// pushPattern: a successful push of a tagged image, optionally to the listed repositories.
// `exists` would also match "" (an untagged push), hence anything-but "" — which, like every
// operator but exists:false, never matches a missing field.
func pushPattern(repos []string) *awsevents.EventPattern {
	detail := map[string]any{
		"action-type": []string{"PUSH"},
		"result":      []string{"SUCCESS"},
		"image-tag":   []any{map[string]any{"anything-but": []string{""}}},
	}
	if f := repositoryFilter(repos); f != nil {
		detail["repository-name"] = f
	}
	return &awsevents.EventPattern{
		Source:     jsii.Strings(contract.SourceECR),
		DetailType: jsii.Strings(contract.DetailTypeECRImage),
		Detail:     &detail,
	}
}

// replicationPattern: a replica of a tagged image, with the push rule's repository filter. Every
// result is forwarded, not only SUCCESS: a failed replication leaves this region's services on the
// old image — the incident's silent failure — and the function reports it as skipped with ECR's
// result (its log line, EMF metrics, the topic) at the cost of one short invocation. Filtering on
// the failure values would also be fragile: ECR's documentation uses both FAILURE and FAILED.
func replicationPattern(repos []string) *awsevents.EventPattern {
	detail := map[string]any{
		"action-type": []string{"REPLICATE"},
		"image-tag":   []any{map[string]any{"anything-but": []string{""}}},
	}
	if f := repositoryFilter(repos); f != nil {
		detail["repository-name"] = f
	}
	return &awsevents.EventPattern{
		Source:     jsii.Strings(contract.SourceECR),
		DetailType: jsii.Strings(contract.DetailTypeReplication),
		Detail:     &detail,
	}
}

// busPolicy lets the target accounts put their ECS deployment events on this account's default bus.
// The principals are the accounts, not the forwarding roles: those are named by each target's stack,
// and a source starting with "aws." can only be put by AWS itself, so the events:source and
// events:detail-type conditions leave an account nothing to send but its real, rule-forwarded ECS
// deployment state changes.
func busPolicy(c constructs.Construct, accounts []string) awsevents.CfnEventBusPolicy {
	var principals []*string
	for _, a := range accounts {
		principals = append(principals, tok(arn("iam", a, "root")))
	}
	sid := awscdk.Names_UniqueResourceName(c, &awscdk.UniqueResourceNameOptions{MaxLength: jsii.Number(64)})
	return awsevents.NewCfnEventBusPolicy(c, jsii.String("BusPolicy"), &awsevents.CfnEventBusPolicyProps{
		EventBusName: jsii.String("default"),
		StatementId:  sid,
		Statement: map[string]any{
			"Sid":       sid,
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": principals},
			"Action":    "events:PutEvents",
			"Resource":  tok(arn("events", account, "event-bus/default")),
			"Condition": map[string]any{"StringEquals": map[string]any{
				"events:source":      contract.SourceECS,
				"events:detail-type": contract.DetailTypeDeployment,
			}},
		},
	})
}

// endpoints creates the interface endpoints of the AWS APIs the function calls, in the function's
// subnets, behind a security group that takes HTTPS from the function's security groups only, and
// with the index table DynamoDB's gateway endpoint on the subnets' route tables. The
// function's logs and EMF metrics need none: Lambda delivers them itself.
func endpoints(c constructs.Construct, props *Props, functionSGs *[]*string) []awsec2.CfnVPCEndpoint {
	// sqs: the function sends its continuations; the event source mapping polls from Lambda's
	// side, outside the VPC, and needs no endpoint.
	services := []string{"ecs", "ecr.api", "sqs"}
	if len(props.TargetRoles) > 0 {
		services = append(services, "sts")
	}
	if props.notify() {
		services = append(services, "sns")
	}
	if props.ParameterPrefix != "" {
		services = append(services, "ssm")
	}
	var ingress []any
	for _, sg := range *functionSGs {
		ingress = append(ingress, &awsec2.CfnSecurityGroup_IngressProperty{
			Description: jsii.String("HTTPS from pinroll's function"),
			IpProtocol:  jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
			SourceSecurityGroupId: sg,
		})
	}
	sg := awsec2.NewCfnSecurityGroup(c, jsii.String("EndpointSecurityGroup"), &awsec2.CfnSecurityGroupProps{
		GroupDescription:     jsii.String("pinroll: the AWS API endpoints, HTTPS from the function only"),
		VpcId:                jsii.String(props.Vpc.VpcID),
		SecurityGroupIngress: ingress,
		// No egress: an interface endpoint answers, it never connects out.
		SecurityGroupEgress: []any{&awsec2.CfnSecurityGroup_EgressProperty{
			Description: jsii.String("no outbound traffic"), IpProtocol: jsii.String("icmp"),
			FromPort: jsii.Number(252), ToPort: jsii.Number(86), CidrIp: jsii.String("255.255.255.255/32"),
		}},
	})
	var subnets []any
	for _, id := range props.Vpc.SubnetIDs {
		subnets = append(subnets, id)
	}
	var out []awsec2.CfnVPCEndpoint
	if !props.NoIndexTable {
		// DynamoDB's gateway endpoint: free, and routed through the subnets' route tables.
		var rtbs []any
		for _, id := range props.Vpc.RouteTableIDs {
			rtbs = append(rtbs, id)
		}
		out = append(out, awsec2.NewCfnVPCEndpoint(c, jsii.String("EndpointDynamodb"), &awsec2.CfnVPCEndpointProps{
			VpcId:           jsii.String(props.Vpc.VpcID),
			VpcEndpointType: jsii.String("Gateway"),
			ServiceName:     tok("com.amazonaws." + region + ".dynamodb"),
			RouteTableIds:   &rtbs,
		}))
	}
	for _, svc := range services {
		id := "Endpoint" + strings.ReplaceAll(strings.ToUpper(svc[:1])+svc[1:], ".", "")
		out = append(out, awsec2.NewCfnVPCEndpoint(c, &id, &awsec2.CfnVPCEndpointProps{
			VpcId:             jsii.String(props.Vpc.VpcID),
			VpcEndpointType:   jsii.String("Interface"),
			ServiceName:       tok("com.amazonaws." + region + "." + svc),
			SubnetIds:         &subnets,
			SecurityGroupIds:  &[]any{sg.AttrGroupId()},
			PrivateDnsEnabled: jsii.Bool(true),
		}))
	}
	return out
}

// denyGrantsButForAWS is the key-policy statement Control Tower's CT.KMS.PR.3 asks for: grants on
// the key only for AWS services acting on AWS resources.
func denyGrantsButForAWS() awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DenyGrantsButForAWSServices"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:CreateGrant"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"BoolIfExists": map[string]any{
			"kms:GrantIsForAWSResource": "false",
			"aws:PrincipalIsAWSService": "false",
		}},
	})
}

// newLogKey: the function's log group is encrypted with a customer-managed key with rotation
// (CT.CLOUDWATCH.PR.3). CloudWatch Logs uses it for log groups of this account and region only. The
// index table uses it too, through DynamoDB: the function's role may use it only via DynamoDB
// (kms:ViaService), under the key policy's delegation to the account's IAM policies.
func newLogKey(c constructs.Construct) awskms.Key {
	key := awskms.NewKey(c, jsii.String("LogKey"), &awskms.KeyProps{
		Description:       jsii.String("pinroll: encrypts the function's log group and the index table"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchLogsEncrypt"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(tok("logs."+region+".amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnLike": map[string]any{
			"kms:EncryptionContext:aws:logs:arn": tok(arn("logs", account, "log-group:*")),
		}},
	}), nil)
	key.AddToResourcePolicy(denyGrantsButForAWS(), nil)
	return key
}

// newIndexTable is the index of task-definition revisions (README "The index"): key `arn` (S),
// on demand, point-in-time recovery (CT.DYNAMODB.PR.1), encrypted with KMS (CT.DYNAMODB.PR.2):
// with the stack's customer-managed key when it has one (the log key: one key, one rotation, one
// dollar a month, for everything pinroll keeps at rest), else with DynamoDB's AWS-managed key.
//
// Retained when the stack is deleted or the table replaced, although it is only a cache: its items
// never go stale (a revision is immutable), so a retained table is as good as new to the next stack
// that names it, while an empty one costs every cold start of a large fleet a DescribeTaskDefinition
// per revision against the account's shared bucket (README "Performance") until it fills again.
// Delete it by hand when pinroll goes for good (README "Removing").
func newIndexTable(c constructs.Construct, key awskms.Key) awsdynamodb.Table {
	props := &awsdynamodb.TableProps{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String("arn"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		Encryption:                       awsdynamodb.TableEncryption_AWS_MANAGED,
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
		// Claims carry a ttl a day after their lease, so DynamoDB removes the crashed ones.
		TimeToLiveAttribute: jsii.String("ttl"),
	}
	if key != nil {
		props.Encryption, props.EncryptionKey = awsdynamodb.TableEncryption_CUSTOMER_MANAGED, key
	}
	return awsdynamodb.NewTable(c, jsii.String("IndexTable"), props)
}

// newTopic: encrypted with a customer-managed key, because CloudWatch alarms cannot publish to a
// topic encrypted with the AWS-managed alias/aws/sns key.
func newTopic(c constructs.Construct, props *Props) awssns.Topic {
	key := awskms.NewKey(c, jsii.String("TopicKey"), &awskms.KeyProps{
		Description:       jsii.String("pinroll: encrypts the notification topic"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(denyGrantsButForAWS(), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
	topic := awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{
		DisplayName: jsii.String("pinroll"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if props.NotificationEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.NotificationEmail), nil))
	}
	return topic
}

// The function's EMF metrics the alarms read (lambda/internal/metrics: namespace "pinroll",
// dimension sets [Outcome] and []).
const (
	MetricNamespace      = "pinroll"
	MetricServicesFailed = "ServicesFailed"
)

func alarms(c constructs.Construct, p *Pinroll) []awscloudwatch.Alarm {
	period := awscdk.Duration_Minutes(jsii.Number(5))
	var out []awscloudwatch.Alarm
	// Each alarm fires at threshold or above, for periods periods in a row.
	addAt := func(id, desc string, m awscloudwatch.IMetric, threshold, periods float64) {
		a := awscloudwatch.NewAlarm(c, &id, &awscloudwatch.AlarmProps{
			AlarmDescription:   &desc,
			Metric:             m,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(periods),
			DatapointsToAlarm:  jsii.Number(periods),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		if p.Topic != nil {
			a.AddAlarmAction(awscloudwatchactions.NewSnsAction(p.Topic))
		}
		out = append(out, a)
	}
	// Most alarms fire on the first one: an error, a dead letter, a failed service.
	add := func(id, desc string, m awscloudwatch.IMetric, periods float64) { addAt(id, desc, m, 1, periods) }
	sum := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}
	max := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Maximum")}
	add("FunctionErrors", "pinroll: the function failed on an event (Lambda retries it twice, then it lands in FailedInvocations)",
		p.Function.MetricErrors(sum), 1)
	// Reserved concurrency is small by design (3 by default), so a burst of pushes (multi-arch
	// images) beside running continuations is throttled and queued; only throttling that lasts 15
	// minutes means the queue is not draining.
	add("FunctionThrottles", "pinroll: the function has been throttled for 15 minutes (events are queueing)",
		p.Function.MetricThrottles(sum), 3)
	add("DeadLetterQueueNotEmpty", "pinroll: EventBridge could not deliver an event to the function; read and redrive the dead-letter queue",
		p.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(max), 1)
	add("FailedInvocationsNotEmpty", "pinroll: an event failed after all retries; read and redrive the failed-invocations queue",
		p.FailedInvocations.MetricApproximateNumberOfMessagesVisible(max), 1)
	add("ContinueDeadLetterQueueNotEmpty", "pinroll: a continuation (the rest of an event's rollout) failed "+
		fmt.Sprint(continueMaxReceives)+" times and stopped; read why in the logs, fix, and redrive it with aws sqs start-message-move-task (README \"When an alarm fires\")",
		p.ContinueDeadLetterQueue.MetricApproximateNumberOfMessagesVisible(max), 1)
	// A healthy chain hands each continuation on within seconds; one that has waited two
	// visibility timeouts has failed twice: the rollout is stuck long before the dead-letter queue.
	stuck := *continueVisibility(p.Function.Timeout()).ToSeconds(nil) * continueStuckVisibilities
	addAt("ContinuationsStuck", fmt.Sprintf("pinroll: the oldest continuation has waited %s (twice the queue's visibility timeout): "+
		"a rollout is stuck, failing or throttled; read the function's logs for its event id", time.Duration(stuck)*time.Second),
		p.ContinueQueue.MetricApproximateAgeOfOldestMessage(max), stuck, 1)
	// A service that failed permanently (an invalid request no retry fixes) is reported, not
	// retried: the event succeeds, so neither Errors nor the queues see it. The function emits the
	// EMF metric with the Outcome dimension and without dimensions: the latter counts every outcome.
	add("ServicesFailed", "pinroll: a service could not be deployed and no retry will fix it (see the report's failed list)",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(MetricNamespace), MetricName: jsii.String(MetricServicesFailed),
			Period: period, Statistic: jsii.String("Sum"),
		}), 1)
	// A digest a service pins is gone from ECR (a lifecycle rule expired or archived it): nothing
	// fails yet, but the service's next task start, or a rollback, will. Same shape as ServicesFailed.
	add("MissingImages", "pinroll: a service pins a digest ECR no longer serves (expired or archived): its next task start or rollback fails; see the report's missing_images",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(MetricNamespace), MetricName: jsii.String(MetricMissingImages),
			Period: period, Statistic: jsii.String("Sum"),
		}), 1)
	return out
}

// statements is the function's whole permission set, each statement as narrow as the action allows
// (Service Authorization Reference). Sids keep CDK from merging them and name them in reviews.
func statements(s scope, p *Pinroll, props *Props) []awsiam.PolicyStatement {
	out := []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("WriteOwnLogs"),
			Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources: &[]*string{p.LogGroup.LogGroupArn()},
		}),
		st("DescribeImages", []string{"ecr:DescribeImages"}, s.repositories, nil),
	}
	out = append(out, ecsStatements(s)...)
	out = append(out, continueStatements(p.ContinueQueue)...)
	if s.parameters != "" {
		out = append(out, st("WritePinnedImageParameters", []string{"ssm:GetParameter", "ssm:PutParameter"}, []string{s.parameters}, nil))
	}
	if len(props.TargetRoles) > 0 {
		// Exactly the target roles: no pattern, so a new account is a reviewed change of this stack.
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeTargetRoles"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: jsii.Strings(props.TargetRoles...),
		}))
	}
	if props.Vpc != nil {
		// What Lambda needs of the execution role to attach the function to the subnets (the
		// AWSLambdaVPCAccessExecutionRole set, inline); none of it is scoped by Lambda to one function.
		out = append(out, st("ManageVpcNetworkInterfaces", []string{"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
			"ec2:DescribeSubnets", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"},
			[]string{"*"}, nil))
	}
	if p.IndexTable != nil {
		// Exactly the calls of lambda/internal/index, on the table only: the cache's two batch
		// calls, and the claims' conditional writes that keep concurrent invocations from
		// registering or deploying one change twice (README "Reliability").
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("ReadWriteIndexTable"),
			Actions: jsii.Strings("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
				"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
			Resources: &[]*string{p.IndexTable.TableArn()},
		}))
		if p.LogKey != nil {
			// What DynamoDB asks of a caller of a table encrypted with a customer-managed key, and
			// only through DynamoDB in this region: the role cannot decrypt the logs with it.
			out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("EncryptIndexTable"),
				Actions:   jsii.Strings("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
				Resources: &[]*string{p.LogKey.KeyArn()},
				Conditions: &map[string]any{"StringEquals": map[string]any{
					"kms:ViaService": tok("dynamodb." + region + ".amazonaws.com"),
				}},
			}))
		}
	}
	if props.notify() {
		out = append(out,
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("PublishReports"),
				Actions:   jsii.Strings("sns:Publish"),
				Resources: &[]*string{p.Topic.TopicArn()},
			}),
			// Publishing to an encrypted topic, as documented for SNS server-side encryption.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("EncryptReports"),
				Actions:   jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
				Resources: &[]*string{p.Topic.MasterKey().KeyArn()},
			}),
		)
	}
	return out
}

// st is one statement over ARN templates, with an optional condition.
func st(sid string, actions, resources []string, cond map[string]any) awsiam.PolicyStatement {
	props := &awsiam.PolicyStatementProps{
		Sid:       jsii.String(sid),
		Actions:   jsii.Strings(actions...),
		Resources: toks(resources),
	}
	if cond != nil {
		props.Conditions = &cond
	}
	return awsiam.NewPolicyStatement(props)
}

// ecsStatements are the ECS and PassRole permissions of a deploy in one account, scoped to s: the
// hub's function holds them for its own account, each target role for its account.
func ecsStatements(s scope) []awsiam.PolicyStatement {
	return []awsiam.PolicyStatement{
		// Neither action supports a resource type or condition key.
		st("ListClustersDescribeTaskDefinitions", []string{"ecs:ListClusters", "ecs:DescribeTaskDefinition"}, []string{"*"}, nil),
		// Both support only "*" as resource but honour the ecs:cluster condition key.
		st("ListServicesAndTasksInScope", []string{"ecs:ListServices", "ecs:ListTasks"}, []string{"*"},
			map[string]any{"ArnLike": map[string]any{"ecs:cluster": toks(s.clusters)}}),
		st("DescribeServicesInScope", []string{"ecs:DescribeServices"}, s.services, nil),
		st("DescribeTasksInScope", []string{"ecs:DescribeTasks"}, s.tasks, nil),
		// RegisterTaskDefinition supports only "*".
		st("RegisterTaskDefinition", []string{"ecs:RegisterTaskDefinition"}, []string{"*"}, nil),
		// Tags on the new revision are applied by RegisterTaskDefinition and only allowed there.
		st("TagTaskDefinitionOnRegister", []string{"ecs:TagResource"}, []string{arn("ecs", account, "task-definition/*")},
			map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}}),
		st("PassTaskRolesToEcsTasks", []string{"iam:PassRole"}, s.roles,
			map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
		st("UpdateServicesInScope", []string{"ecs:UpdateService"}, s.services, nil),
		// pinroll:paused is set and removed on the services (pause / resume).
		st("PauseResumeServicesInScope", []string{"ecs:TagResource", "ecs:UntagResource"}, s.services, nil),
	}
}

// suppress records, next to the resources they concern, the cdk-nag findings that are deliberate.
func suppress(p *Pinroll, s scope, props *Props) {
	list := ecsSuppressions(s)
	why := func(reason string, resources ...string) {
		for _, r := range resources {
			list = append(list, &cdknag.NagPackSuppression{
				Id: jsii.String("AwsSolutions-IAM5"), Reason: jsii.String(reason), AppliesTo: &[]any{"Resource::" + nagForm(r)},
			})
		}
	}
	why("Repositories in scope of the registry accounts (every repository unless Repositories is set); "+
		"read-only, the function checks that the pushed tag still points at the digest.", s.repositories...)
	if s.parameters != "" {
		why("One parameter per repository and tag under the configured prefix only.", s.parameters)
	}
	if props.Vpc != nil {
		why("The network-interface actions Lambda needs to attach a function to a VPC (the AWSLambdaVPCAccessExecutionRole "+
			"set); the interfaces are created by Lambda with ids unknown at deploy time.", "*")
	}
	if props.notify() {
		list = append(list, &cdknag.NagPackSuppression{
			Id:        jsii.String("AwsSolutions-IAM5"),
			Reason:    jsii.String("kms:GenerateDataKey* on the topic's own key is what SNS documents for publishers to an encrypted topic."),
			AppliesTo: &[]any{"Action::kms:GenerateDataKey*"},
		})
	}
	cdknag.NagSuppressions_AddResourceSuppressions(p.Role, &list, jsii.Bool(true))

	for _, q := range []awssqs.Queue{p.DeadLetterQueue, p.FailedInvocations, p.ContinueDeadLetterQueue} {
		cdknag.NagSuppressions_AddResourceSuppressions(q, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-SQS3"),
			Reason: jsii.String("This queue is itself a dead-letter destination (EventBridge target DLQ / Lambda on-failure " +
				"destination / the continuation queue's dead-letter queue); it is alarmed and redriven by an operator, a second-level DLQ would add nothing."),
		}}, jsii.Bool(false))
	}
}

// ecsSuppressions explain the wildcards of ecsStatements(s) to cdk-nag.
func ecsSuppressions(s scope) []*cdknag.NagPackSuppression {
	type finding struct{ what, why string }
	var wildcards []finding
	add := func(why string, resources ...string) {
		for _, r := range resources {
			wildcards = append(wildcards, finding{"Resource::" + nagForm(r), why})
		}
	}
	add("ecs:ListClusters, ecs:DescribeTaskDefinition and ecs:RegisterTaskDefinition support only Resource \"*\" "+
		"(Service Authorization Reference); ecs:ListServices/ListTasks also support only \"*\" and are restricted "+
		"by the ecs:cluster condition to the clusters in scope.", "*")
	add("Services of the clusters in scope: the service names are not known at deploy time and pinroll must "+
		"reach every service that uses a pushed repository (opt-out/opt-in is by the pinroll:enabled tag).", s.services...)
	add("Tasks of the clusters in scope: task ids are generated by ECS; read-only (verification of the running digest).", s.tasks...)
	add("New task definition revisions get their ARN at registration; TagResource is only allowed when the "+
		"call is RegisterTaskDefinition (ecs:CreateAction condition).", arn("ecs", account, "task-definition/*"))
	add("Task and execution roles are whatever the task definitions already reference; PassRole is limited "+
		"to ecs-tasks.amazonaws.com by the iam:PassedToService condition (narrow with PassRoles).", s.roles...)
	var list []*cdknag.NagPackSuppression
	for _, f := range wildcards {
		list = append(list, &cdknag.NagPackSuppression{
			Id:        jsii.String("AwsSolutions-IAM5"),
			Reason:    jsii.String(f.why),
			AppliesTo: &[]any{f.what},
		})
	}
	return list
}
