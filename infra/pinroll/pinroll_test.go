package pinroll

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

const (
	P = "${AWS::Partition}"
	R = "${AWS::Region}"
	A = "${AWS::AccountId}"
)

// statement is an IAM statement in a comparable form: lists sorted, intrinsics rendered.
type statement struct {
	Sid       string
	Action    []string
	Resource  []string
	Condition map[string]map[string][]string
}

// roleStatements collects every statement granted to the function's (or target's) role.
func roleStatements(t *testing.T, s *synthesized) []statement {
	t.Helper()
	return roleStatementsOf(t, s, "Role")
}

// roleStatementsOf collects every statement granted to the role at path, wherever CDK put it:
// inline policies of the role and every AWS::IAM::Policy attached to it. Managed policies fail.
func roleStatementsOf(t *testing.T, s *synthesized, path string) []statement {
	t.Helper()
	roleID := s.id(path)
	role := s.resources("AWS::IAM::Role")[roleID]["Properties"].(map[string]any)
	if m, ok := role["ManagedPolicyArns"]; ok {
		t.Errorf("role has managed policies %v; want none", m)
	}
	var docs []any
	for _, p := range asList(role["Policies"]) {
		docs = append(docs, p.(map[string]any)["PolicyDocument"])
	}
	for id, p := range s.resources("AWS::IAM::Policy") {
		props := p["Properties"].(map[string]any)
		for _, r := range strs(props["Roles"]) {
			if r == "${"+roleID+"}" {
				docs = append(docs, props["PolicyDocument"])
				continue
			}
			t.Logf("policy %s is attached to %s, not to %s", id, r, path)
		}
	}
	var out []statement
	for _, d := range docs {
		for _, st := range asList(d.(map[string]any)["Statement"]) {
			st := st.(map[string]any)
			if st["Effect"] != "Allow" {
				t.Errorf("statement %v: Effect %v", st["Sid"], st["Effect"])
			}
			if _, ok := st["NotAction"]; ok {
				t.Errorf("statement %v uses NotAction", st["Sid"])
			}
			if _, ok := st["NotResource"]; ok {
				t.Errorf("statement %v uses NotResource", st["Sid"])
			}
			got := statement{Action: strs(st["Action"]), Resource: strs(st["Resource"])}
			got.Sid, _ = st["Sid"].(string)
			if c, ok := st["Condition"].(map[string]any); ok {
				got.Condition = map[string]map[string][]string{}
				for op, kv := range c {
					got.Condition[op] = map[string][]string{}
					for k, v := range kv.(map[string]any) {
						got.Condition[op][k] = strs(v)
					}
				}
			}
			out = append(out, got)
		}
	}
	sortStatements(out)
	return out
}

func sortStatements(st []statement) {
	sort.Slice(st, func(i, j int) bool {
		if st[i].Sid != st[j].Sid {
			return st[i].Sid < st[j].Sid
		}
		return strings.Join(st[i].Action, ",") < strings.Join(st[j].Action, ",")
	})
}

func asList(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case nil:
		return nil
	default:
		return []any{v}
	}
}

func arnOf(service, acct, resource string) string {
	if service == "iam" {
		return "arn:" + P + ":iam::" + acct + ":" + resource
	}
	return "arn:" + P + ":" + service + ":" + R + ":" + acct + ":" + resource
}

