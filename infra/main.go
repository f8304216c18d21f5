// Command infra is the CDK app that deploys pinroll (cdk.json: "app": "go run ./infra").
// Configuration comes from the CDK context; README "Deploy" lists every key.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/pinroll/pinroll/infra/pinroll"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)

	ctx, _ := app.Node().GetAllContext(nil).(map[string]any)
	cfg, err := pinroll.PropsFromContext(ctx)
	if err == nil {
		err = cfg.Props.Validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pinroll: invalid configuration:\n%v\n", err)
		jsii.Close()
		os.Exit(1)
	}

	// No Env: the template is environment-agnostic, synthesizes without credentials and deploys
	// to the account and region of the credentials `cdk deploy` runs with.
	pinroll.NewPinrollStack(app, cfg.StackName, &pinroll.PinrollStackProps{Pinroll: cfg.Props})
	app.Synth(nil)
}
