package pinroll

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
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
	PushRule          awsevents.Rule
	DeploymentRule    awsevents.Rule
	ReconcileRule     awsevents.Rule
	DeadLetterQueue   awssqs.Queue // events EventBridge could not deliver to the function
	FailedInvocations awssqs.Queue // events the function failed on after its retries
	Topic             awssns.Topic // nil unless Props.Notify or Props.NotificationEmail
	Alarms            []awscloudwatch.Alarm
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

	// Queues: SSE-SQS (no key to manage, works with EventBridge and Lambda destinations), TLS only,
	// 14 days (the SQS maximum) to read and redrive.
	newQueue := func(id string) awssqs.Queue {
		return awssqs.NewQueue(c, &id, &awssqs.QueueProps{
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL:      jsii.Bool(true),
			RetentionPeriod: awscdk.Duration_Days(jsii.Number(queueRetentionDays)),
		})
	}
	p.DeadLetterQueue = newQueue("DeadLetterQueue")
	p.FailedInvocations = newQueue("FailedInvocations")

	if props.notify() {
		p.Topic = newTopic(c, props)
	}

	p.LogGroup = awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention: props.logRetention(),
	})
	p.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("pinroll: pins ECS task definitions to ECR image digests"),
	})
	for _, st := range statements(s, p) {
		p.Role.AddToPrincipalPolicy(st)
	}

	env := map[string]*string{}
	set := func(k, v string) {
		if v != "" {
			env[k] = jsii.String(v)
		}
	}
	set("PINROLL_CLUSTERS", strings.Join(props.Clusters, ","))
	set("PINROLL_REGISTRY_ACCOUNTS", strings.Join(props.RegistryAccounts, ","))
	set("PINROLL_PARAMETER_PREFIX", props.ParameterPrefix)
	if props.DryRun {
		set("PINROLL_DRY_RUN", "true")
	}
	if props.RequireOptIn {
		set("PINROLL_REQUIRE_OPT_IN", "true")
	}
	if p.Topic != nil {
		env["PINROLL_NOTIFY_TOPIC_ARN"] = p.Topic.TopicArn()
	}

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

	deployment := &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecs"),
		DetailType: jsii.Strings("ECS Deployment State Change"),
		Detail: &map[string]any{
			// IN_PROGRESS says nothing to verify yet; FAILED covers circuit-breaker rollbacks.
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
	suppress(p, s)
	return p
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
		Source:     jsii.Strings("aws.ecr"),
		DetailType: jsii.Strings("ECR Image Action"),
		Detail:     &detail,
	}
}