// GIVEN every prop set, WHEN synthesized, THEN the role holds exactly these statements.
func TestIAMStatementsFull(t *testing.T) {
	full, _ := fixtures(t)
	shared := "arn:aws:ecs:eu-west-1:111122223333:"
	services := []string{arnOf("ecs", A, "service/prod/*"), shared + "service/shared/*"}
	sort.Strings(services)
	want := []statement{
		{Sid: "WriteOwnLogs", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			Resource: []string{"${" + full.id("Logs") + ".Arn}"}},
		{Sid: "ListClustersDescribeTaskDefinitions", Action: []string{"ecs:DescribeTaskDefinition", "ecs:ListClusters"},
			Resource: []string{"*"}},
		{Sid: "ListServicesAndTasksInScope", Action: []string{"ecs:ListServices", "ecs:ListTasks"}, Resource: []string{"*"},
			Condition: map[string]map[string][]string{"ArnLike": {"ecs:cluster": sorted(arnOf("ecs", A, "cluster/prod"), shared+"cluster/shared")}}},
		{Sid: "DescribeServicesInScope", Action: []string{"ecs:DescribeServices"}, Resource: services},
		{Sid: "DescribeTasksInScope", Action: []string{"ecs:DescribeTasks"},
			Resource: sorted(arnOf("ecs", A, "task/prod/*"), shared+"task/shared/*")},
		{Sid: "DescribeImages", Action: []string{"ecr:DescribeImages"}, Resource: sorted(
			arnOf("ecr", "111122223333", "repository/app"), arnOf("ecr", "111122223333", "repository/team-a/*"),
			arnOf("ecr", "444455556666", "repository/app"), arnOf("ecr", "444455556666", "repository/team-a/*"))},
		{Sid: "RegisterTaskDefinition", Action: []string{"ecs:RegisterTaskDefinition"}, Resource: []string{"*"}},
		{Sid: "TagTaskDefinitionOnRegister", Action: []string{"ecs:TagResource"}, Resource: []string{arnOf("ecs", A, "task-definition/*")},
			Condition: map[string]map[string][]string{"StringEquals": {"ecs:CreateAction": {"RegisterTaskDefinition"}}}},
		{Sid: "PassTaskRolesToEcsTasks", Action: []string{"iam:PassRole"},
			Resource:  sorted(arnOf("iam", A, "role/app-task-*"), "arn:aws:iam::111122223333:role/shared-exec"),
			Condition: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}},
		{Sid: "UpdateServicesInScope", Action: []string{"ecs:UpdateService"}, Resource: services},
		{Sid: "PauseResumeServicesInScope", Action: []string{"ecs:TagResource", "ecs:UntagResource"}, Resource: services},
		{Sid: "WritePinnedImageParameters", Action: []string{"ssm:GetParameter", "ssm:PutParameter"}, Resource: []string{arnOf("ssm", A, "parameter/pinroll/*")}},
		{Sid: "PublishReports", Action: []string{"sns:Publish"}, Resource: []string{"${" + full.id("Topic") + "}"}},
		{Sid: "EncryptReports", Action: []string{"kms:Decrypt", "kms:GenerateDataKey*"}, Resource: []string{"${" + full.id("TopicKey") + ".Arn}"}},
		{Sid: "AssumeTargetRoles", Action: []string{"sts:AssumeRole"}, Resource: sorted(
			"arn:aws:iam::777788889999:role/pinroll-target-eu-west-1", "arn:aws:iam::222233334444:role/ops/pinroll")},
		{Sid: "ManageVpcNetworkInterfaces", Action: sorted("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
			"ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"),
			Resource: []string{"*"}},
		// The index table: its two batch calls, and its key (the log key) only through DynamoDB.
		{Sid: "ReadWriteIndexTable", Action: []string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
			Resource: []string{"${" + full.id("IndexTable") + ".Arn}"}},
		{Sid: "EncryptIndexTable", Action: []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"},
			Resource:  []string{"${" + full.id("LogKey") + ".Arn}"},
			Condition: map[string]map[string][]string{"StringEquals": {"kms:ViaService": {"dynamodb." + R + ".amazonaws.com"}}}},
		// The continuation queue: the function sends, its event source mapping consumes; no kms:
		// (SSE-SQS), no GetQueueUrl (the URL is in the environment).
		{Sid: "SendContinuations", Action: []string{"sqs:SendMessage"}, Resource: []string{"${" + full.id("ContinueQueue") + ".Arn}"}},
		{Sid: "ConsumeContinuations", Action: []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
			Resource: []string{"${" + full.id("ContinueQueue") + ".Arn}"}},
		// Added by CDK for the on-failure destination.
		{Action: []string{"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"},
			Resource: []string{"${" + full.id("FailedInvocations") + ".Arn}"}},
	}
	sortStatements(want)
	if diff := cmp.Diff(want, roleStatements(t, full)); diff != "" {
		t.Errorf("IAM statements (-want +got):\n%s", diff)
	}
}

