package pinroll

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

// GIVEN the default stack and the full one, THEN the index table is on demand, keyed by `arn`
// (S) alone, with point-in-time recovery, encrypted with the stack's log key, retained on
// delete and replacement; without the key it uses DynamoDB's AWS-managed key; with
// pinroll:indexTable=false (the VPC fixture) there is no table, no variable and no statement.
func TestIndexTable(t *testing.T) {
	full, min := fixtures(t)
	vpc, _, _ := more(t)
	for _, s := range []*synthesized{full, min} {
		s.template.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(1))
		s.template.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{
			"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
			"Properties": map[string]any{
				"KeySchema":                        []any{map[string]any{"AttributeName": "arn", "KeyType": "HASH"}},
				"AttributeDefinitions":             []any{map[string]any{"AttributeName": "arn", "AttributeType": "S"}},
				"BillingMode":                      "PAY_PER_REQUEST",
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				"SSESpecification": map[string]any{
					"SSEEnabled": true, "SSEType": "KMS",
					"KMSMasterKeyId": map[string]any{"Fn::GetAtt": []string{s.id("LogKey"), "Arn"}},
				},
				"ProvisionedThroughput": assertions.Match_Absent(),
				// The claims' ttl: DynamoDB removes a crashed invocation's claims.
				"TimeToLiveSpecification": map[string]any{"AttributeName": "ttl", "Enabled": true},
			},
		})
	}
	nk := noKey(t)
	nk.template.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
		// SSEEnabled without a key: KMS with DynamoDB's AWS-managed key (alias/aws/dynamodb).
		"SSESpecification":                 map[string]any{"SSEEnabled": true, "KMSMasterKeyId": assertions.Match_Absent()},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
	})
	nk.template.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(1)) // the topic's only
	var got []statement
	for _, st := range roleStatements(t, nk) {
		if strings.Contains(st.Sid, "IndexTable") {
			got = append(got, st)
		}
	}
	if diff := cmp.Diff([]statement{{Sid: "ReadWriteIndexTable", Action: []string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
		Resource: []string{"${" + nk.id("IndexTable") + ".Arn}"}}}, got); diff != "" {
		t.Errorf("AWS-managed key: index statements (-want +got):\n%s", diff)
	}

	vpc.template.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(0))
	// Only the continuation queue's variable is left, beside the collector's setting.
	vpc.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{"PINROLL_CONTINUE_QUEUE_URL": map[string]any{"Ref": vpc.id("ContinueQueue")}, "GOGC": "200"}},
	})
	for _, st := range roleStatements(t, vpc) {
		if strings.Contains(strings.Join(st.Action, ","), "dynamodb:") || strings.Contains(st.Sid, "IndexTable") {
			t.Errorf("opted out, yet the role has %v", st)
		}
	}
}