// newTopic: encrypted with a customer-managed key, because CloudWatch alarms cannot publish to a
// topic encrypted with the AWS-managed alias/aws/sns key.
func newTopic(c constructs.Construct, props *Props) awssns.Topic {
	key := awskms.NewKey(c, jsii.String("TopicKey"), &awskms.KeyProps{
		Description:       jsii.String("pinroll: encrypts the notification topic"),
		EnableKeyRotation: jsii.Bool(true),
	})
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

func alarms(c constructs.Construct, p *Pinroll) []awscloudwatch.Alarm {
	period := awscdk.Duration_Minutes(jsii.Number(5))
	var out []awscloudwatch.Alarm
	add := func(id, desc string, m awscloudwatch.IMetric, periods float64) {
		a := awscloudwatch.NewAlarm(c, &id, &awscloudwatch.AlarmProps{
			AlarmDescription:   &desc,
			Metric:             m,
			Threshold:          jsii.Number(1),
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
	sum := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}
	max := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Maximum")}
	add("FunctionErrors", "pinroll: the function failed on an event (Lambda retries it twice, then it lands in FailedInvocations)",
		p.Function.MetricErrors(sum), 1)
	// With reserved concurrency 1, a burst of pushes (multi-arch images) is throttled and queued by
	// design; only throttling that lasts 15 minutes means the queue is not draining.
	add("FunctionThrottles", "pinroll: the function has been throttled for 15 minutes (events are queueing)",
		p.Function.MetricThrottles(sum), 3)
	add("DeadLetterQueueNotEmpty", "pinroll: EventBridge could not deliver an event to the function; read and redrive the dead-letter queue",
		p.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(max), 1)
	add("FailedInvocationsNotEmpty", "pinroll: an event failed after all retries; read and redrive the failed-invocations queue",
		p.FailedInvocations.MetricApproximateNumberOfMessagesVisible(max), 1)
	return out
}

// statements is the function's whole permission set, each statement as narrow as the action allows
// (Service Authorization Reference). Sids keep CDK from merging them and name them in reviews.
func statements(s scope, p *Pinroll) []awsiam.PolicyStatement {
	st := func(sid string, actions, resources []string, cond map[string]any) awsiam.PolicyStatement {
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
	out := []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("WriteOwnLogs"),
			Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources: &[]*string{p.LogGroup.LogGroupArn()},
		}),
		// Neither action supports a resource type or condition key.
		st("ListClustersDescribeTaskDefinitions", []string{"ecs:ListClusters", "ecs:DescribeTaskDefinition"}, []string{"*"}, nil),
		// Both support only "*" as resource but honour the ecs:cluster condition key.
		st("ListServicesAndTasksInScope", []string{"ecs:ListServices", "ecs:ListTasks"}, []string{"*"},
			map[string]any{"ArnLike": map[string]any{"ecs:cluster": toks(s.clusters)}}),
		st("DescribeServicesInScope", []string{"ecs:DescribeServices"}, s.services, nil),
		st("DescribeTasksInScope", []string{"ecs:DescribeTasks"}, s.tasks, nil),
		st("DescribeImages", []string{"ecr:DescribeImages"}, s.repositories, nil),
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
	if s.parameters != "" {
		out = append(out, st("WritePinnedImageParameters", []string{"ssm:GetParameter", "ssm:PutParameter"}, []string{s.parameters}, nil))
	}
	if p.Topic != nil {
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

// suppress records, next to the resources they concern, the cdk-nag findings that are deliberate.
func suppress(p *Pinroll, s scope) {
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
	add("Repositories in scope of the registry accounts (every repository unless Repositories is set); "+
		"read-only, the function checks that the pushed tag still points at the digest.", s.repositories...)
	add("New task definition revisions get their ARN at registration; TagResource is only allowed when the "+
		"call is RegisterTaskDefinition (ecs:CreateAction condition).", arn("ecs", account, "task-definition/*"))
	add("Task and execution roles are whatever the task definitions already reference; PassRole is limited "+
		"to ecs-tasks.amazonaws.com by the iam:PassedToService condition (narrow with PassRoles).", s.roles...)
	if s.parameters != "" {
		add("One parameter per repository and tag under the configured prefix only.", s.parameters)
	}
	var list []*cdknag.NagPackSuppression
	for _, f := range wildcards {
		list = append(list, &cdknag.NagPackSuppression{
			Id:        jsii.String("AwsSolutions-IAM5"),
			Reason:    jsii.String(f.why),
			AppliesTo: &[]any{f.what},
		})
	}
	if p.Topic != nil {
		list = append(list, &cdknag.NagPackSuppression{
			Id:        jsii.String("AwsSolutions-IAM5"),
			Reason:    jsii.String("kms:GenerateDataKey* on the topic's own key is what SNS documents for publishers to an encrypted topic."),
			AppliesTo: &[]any{"Action::kms:GenerateDataKey*"},
		})
	}
	cdknag.NagSuppressions_AddResourceSuppressions(p.Role, &list, jsii.Bool(true))

	for _, q := range []awssqs.Queue{p.DeadLetterQueue, p.FailedInvocations} {
		cdknag.NagSuppressions_AddResourceSuppressions(q, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-SQS3"),
			Reason: jsii.String("This queue is itself a dead-letter destination (EventBridge target DLQ / Lambda on-failure " +
				"destination); it is alarmed and redriven by an operator, a second-level DLQ would add nothing."),
		}}, jsii.Bool(false))
	}
}