// GIVEN no props, THEN the same statements cover every cluster, repository and role of the
// account, still conditioned; no parameter or topic statements; the index table's two (on by
// default, encrypted with the log key).
func TestIAMStatementsMinimal(t *testing.T) {
	_, min := fixtures(t)
	services := []string{arnOf("ecs", A, "service/*")}
	want := []statement{
		{Sid: "WriteOwnLogs", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			Resource: []string{"${" + min.id("Logs") + ".Arn}"}},
		{Sid: "ListClustersDescribeTaskDefinitions", Action: []string{"ecs:DescribeTaskDefinition", "ecs:ListClusters"},
			Resource: []string{"*"}},
		{Sid: "ListServicesAndTasksInScope", Action: []string{"ecs:ListServices", "ecs:ListTasks"}, Resource: []string{"*"},
			Condition: map[string]map[string][]string{"ArnLike": {"ecs:cluster": {arnOf("ecs", A, "cluster/*")}}}},
		{Sid: "DescribeServicesInScope", Action: []string{"ecs:DescribeServices"}, Resource: services},
		{Sid: "DescribeTasksInScope", Action: []string{"ecs:DescribeTasks"}, Resource: []string{arnOf("ecs", A, "task/*")}},
		{Sid: "DescribeImages", Action: []string{"ecr:DescribeImages"}, Resource: []string{arnOf("ecr", A, "repository/*")}},
		{Sid: "RegisterTaskDefinition", Action: []string{"ecs:RegisterTaskDefinition"}, Resource: []string{"*"}},
		{Sid: "TagTaskDefinitionOnRegister", Action: []string{"ecs:TagResource"}, Resource: []string{arnOf("ecs", A, "task-definition/*")},
			Condition: map[string]map[string][]string{"StringEquals": {"ecs:CreateAction": {"RegisterTaskDefinition"}}}},
		{Sid: "PassTaskRolesToEcsTasks", Action: []string{"iam:PassRole"}, Resource: []string{arnOf("iam", A, "role/*")},
			Condition: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}},
		{Sid: "UpdateServicesInScope", Action: []string{"ecs:UpdateService"}, Resource: services},
		{Sid: "PauseResumeServicesInScope", Action: []string{"ecs:TagResource", "ecs:UntagResource"}, Resource: services},
		{Sid: "ReadWriteIndexTable", Action: []string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
			Resource: []string{"${" + min.id("IndexTable") + ".Arn}"}},
		{Sid: "EncryptIndexTable", Action: []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"},
			Resource:  []string{"${" + min.id("LogKey") + ".Arn}"},
			Condition: map[string]map[string][]string{"StringEquals": {"kms:ViaService": {"dynamodb." + R + ".amazonaws.com"}}}},
		{Sid: "SendContinuations", Action: []string{"sqs:SendMessage"}, Resource: []string{"${" + min.id("ContinueQueue") + ".Arn}"}},
		{Sid: "ConsumeContinuations", Action: []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
			Resource: []string{"${" + min.id("ContinueQueue") + ".Arn}"}},
		{Action: []string{"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"},
			Resource: []string{"${" + min.id("FailedInvocations") + ".Arn}"}},
	}
	sortStatements(want)
	if diff := cmp.Diff(want, roleStatements(t, min)); diff != "" {
		t.Errorf("IAM statements (-want +got):\n%s", diff)
	}
	// Belt and braces: nothing anywhere in the template grants "*" actions or *FullAccess.
	for _, s := range []*synthesized{min} {
		b, _ := json.Marshal(s.raw)
		for _, bad := range []string{`"Action":"*"`, `FullAccess`, `"Action":["*"`} {
			if strings.Contains(string(b), bad) {
				t.Errorf("template contains %s", bad)
			}
		}
	}
}

func sorted(s ...string) []string { sort.Strings(s); return s }

func withAccounts(pattern map[string]any, accounts ...string) map[string]any {
	var a []any
	for _, acct := range accounts {
		a = append(a, acct)
	}
	pattern["account"] = a
	return pattern
}

