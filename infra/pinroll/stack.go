package pinroll

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// PinrollStackProps are the stack's props: CDK's own, and pinroll's.
type PinrollStackProps struct {
	awscdk.StackProps
	Pinroll Props
}

// NewPinrollStack is a stack holding one Pinroll construct. Leave StackProps.Env empty to get an
// environment-agnostic template (synthesizes offline, deploys to the CLI's account and region).
func NewPinrollStack(scope constructs.Construct, id string, props *PinrollStackProps) awscdk.Stack {
	var sprops awscdk.StackProps
	if props != nil {
		sprops = props.StackProps
	} else {
		props = &PinrollStackProps{}
	}
	if sprops.Description == nil {
		sprops.Description = jsii.String("pinroll: deploys ECR pushes to ECS services, pinned by digest")
	}
	stack := awscdk.NewStack(scope, &id, &sprops)
	p := New(stack, "Pinroll", &props.Pinroll)
	awscdk.NewCfnOutput(stack, jsii.String("FunctionRoleArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("The hub's function role: the HubFunctionRoleArn of the target stacks (pinroll:hubRoleArn)"),
		Value:       p.Role.RoleArn(),
	})
	return stack
}
