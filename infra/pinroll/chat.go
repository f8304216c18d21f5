package pinroll

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awschatbot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// chat subscribes the notification topic to the configured Slack and Teams channels through Amazon
// Q Developer in chat applications (the L1 resources: the L2 SlackChannelConfiguration would add
// a Lambda-backed custom resource for log retention, and has no Teams counterpart).
//
// The channel role is what Amazon Q uses to render notifications; pinroll's are custom
// notifications that need no AWS call, and the alarms' notifications are rendered with CloudWatch
// read-only access: the Administrator Guide's "Notification permissions" template,
// cloudwatch:Describe*, Get*, List*. The same policy is the channel guardrail, so no channel
// member can do more through the channel, whatever role they map to, and UserRoleRequired stays
// false (members act through the channel role, which can only read CloudWatch).
//
// Logs: Amazon Q writes a channel configuration's logs itself, to /aws/chatbot/<configuration
// name> in us-east-1, whatever the stack's region; the template creates no log group (none for
// Control Tower's CT.CLOUDWATCH.PR.2 to check). README "Deploy" gives the retention command.
func chat(c constructs.Construct, p *Pinroll, props *Props) {
	policy := awsiam.NewManagedPolicy(c, jsii.String("ChatPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("pinroll: the chat channel's permissions and guardrail: read CloudWatch to render alarm notifications"),
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadCloudWatchForNotifications"),
			Actions:   jsii.Strings("cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*"),
			Resources: jsii.Strings("*"),
		})},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{
		{Id: jsii.String("AwsSolutions-IAM5"), AppliesTo: &[]any{"Action::cloudwatch:Describe*", "Action::cloudwatch:Get*", "Action::cloudwatch:List*", "Resource::*"},
			Reason: jsii.String("The Amazon Q Developer in chat applications notification permissions template (read-only CloudWatch); " +
				"its read actions support no resource narrower than * (Service Authorization Reference).")},
	}, jsii.Bool(false))
	p.ChatPolicy = policy
	p.ChatRole = awsiam.NewRole(c, jsii.String("ChatRole"), &awsiam.RoleProps{
		AssumedBy:       awsiam.NewServicePrincipal(jsii.String("chatbot.amazonaws.com"), nil),
		Description:     jsii.String("pinroll: the chat channel's role (Amazon Q Developer in chat applications): read CloudWatch only"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{policy},
	})
	name := func(kind string) *string {
		// Unique in the account (channel configurations are global): the stack's name and region.
		return jsii.String(*awscdk.Aws_STACK_NAME() + "-" + *awscdk.Aws_REGION() + "-" + kind)
	}
	cfg := props.Chat
	if cfg.slack() {
		p.SlackChannel = awschatbot.NewCfnSlackChannelConfiguration(c, jsii.String("SlackChannel"), &awschatbot.CfnSlackChannelConfigurationProps{
			ConfigurationName: name("slack"),
			IamRoleArn:        p.ChatRole.RoleArn(),
			SlackWorkspaceId:  jsii.String(cfg.SlackWorkspaceID),
			SlackChannelId:    jsii.String(cfg.SlackChannelID),
			SnsTopicArns:      &[]any{p.Topic.TopicArn()},
			GuardrailPolicies: &[]*string{policy.ManagedPolicyArn()},
			LoggingLevel:      jsii.String(cfg.loggingLevel()),
			UserRoleRequired:  jsii.Bool(false),
		})
	}
	if cfg.teams() {
		p.TeamsChannel = awschatbot.NewCfnMicrosoftTeamsChannelConfiguration(c, jsii.String("TeamsChannel"), &awschatbot.CfnMicrosoftTeamsChannelConfigurationProps{
			ConfigurationName: name("teams"),
			IamRoleArn:        p.ChatRole.RoleArn(),
			TeamId:            jsii.String(cfg.TeamsTeamID),
			TeamsChannelId:    jsii.String(cfg.TeamsChannelID),
			TeamsTenantId:     jsii.String(cfg.TeamsTenantID),
			SnsTopicArns:      &[]*string{p.Topic.TopicArn()},
			GuardrailPolicies: &[]*string{policy.ManagedPolicyArn()},
			LoggingLevel:      jsii.String(cfg.loggingLevel()),
			UserRoleRequired:  jsii.Bool(false),
		})
	}
}