// GIVEN both stacks, THEN the function is configured as designed.
func TestFunction(t *testing.T) {
	full, min := fixtures(t)
	for name, tc := range map[string]struct {
		s       *synthesized
		env     map[string]any
		conc    float64
		days    float64
		timeout float64
	}{
		"full": {full, map[string]any{
			"PINROLL_CLUSTERS":           "prod,arn:aws:ecs:eu-west-1:111122223333:cluster/shared",
			"PINROLL_DRY_RUN":            "true",
			"PINROLL_REQUIRE_OPT_IN":     "true",
			"PINROLL_REGISTRY_ACCOUNTS":  "111122223333,444455556666",
			"PINROLL_NOTIFY_TOPIC_ARN":   "${" + full.id("Topic") + "}",
			"PINROLL_PARAMETER_PREFIX":   "/pinroll",
			"PINROLL_TARGET_ROLES":       "arn:aws:iam::777788889999:role/pinroll-target-eu-west-1,arn:aws:iam::222233334444:role/ops/pinroll",
			"PINROLL_INDEX_TABLE":        "${" + full.id("IndexTable") + "}",
			"PINROLL_CONTINUE_QUEUE_URL": "${" + full.id("ContinueQueue") + "}",
			"GOGC":                       "200",
		}, 2, 731, 600},
		// Reserved concurrency 3 by default: the continuation mapping's 2, and 1 for the pushes.
		"minimal": {min, map[string]any{"PINROLL_INDEX_TABLE": "${" + min.id("IndexTable") + "}",
			"PINROLL_CONTINUE_QUEUE_URL": "${" + min.id("ContinueQueue") + "}", "GOGC": "200"}, 3, 365, 300},
	} {
		t.Run(name, func(t *testing.T) {
			s := tc.s
			s.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
				"Runtime":                      "provided.al2023",
				"Architectures":                []string{"arm64"},
				"Handler":                      "bootstrap",
				"ReservedConcurrentExecutions": tc.conc,
				"Timeout":                      tc.timeout,
				"LoggingConfig": map[string]any{
					"LogFormat":           "JSON",
					"ApplicationLogLevel": "INFO",
					"SystemLogLevel":      "WARN",
					"LogGroup":            map[string]any{"Ref": s.id("Logs")},
				},
			})
			fn := s.props("Function")
			var env map[string]any
			if e, ok := fn["Environment"].(map[string]any); ok {
				env, _ = e["Variables"].(map[string]any)
			}
			if diff := cmp.Diff(tc.env, env); diff != "" {
				t.Errorf("environment (-want +got):\n%s", diff)
			}
			// A year by default (CT.CLOUDWATCH.PR.2), encrypted with the stack's own key (PR.3).
			s.template.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), map[string]any{
				"RetentionInDays": tc.days,
				"KmsKeyId":        map[string]any{"Fn::GetAtt": []string{s.id("LogKey"), "Arn"}},
			})
			s.template.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
				"FunctionName":             map[string]any{"Ref": s.id("Function")},
				"MaximumRetryAttempts":     2,
				"MaximumEventAgeInSeconds": 7200,
				"DestinationConfig": map[string]any{"OnFailure": map[string]any{
					"Destination": map[string]any{"Fn::GetAtt": []string{s.id("FailedInvocations"), "Arn"}},
				}},
			})
			for _, q := range []string{"DeadLetterQueue", "FailedInvocations"} {
				if diff := cmp.Diff(map[string]any{"MessageRetentionPeriod": 1209600.0, "SqsManagedSseEnabled": true,
					"RedriveAllowPolicy": map[string]any{"redrivePermission": "allowAll"}},
					s.props(q)); diff != "" {
					t.Errorf("queue %s (-want +got):\n%s", q, diff)
				}
			}
			// Every queue refuses plain-HTTP access.
			tlsOnly := map[string]bool{}
			for _, qp := range s.resources("AWS::SQS::QueuePolicy") {
				props := qp["Properties"].(map[string]any)
				for _, st := range asList(props["PolicyDocument"].(map[string]any)["Statement"]) {
					st := st.(map[string]any)
					if st["Effect"] == "Deny" && cmp.Equal(st["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}) {
						for _, q := range strs(props["Queues"]) {
							tlsOnly[q] = true
						}
					}
				}
			}
			if want := map[string]bool{"${" + s.id("DeadLetterQueue") + "}": true, "${" + s.id("FailedInvocations") + "}": true,
				"${" + s.id("ContinueQueue") + "}": true, "${" + s.id("ContinueDeadLetterQueue") + "}": true}; !cmp.Equal(want, tlsOnly) {
				t.Errorf("queues denying non-TLS access: %v, want %v", tlsOnly, want)
			}
		})
	}
}