// GIVEN a Slack and a Teams channel, THEN each channel configuration takes the topic, the chat
// role and the read-only guardrail, logs at the configured level and needs no user role; the
// role is assumed by Amazon Q Developer in chat applications only and can read CloudWatch,
// nothing else; the topic's key lets CloudWatch publish (pinroll's function holds its own
// grant), and no chat principal is needed on it. Without chat there is none of it.
func TestChat(t *testing.T) {
	full, min := fixtures(t)
	common := map[string]any{
		"IamRoleArn":        map[string]any{"Fn::GetAtt": []string{full.id("ChatRole"), "Arn"}},
		"SnsTopicArns":      []any{map[string]any{"Ref": full.id("Topic")}},
		"GuardrailPolicies": []any{map[string]any{"Ref": full.id("ChatPolicy")}},
		"LoggingLevel":      "INFO",
		"UserRoleRequired":  false,
	}
	with := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	full.template.HasResourceProperties(jsii.String("AWS::Chatbot::SlackChannelConfiguration"), with(map[string]any{
		"SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0456EFGH",
	}))
	full.template.HasResourceProperties(jsii.String("AWS::Chatbot::MicrosoftTeamsChannelConfiguration"), with(map[string]any{
		"TeamId": "5f3e1c2a-1111-4222-8333-944455556666", "TeamsChannelId": "19%3aabc123%40thread.tacv2",
		"TeamsTenantId": "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd",
	}))
	for _, path := range []string{"SlackChannel", "TeamsChannel"} {
		name := full.props(path)["ConfigurationName"]
		if want := "${AWS::StackName}-${AWS::Region}-" + strings.ToLower(strings.TrimSuffix(path, "Channel")); name != want {
			t.Errorf("%s: configuration name %v, want %s", path, name, want)
		}
	}

	role := full.props("ChatRole")
	trust := asList(role["AssumeRolePolicyDocument"].(map[string]any)["Statement"])
	if diff := cmp.Diff([]any{map[string]any{"Action": "sts:AssumeRole", "Effect": "Allow",
		"Principal": map[string]any{"Service": "chatbot.amazonaws.com"}}}, trust); diff != "" {
		t.Errorf("chat role trust (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"${" + full.id("ChatPolicy") + "}"}, strs(role["ManagedPolicyArns"])); diff != "" {
		t.Errorf("chat role policies (-want +got):\n%s", diff)
	}
	if _, ok := role["Policies"]; ok {
		t.Errorf("chat role has inline policies: %v", role["Policies"])
	}
	for _, p := range full.resources("AWS::IAM::Policy") {
		for _, r := range strs(p["Properties"].(map[string]any)["Roles"]) {
			if r == "${"+full.id("ChatRole")+"}" {
				t.Errorf("a policy is attached to the chat role: %v", p)
			}
		}
	}
	doc := full.props("ChatPolicy")["PolicyDocument"].(map[string]any)
	if diff := cmp.Diff([]any{map[string]any{"Sid": "ReadCloudWatchForNotifications", "Effect": "Allow",
		"Action": []any{"cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*"}, "Resource": "*"}},
		asList(doc["Statement"])); diff != "" {
		t.Errorf("chat policy (-want +got):\n%s", diff)
	}

	// The topic's key: the account's administration, grants only for AWS services, CloudWatch's
	// alarms publishing. SNS itself decrypts to deliver to Amazon Q's endpoint; the function
	// publishes under its role's EncryptReports statement.
	if diff := cmp.Diff([]any{
		map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:" + P + ":iam::" + A + ":root"}, "Action": "kms:*", "Resource": "*"},
		map[string]any{
			"Sid": "DenyGrantsButForAWSServices", "Effect": "Deny", "Principal": map[string]any{"AWS": "*"},
			"Action": "kms:CreateGrant", "Resource": "*",
			"Condition": map[string]any{"BoolIfExists": map[string]any{"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
		},
		map[string]any{"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
			"Action": []any{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"},
	}, keyStatements(t, full, "TopicKey")); diff != "" {
		t.Errorf("topic key policy (-want +got):\n%s", diff)
	}
	// Chat implies the reports: the function publishes to the topic the channels read.
	if _, ok := full.props("Function")["Environment"].(map[string]any)["Variables"].(map[string]any)["PINROLL_NOTIFY_TOPIC_ARN"]; !ok {
		t.Error("chat configured but the function does not publish to the topic")
	}

	for _, typ := range []string{"AWS::Chatbot::SlackChannelConfiguration", "AWS::Chatbot::MicrosoftTeamsChannelConfiguration", "AWS::IAM::ManagedPolicy"} {
		min.template.ResourceCountIs(jsii.String(typ), jsii.Number(0))
	}
	min.template.ResourceCountIs(jsii.String("AWS::IAM::Role"), jsii.Number(1))
}

// widgetMetrics reads the dashboard's body: for each widget, by title, what it shows — a metric
// as "namespace/name{dim=value,…} stat", a math expression as its text, an alarm widget as its
// alarms.
func widgetMetrics(t *testing.T, s *synthesized) (map[string][]string, []string) {
	t.Helper()
	p := s.props("Dashboard")
	body, ok := p["DashboardBody"].(string)
	if !ok {
		t.Fatalf("dashboard body %T", p["DashboardBody"])
	}
	var d struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title   string
				Metrics [][]any
				Alarms  []string
				Region  string
				Period  float64
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("dashboard body is not JSON: %v\n%s", err, body)
	}
	out := map[string][]string{}
	var order []string
	for _, w := range d.Widgets {
		pr := w.Properties
		order = append(order, pr.Title)
		if w.Type == "alarm" {
			out[pr.Title] = pr.Alarms
			continue
		}
		if w.Type != "metric" || pr.Region != R || pr.Period != 300 {
			t.Errorf("widget %q: type %s region %s period %v", pr.Title, w.Type, pr.Region, pr.Period)
		}
		for _, m := range pr.Metrics {
			opts, _ := m[len(m)-1].(map[string]any)
			if e, ok := opts["expression"].(string); ok && len(m) == 1 {
				out[pr.Title] = append(out[pr.Title], e)
				continue
			}
			var dims []string
			for i := 2; i+1 < len(m); i += 2 {
				dims = append(dims, fmt.Sprintf("%v=%v", m[i], m[i+1]))
			}
			out[pr.Title] = append(out[pr.Title], fmt.Sprintf("%v/%v{%s} %v", m[0], m[1], strings.Join(dims, ","), opts["stat"]))
		}
	}
	return out, order
}

// GIVEN the stacks, THEN the dashboard, named after the stack and region, shows the alarms, events
// by outcome, services deployed (by push and by reconcile), push-to-deploy p50/p90/max,
// mismatches and rollbacks, the two queues and the continuations beside them, permanent failures
// and missing images, and the reconcile repairs — each widget the metrics the function emits with the dimension sets it
// emits them in; with target accounts (full), four more widgets, a line per account.
func TestDashboard(t *testing.T) {
	full, min := fixtures(t)
	if got := min.props("Dashboard")["DashboardName"]; got != "${AWS::StackName}-${AWS::Region}" {
		t.Errorf("dashboard name %v", got)
	}
	base := func(s *synthesized) map[string][]string {
		var alarms []string
		for _, a := range []string{"FunctionErrors", "FunctionThrottles", "DeadLetterQueueNotEmpty", "FailedInvocationsNotEmpty",
			"ContinueDeadLetterQueueNotEmpty", "ContinuationsStuck", "ServicesFailed", "MissingImages"} {
			alarms = append(alarms, "${"+s.id(a)+".Arn}")
		}
		return map[string][]string{
			WidgetAlarms: alarms,
			WidgetEvents: {`SEARCH('{pinroll,Outcome} MetricName="Events"', 'Sum', 300)`},
			WidgetDeployed: {"pinroll/ServicesDeployed{} Sum", "pinroll/ServicesDeployed{Kind=push,Outcome=deployed} Sum",
				"pinroll/ServicesDeployed{Kind=reconcile,Outcome=deployed} Sum"},
			WidgetPushToDeploy: {"pinroll/PushToDeploySeconds{} p50", "pinroll/PushToDeploySeconds{} p90", "pinroll/PushToDeploySeconds{} Maximum"},
			WidgetVerification: {"pinroll/VerificationMismatches{} Sum", "pinroll/Events{Outcome=mismatch} Sum",
				"pinroll/Events{Outcome=rolled_back} Sum", "pinroll/Events{Outcome=unverified} Sum"},
			WidgetFailures: {"pinroll/ServicesFailed{} Sum", "pinroll/MissingImages{} Sum", "pinroll/Events{Outcome=failed} Sum"},
			WidgetQueues: {"AWS/SQS/ApproximateNumberOfMessagesVisible{QueueName=${" + s.id("DeadLetterQueue") + ".QueueName}} Maximum",
				"AWS/SQS/ApproximateNumberOfMessagesVisible{QueueName=${" + s.id("FailedInvocations") + ".QueueName}} Maximum"},
			WidgetContinuations: {"AWS/SQS/ApproximateNumberOfMessagesVisible{QueueName=${" + s.id("ContinueQueue") + ".QueueName}} Maximum",
				"AWS/SQS/ApproximateNumberOfMessagesNotVisible{QueueName=${" + s.id("ContinueQueue") + ".QueueName}} Maximum",
				"AWS/SQS/ApproximateNumberOfMessagesVisible{QueueName=${" + s.id("ContinueDeadLetterQueue") + ".QueueName}} Maximum",
				"AWS/SQS/ApproximateAgeOfOldestMessage{QueueName=${" + s.id("ContinueQueue") + ".QueueName}} Maximum"},
			WidgetReconcile: {"pinroll/ServicesDeployed{Kind=reconcile,Outcome=deployed} Sum",
				`SEARCH('{pinroll,Kind,Outcome} MetricName="Events" Kind="reconcile"', 'Sum', 300)`},
		}
	}
	got, order := widgetMetrics(t, min)
	if diff := cmp.Diff(base(min), got); diff != "" {
		t.Errorf("minimal dashboard (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{WidgetAlarms, WidgetEvents, WidgetDeployed, WidgetPushToDeploy, WidgetVerification,
		WidgetQueues, WidgetContinuations, WidgetFailures, WidgetReconcile}, order); diff != "" {
		t.Errorf("widget order (-want +got):\n%s", diff)
	}

	want := base(full)
	perAccount := func(metric string) []string {
		var out []string
		for _, a := range []string{A, "777788889999", "222233334444"} {
			out = append(out, "pinroll/"+metric+"{Account="+a+"} Sum")
		}
		return out
	}
	want[WidgetAccountPrefix+"services deployed"] = perAccount("ServicesDeployed")
	want[WidgetAccountPrefix+"verification mismatches"] = perAccount("VerificationMismatches")
	want[WidgetAccountPrefix+"permanent failures"] = perAccount("ServicesFailed")
	want[WidgetAccountPrefix+"missing images"] = perAccount("MissingImages")
	got, _ = widgetMetrics(t, full)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("full dashboard (-want +got):\n%s", diff)
	}
}
