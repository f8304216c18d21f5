package pinroll

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

// targetECS is what a target role may do: the hub's ECS statements over that account's clusters.
func targetECS(clusters, services, tasks, roles []string) []statement {
	want := []statement{
		{Sid: "ListClustersDescribeTaskDefinitions", Action: []string{"ecs:DescribeTaskDefinition", "ecs:ListClusters"},
			Resource: []string{"*"}},
		{Sid: "ListServicesAndTasksInScope", Action: []string{"ecs:ListServices", "ecs:ListTasks"}, Resource: []string{"*"},
			Condition: map[string]map[string][]string{"ArnLike": {"ecs:cluster": clusters}}},
		{Sid: "DescribeServicesInScope", Action: []string{"ecs:DescribeServices"}, Resource: services},
		{Sid: "DescribeTasksInScope", Action: []string{"ecs:DescribeTasks"}, Resource: tasks},
		{Sid: "RegisterTaskDefinition", Action: []string{"ecs:RegisterTaskDefinition"}, Resource: []string{"*"}},
		{Sid: "TagTaskDefinitionOnRegister", Action: []string{"ecs:TagResource"}, Resource: []string{arnOf("ecs", A, "task-definition/*")},
			Condition: map[string]map[string][]string{"StringEquals": {"ecs:CreateAction": {"RegisterTaskDefinition"}}}},
		{Sid: "PassTaskRolesToEcsTasks", Action: []string{"iam:PassRole"}, Resource: roles,
			Condition: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}},
		{Sid: "UpdateServicesInScope", Action: []string{"ecs:UpdateService"}, Resource: services},
		{Sid: "PauseResumeServicesInScope", Action: []string{"ecs:TagResource", "ecs:UntagResource"}, Resource: services},
	}
	sortStatements(want)
	return want
}

// GIVEN a target with clusters and pass roles, or none, WHEN synthesized, THEN its role holds
// exactly the hub's ECS statements over this account (no ECR, logs, SSM or STS), and EventBridge's
// forwarding role may put events on the hub's default bus only.
func TestTargetIAMStatements(t *testing.T) {
	_, full, min := more(t)
	for _, tc := range []struct {
		s    *synthesized
		want []statement
		bus  string
	}{
		{full, targetECS([]string{arnOf("ecs", A, "cluster/prod")}, []string{arnOf("ecs", A, "service/prod/*")},
			[]string{arnOf("ecs", A, "task/prod/*")}, []string{arnOf("iam", A, "role/app-task-*")}),
			"arn:" + P + ":events:" + R + ":999988887777:event-bus/default"},
		{min, targetECS([]string{arnOf("ecs", A, "cluster/*")}, []string{arnOf("ecs", A, "service/*")},
			[]string{arnOf("ecs", A, "task/*")}, []string{arnOf("iam", A, "role/*")}),
			"arn:split(${HubFunctionRoleArn})[1]:events:" + R + ":split(${HubFunctionRoleArn})[4]:event-bus/default"},
	} {
		name := *tc.s.stack.StackName()
		if diff := cmp.Diff(tc.want, roleStatements(t, tc.s)); diff != "" {
			t.Errorf("%s target role (-want +got):\n%s", name, diff)
		}
		want := []statement{{Action: []string{"events:PutEvents"}, Resource: []string{tc.bus}}}
		if diff := cmp.Diff(want, roleStatementsOf(t, tc.s, "ForwardRole")); diff != "" {
			t.Errorf("%s forwarding role (-want +got):\n%s", name, diff)
		}
	}
}

// GIVEN a target, THEN its role trusts the hub account only when the caller is the hub's function
// role, for one-hour sessions, under the name the hub lists.
func TestTargetTrust(t *testing.T) {
	_, full, min := more(t)
	for _, tc := range []struct {
		s                   *synthesized
		account, role, name string
	}{
		{full, "999988887777", hubRole, "pinroll-deployer"},
		{min, "split(${HubFunctionRoleArn})[4]", "${HubFunctionRoleArn}", "pinroll-target-" + R},
	} {
		p := tc.s.props("Role")
		want := map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Action":    "sts:AssumeRole",
				"Effect":    "Allow",
				"Principal": map[string]any{"AWS": "arn:" + P + ":iam::" + tc.account + ":root"},
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": tc.role}},
			}},
		}
		if diff := cmp.Diff(want, p["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("%s trust policy (-want +got):\n%s", *tc.s.stack.StackName(), diff)
		}
		if p["RoleName"] != tc.name || p["MaxSessionDuration"] != 3600.0 {
			t.Errorf("%s role name %v, session %v", *tc.s.stack.StackName(), p["RoleName"], p["MaxSessionDuration"])
		}
		if _, ok := p["ManagedPolicyArns"]; ok {
			t.Errorf("target role has managed policies")
		}
		tc.s.template.HasOutput(jsii.String("TargetRoleArn"), map[string]any{
			"Value": map[string]any{"Fn::GetAtt": []string{tc.s.id("Role"), "Arn"}},
		})
		// StackSets: no CDK bootstrap in the workload accounts, so no bootstrap version check.
		if _, ok := tc.s.raw["Rules"]; ok {
			t.Errorf("%s has Rules (the bootstrap version check?): %v", *tc.s.stack.StackName(), tc.s.raw["Rules"])
		}
	}
	full.template.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(0))
	want := map[string]any{"HubFunctionRoleArn": map[string]any{
		"Type": "String", "AllowedPattern": targetRoleRe.String(),
		"Description": "The pinroll hub's function role (output FunctionRoleArn of the hub stack)",
	}}
	if diff := cmp.Diff(want, min.raw["Parameters"]); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
	if ps, ok := full.raw["Parameters"]; ok {
		t.Errorf("with HubRoleArn set, parameters %v", ps)
	}
}