// GIVEN both stacks, THEN each rule filters exactly as designed and delivers with retries and a DLQ.
func TestRules(t *testing.T) {
	full, min := fixtures(t)
	push := func(repos any) map[string]any {
		detail := map[string]any{
			"action-type": []any{"PUSH"},
			"result":      []any{"SUCCESS"},
			"image-tag":   []any{map[string]any{"anything-but": []any{""}}},
		}
		if repos != nil {
			detail["repository-name"] = repos
		}
		return map[string]any{"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Action"}, "detail": detail}
	}
	replication := func(repos any) map[string]any {
		detail := map[string]any{
			"action-type": []any{"REPLICATE"},
			"image-tag":   []any{map[string]any{"anything-but": []any{""}}},
		}
		if repos != nil {
			detail["repository-name"] = repos
		}
		return map[string]any{"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Replication Action"}, "detail": detail}
	}
	deployment := func(resources any) map[string]any {
		p := map[string]any{
			"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Deployment State Change"},
			"detail": map[string]any{"eventName": []any{"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"}},
		}
		if resources != nil {
			p["resources"] = resources
		}
		return p
	}
	cases := []struct {
		s        *synthesized
		rule     string
		pattern  map[string]any
		schedule string
		state    string
	}{
		{full, "PushRule", push([]any{"app", map[string]any{"prefix": "team-a/"}}), "", "ENABLED"},
		{full, "ReplicationRule", replication([]any{"app", map[string]any{"prefix": "team-a/"}}), "", "ENABLED"},
		// The cluster named "prod" is prod in the target accounts too; forwarded events keep their
		// account, and only the hub's and the targets' are taken.
		{full, "DeploymentRule", withAccounts(deployment([]any{
			map[string]any{"prefix": "arn:" + P + ":ecs:" + R + ":" + A + ":service/prod/"},
			map[string]any{"prefix": "arn:aws:ecs:eu-west-1:111122223333:service/shared/"},
			map[string]any{"prefix": "arn:" + P + ":ecs:" + R + ":777788889999:service/prod/"},
			map[string]any{"prefix": "arn:" + P + ":ecs:" + R + ":222233334444:service/prod/"},
		}), A, "777788889999", "222233334444"), "", "ENABLED"},
		{full, "ReconcileRule", nil, "rate(1 hour)", "DISABLED"},
		{min, "PushRule", push(nil), "", "ENABLED"},
		{min, "ReplicationRule", replication(nil), "", "ENABLED"},
		{min, "DeploymentRule", deployment(nil), "", "ENABLED"},
		{min, "ReconcileRule", nil, "rate(15 minutes)", "ENABLED"},
	}
	for _, tc := range cases {
		t.Run(*tc.s.stack.StackName()+"/"+tc.rule, func(t *testing.T) {
			p := tc.s.props(tc.rule)
			got, _ := p["EventPattern"].(map[string]any)
			if tc.pattern == nil {
				tc.pattern = map[string]any(nil)
			}
			if diff := cmp.Diff(tc.pattern, got); diff != "" {
				t.Errorf("event pattern (-want +got):\n%s", diff)
			}
			if s, _ := p["ScheduleExpression"].(string); s != tc.schedule {
				t.Errorf("schedule %q, want %q", s, tc.schedule)
			}
			if p["State"] != tc.state {
				t.Errorf("state %v, want %v", p["State"], tc.state)
			}
			want := []any{map[string]any{
				"Id":               "Target0",
				"Arn":              "${" + tc.s.id("Function") + ".Arn}",
				"RetryPolicy":      map[string]any{"MaximumRetryAttempts": 8.0, "MaximumEventAgeInSeconds": 7200.0},
				"DeadLetterConfig": map[string]any{"Arn": "${" + tc.s.id("DeadLetterQueue") + ".Arn}"},
			}}
			if diff := cmp.Diff(want, p["Targets"]); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
		})
	}
	// The style guide's way, for the rule that matters most.
	min.template.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
		"EventPattern": assertions.Match_ObjectLike(&map[string]any{
			"source":      []string{"aws.ecr"},
			"detail-type": []string{"ECR Image Action"},
		}),
	})
}

