// Command infra is the CDK app that deploys pinroll (cdk.json: "app": "go run ./infra").
// Configuration comes from the CDK context; README "Deploy" lists every key.
package main

import (
	"errors"
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
		switch cfg.Stacks {
		case pinroll.StackHub:
			err = cfg.Props.Validate()
		case pinroll.StackTarget:
			err = cfg.Target.Validate()
		default:
			err = errors.Join(cfg.Props.Validate(), cfg.Target.Validate())
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pinroll: invalid configuration:\n%v\n", err)
		jsii.Close()
		os.Exit(1)
	}

	// No Env: the template is environment-agnostic, synthesizes without credentials and deploys
	// to the account and region of the credentials `cdk deploy` runs with.
	// pinroll:stack picks the stacks: the hub (default: what deploy and diff act on), the target
	// (one per workload account, e.g. with StackSets), or both (make synth).
	if cfg.Stacks != pinroll.StackTarget {
		pinroll.NewPinrollStack(app, cfg.StackName, &pinroll.PinrollStackProps{Pinroll: cfg.Props})
	}
	if cfg.Stacks != pinroll.StackHub {
		pinroll.NewTargetStack(app, cfg.StackName+"Target", &pinroll.TargetStackProps{Target: cfg.Target})
	}
	app.Synth(nil)
}