// GIVEN a target, THEN its finished ECS deployments (in the clusters in scope) go to the hub's
// default bus, with retries and a dead-letter queue like the hub's own.
func TestTargetForwardRule(t *testing.T) {
	_, full, min := more(t)
	for _, tc := range []struct {
		s         *synthesized
		resources any
		bus       string
	}{
		{full, []any{map[string]any{"prefix": "arn:" + P + ":ecs:" + R + ":" + A + ":service/prod/"}},
			"arn:" + P + ":events:" + R + ":999988887777:event-bus/default"},
		{min, nil, "arn:split(${HubFunctionRoleArn})[1]:events:" + R + ":split(${HubFunctionRoleArn})[4]:event-bus/default"},
	} {
		name := *tc.s.stack.StackName()
		p := tc.s.props("ForwardRule")
		pattern := map[string]any{
			"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Deployment State Change"},
			"detail": map[string]any{"eventName": []any{"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"}},
		}
		if tc.resources != nil {
			pattern["resources"] = tc.resources
		}
		if diff := cmp.Diff(pattern, p["EventPattern"]); diff != "" {
			t.Errorf("%s pattern (-want +got):\n%s", name, diff)
		}
		want := []any{map[string]any{
			"Id":               "Target0",
			"Arn":              tc.bus,
			"RoleArn":          "${" + tc.s.id("ForwardRole") + ".Arn}",
			"RetryPolicy":      map[string]any{"MaximumRetryAttempts": 8.0, "MaximumEventAgeInSeconds": 7200.0},
			"DeadLetterConfig": map[string]any{"Arn": "${" + tc.s.id("DeadLetterQueue") + ".Arn}"},
		}}
		if diff := cmp.Diff(want, p["Targets"]); diff != "" {
			t.Errorf("%s targets (-want +got):\n%s", name, diff)
		}
		tc.s.template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
			"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": true,
			"RedriveAllowPolicy": map[string]any{"redrivePermission": "allowAll"},
		})
		// EventBridge may write its dead letters, for this rule only.
		tc.s.template.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Effect":    "Allow",
				"Action":    "sqs:SendMessage",
				"Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Condition": map[string]any{"ArnEquals": map[string]any{
					"aws:SourceArn": map[string]any{"Fn::GetAtt": []string{tc.s.id("ForwardRule"), "Arn"}},
				}},
			})})},
		})
	}
}

// GIVEN a topic, THEN an alarm on the dead-letter queue publishes to it; without one, no alarm
// (CT.CLOUDWATCH.PR.1 forbids alarms without actions).
func TestTargetAlarm(t *testing.T) {
	_, full, min := more(t)
	full.template.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(1))
	full.template.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
		"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Statistic": "Maximum",
		"Period": 300, "Threshold": 1, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
		"TreatMissingData": "notBreaching",
		"Dimensions":       []any{map[string]any{"Name": "QueueName", "Value": map[string]any{"Fn::GetAtt": []string{full.id("DeadLetterQueue"), "QueueName"}}}},
		"AlarmActions":     []string{"arn:aws:sns:eu-west-1:777788889999:ops"},
	})
	min.template.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(0))
}

// GIVEN bad target props, THEN Validate names every problem at once.
func TestTargetValidate(t *testing.T) {
	p := TargetProps{HubRoleArn: "arn:aws:iam::123:role/x", RoleName: "bad name", Clusters: []string{"no spaces"}, PassRoles: []string{"*"},
		AlarmTopicArn: "ops"}
	err := p.Validate()
	for _, want := range []string{"HubRoleArn", "RoleName", `"no spaces"`, `PassRoles: "*"`, "AlarmTopicArn"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if err := (&TargetProps{}).Validate(); err != nil {
		t.Errorf("zero TargetProps: %v", err)
	}
}