// GIVEN both stacks, THEN eight alarms exist, each with the topic as its action (CT.CLOUDWATCH.PR.1):
// the minimal stack creates a topic for them. The stuck-chain alarm's threshold follows the
// function's timeout (10 minutes in the full stack, the default 5 in the minimal one).
func TestAlarmsAndTopic(t *testing.T) {
	full, min := fixtures(t)
	type alarm struct {
		Namespace, Metric, Statistic, Dimension string
		Threshold, Periods                      float64
		Actions                                 []string
	}
	want := func(s *synthesized, timeout float64) []alarm {
		fn, dlq, failed := "${"+s.id("Function")+"}", "${"+s.id("DeadLetterQueue")+".QueueName}", "${"+s.id("FailedInvocations")+".QueueName}"
		cont, contDLQ := "${"+s.id("ContinueQueue")+".QueueName}", "${"+s.id("ContinueDeadLetterQueue")+".QueueName}"
		actions := []string{"${" + s.id("Topic") + "}"}
		a := []alarm{
			{"AWS/Lambda", "Errors", "Sum", fn, 1, 1, actions},
			{"AWS/Lambda", "Throttles", "Sum", fn, 1, 3, actions},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", dlq, 1, 1, actions},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", failed, 1, 1, actions},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", contDLQ, 1, 1, actions},
			// A stuck chain: the oldest continuation has waited two visibility timeouts (2 × 6 ×
			// the function's timeout): an hour by default, two with the full stack's 10 minutes.
			{"AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", cont, 2 * 6 * timeout, 1, actions},
			// The function's EMF metrics, in their dimensionless set: every outcome.
			{"pinroll", "ServicesFailed", "Sum", "", 1, 1, actions},
			{"pinroll", "MissingImages", "Sum", "", 1, 1, actions},
		}
		sort.Slice(a, func(i, j int) bool { return a[i].Metric+a[i].Dimension < a[j].Metric+a[j].Dimension })
		return a
	}
	for s, timeout := range map[*synthesized]float64{full: 600, min: 300} {
		var got []alarm
		for id, r := range s.resources("AWS::CloudWatch::Alarm") {
			p := r["Properties"].(map[string]any)
			if p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" ||
				p["TreatMissingData"] != "notBreaching" || p["DatapointsToAlarm"] != p["EvaluationPeriods"] {
				t.Errorf("alarm %s: %v", id, p)
			}
			if p["Period"] != 300.0 {
				t.Errorf("alarm %s: period %v", id, p["Period"])
			}
			dims, dim := asList(p["Dimensions"]), ""
			switch len(dims) {
			case 0:
			case 1:
				dim = dims[0].(map[string]any)["Value"].(string)
			default:
				t.Fatalf("alarm %s dimensions %v", id, dims)
			}
			got = append(got, alarm{p["Namespace"].(string), p["MetricName"].(string), p["Statistic"].(string),
				dim, p["Threshold"].(float64), p["EvaluationPeriods"].(float64), strs(p["AlarmActions"])})
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Metric+got[i].Dimension < got[j].Metric+got[j].Dimension })
		if diff := cmp.Diff(want(s, timeout), got); diff != "" {
			t.Errorf("%s alarms (-want +got):\n%s", *s.stack.StackName(), diff)
		}
		s.template.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]any{
			"KmsMasterKeyId": map[string]any{"Fn::GetAtt": []string{s.id("TopicKey"), "Arn"}},
		})
		// The topic's key and the log group's, both rotated.
		s.template.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(2))
		s.template.AllResourcesProperties(jsii.String("AWS::KMS::Key"), map[string]any{"EnableKeyRotation": true})
	}
	full.template.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
		"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": map[string]any{"Ref": full.id("Topic")},
	})
	min.template.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(0))
}

// keyStatements are the statements of a KMS key's policy, rendered, in order.
func keyStatements(t *testing.T, s *synthesized, path string) []any {
	t.Helper()
	return asList(s.props(path)["KeyPolicy"].(map[string]any)["Statement"])
}

// GIVEN the default stack, THEN the log key lets CloudWatch Logs use it for this account's log
// groups only, and grants only to AWS services (CT.KMS.PR.3); the topic key the same for grants.
func TestLogKeyPolicy(t *testing.T) {
	_, min := fixtures(t)
	denyGrants := map[string]any{
		"Sid": "DenyGrantsButForAWSServices", "Effect": "Deny", "Principal": map[string]any{"AWS": "*"},
		"Action": "kms:CreateGrant", "Resource": "*",
		"Condition": map[string]any{"BoolIfExists": map[string]any{"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
	}
	want := []any{
		// CDK's default: the account administers the key through IAM.
		map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:" + P + ":iam::" + A + ":root"}, "Action": "kms:*", "Resource": "*"},
		map[string]any{
			"Sid": "CloudWatchLogsEncrypt", "Effect": "Allow", "Principal": map[string]any{"Service": "logs." + R + ".amazonaws.com"},
			"Action":   []any{"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"},
			"Resource": "*",
			"Condition": map[string]any{"ArnLike": map[string]any{
				"kms:EncryptionContext:aws:logs:arn": "arn:" + P + ":logs:" + R + ":" + A + ":log-group:*",
			}},
		},
		denyGrants,
	}
	if diff := cmp.Diff(want, keyStatements(t, min, "LogKey")); diff != "" {
		t.Errorf("log key policy (-want +got):\n%s", diff)
	}
	if got := keyStatements(t, min, "TopicKey"); !slices.ContainsFunc(got, func(st any) bool { return cmp.Equal(st, denyGrants) }) {
		t.Errorf("topic key policy lacks %v: %v", denyGrants, got)
	}
}

// GIVEN target roles, THEN the default bus takes ECS deployment events from their accounts only;
// without them there is no bus policy.
func TestBusPolicy(t *testing.T) {
	full, min := fixtures(t)
	p := full.props("BusPolicy")
	want := map[string]any{
		"EventBusName": "default",
		"StatementId":  p["StatementId"],
		"Statement": map[string]any{
			"Sid":    p["StatementId"],
			"Effect": "Allow",
			"Principal": map[string]any{"AWS": []any{
				"arn:" + P + ":iam::777788889999:root", "arn:" + P + ":iam::222233334444:root",
			}},
			"Action":   "events:PutEvents",
			"Resource": "arn:" + P + ":events:" + R + ":" + A + ":event-bus/default",
			"Condition": map[string]any{"StringEquals": map[string]any{
				"events:source": "aws.ecs", "events:detail-type": "ECS Deployment State Change",
			}},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("bus policy (-want +got):\n%s", diff)
	}
	if id, _ := p["StatementId"].(string); !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(id) {
		t.Errorf("statement id %q", id)
	}
	min.template.ResourceCountIs(jsii.String("AWS::Events::EventBusPolicy"), jsii.Number(0))
}

// GIVEN a VPC by subnets and security groups, or by subnets and a VPC id, THEN the function runs
// there (CT.LAMBDA.PR.3), in a security group that only lets HTTPS out when pinroll creates it.
func TestVpc(t *testing.T) {
	full, min := fixtures(t)
	vpc, _, _ := more(t)
	vpc.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"VpcConfig": map[string]any{"SubnetIds": []string{"subnet-0aaaaaaaaaaaaaaaa"}, "SecurityGroupIds": []string{"sg-0dddddddddddddddd"}},
	})
	vpc.template.ResourceCountIs(jsii.String("AWS::EC2::SecurityGroup"), jsii.Number(0))
	full.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"VpcConfig": map[string]any{
			"SubnetIds":        []string{"subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"},
			"SecurityGroupIds": []any{map[string]any{"Fn::GetAtt": []string{full.id("SecurityGroup"), "GroupId"}}},
		},
	})
	if diff := cmp.Diff(map[string]any{
		"GroupDescription": "pinroll: outbound HTTPS to the AWS APIs only, nothing inbound",
		"VpcId":            "vpc-0cccccccccccccccc",
		"SecurityGroupEgress": []any{map[string]any{
			"Description": "HTTPS to the AWS APIs (interface endpoints or NAT)",
			"IpProtocol":  "tcp", "FromPort": 443.0, "ToPort": 443.0, "CidrIp": "0.0.0.0/0",
		}},
	}, full.props("SecurityGroup")); diff != "" {
		t.Errorf("security group (-want +got):\n%s", diff)
	}
	// Endpoints: the APIs the full stack calls (SQS for its continuations, STS for its targets,
	// SNS for reports, SSM for parameters), in its subnets, reachable on 443 from the function's security group only; and
	// DynamoDB's gateway endpoint for the index table.
	var services []string
	for id, r := range full.resources("AWS::EC2::VPCEndpoint") {
		p := r["Properties"].(map[string]any)
		services = append(services, fmt.Sprint(p["ServiceName"]))
		if p["VpcEndpointType"] == "Gateway" {
			// The index table's: DynamoDB's gateway endpoint, on the subnets' route tables.
			if diff := cmp.Diff(map[string]any{"VpcId": "vpc-0cccccccccccccccc", "VpcEndpointType": "Gateway",
				"ServiceName": "com.amazonaws." + R + ".dynamodb", "RouteTableIds": []any{"rtb-0eeeeeeeeeeeeeeee"}}, p); diff != "" {
				t.Errorf("endpoint %s (-want +got):\n%s", id, diff)
			}
			continue
		}
		want := map[string]any{
			"VpcId": "vpc-0cccccccccccccccc", "VpcEndpointType": "Interface", "PrivateDnsEnabled": true,
			"ServiceName":      p["ServiceName"],
			"SubnetIds":        []any{"subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"},
			"SecurityGroupIds": []any{"${" + full.id("EndpointSecurityGroup") + ".GroupId}"},
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("endpoint %s (-want +got):\n%s", id, diff)
		}
	}
	sort.Strings(services)
	var want []string
	for _, svc := range []string{"dynamodb", "ecr.api", "ecs", "sns", "sqs", "ssm", "sts"} {
		want = append(want, "com.amazonaws."+R+"."+svc)
	}
	if diff := cmp.Diff(want, services); diff != "" {
		t.Errorf("endpoint services (-want +got):\n%s", diff)
	}
	ingress := full.props("EndpointSecurityGroup")["SecurityGroupIngress"]
	if diff := cmp.Diff([]any{map[string]any{
		"Description": "HTTPS from pinroll's function", "IpProtocol": "tcp", "FromPort": 443.0, "ToPort": 443.0,
		"SourceSecurityGroupId": "${" + full.id("SecurityGroup") + ".GroupId}",
	}}, ingress); diff != "" {
		t.Errorf("endpoint ingress (-want +got):\n%s", diff)
	}
	vpc.template.ResourceCountIs(jsii.String("AWS::EC2::VPCEndpoint"), jsii.Number(0))
	min.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{"VpcConfig": assertions.Match_Absent()})
	// The VPC statement exists in the VPC variants only.
	for s, want := range map[*synthesized]bool{full: true, vpc: true, min: false} {
		got := slices.ContainsFunc(roleStatements(t, s), func(st statement) bool { return st.Sid == "ManageVpcNetworkInterfaces" })
		if got != want {
			t.Errorf("%s: ManageVpcNetworkInterfaces %v, want %v", *s.stack.StackName(), got, want)
		}
	}
}

// GIVEN the AwsSolutions pack applied to every stack (hubs and targets), THEN no unsuppressed error
// remains, and the templates pass cfn-lint (when installed).
func TestNagAndLint(t *testing.T) {
	for _, s := range all(t) {
		ann := assertions.Annotations_FromStack(s.stack)
		for _, m := range *ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
			//lint:ignore SA1019 the Go bindings of CDK 2.276 offer no replacement for SynthesisMessage yet
			t.Errorf("%s: cdk-nag error at %s: %v", *s.stack.StackName(), *m.Id, m.Entry.Data)
		}
		for _, m := range *ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
			//lint:ignore SA1019 the Go bindings of CDK 2.276 offer no replacement for SynthesisMessage yet
			t.Logf("%s: cdk-nag warning at %s: %v", *s.stack.StackName(), *m.Id, m.Entry.Data)
		}
	}
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Log("cfn-lint not installed: template lint skipped here (make test lints the real synth)")
		return
	}
	dir := t.TempDir()
	var files []string
	for _, s := range all(t) {
		b, _ := json.Marshal(s.raw)
		f := filepath.Join(dir, *s.stack.StackName()+".template.json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := exec.Command(lint, append([]string{"--non-zero-exit-code", "error"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	} else if len(out) > 0 {
		t.Logf("cfn-lint (warnings only):\n%s", out)
	}
}
