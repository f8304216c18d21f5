package pinroll

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Synthesizing through jsii costs seconds, so every test shares one app: the hub stacks "full"
// (every prop) and "minimal" (none: the defaults) and "vpc" (the minimal one in a VPC), and the
// target stacks "target-full" and "target-minimal". cdk-nag's AwsSolutions pack runs on all.

type synthesized struct {
	root     string // the construct's id in the stack: "Pinroll" or "Target"
	stack    awscdk.Stack
	template assertions.Template
	raw      map[string]any // the template as JSON
}

// id is the logical id of the CloudFormation resource of the construct at path (under the root).
func (s *synthesized) id(path string) string {
	var c constructs.IConstruct = s.stack.Node().FindChild(jsii.String(s.root))
	for _, name := range strings.Split(path, "/") {
		c = c.Node().FindChild(jsii.String(name))
	}
	if el, ok := c.(awscdk.CfnElement); ok {
		return *s.stack.GetLogicalId(el)
	}
	return *s.stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

// resources returns the template's resources of one type, by logical id, with intrinsics rendered.
func (s *synthesized) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.raw["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = render(r).(map[string]any)
		}
	}
	return out
}

// props are the rendered Properties of the resource of the construct at path.
func (s *synthesized) props(path string) map[string]any {
	id := s.id(path)
	r := s.raw["Resources"].(map[string]any)[id].(map[string]any)
	p, _ := render(r["Properties"]).(map[string]any)
	return p
}

var (
	fixtureOnce                 sync.Once
	fixtureFull, fixtureMinimal *synthesized
	fixtureVpc                  *synthesized
	fixtureNoKey                *synthesized
	fixtureTargetFull           *synthesized
	fixtureTargetMinimal        *synthesized
	fixtureErr                  error
	codeDir                     string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pinroll-infra-")
	if err != nil {
		panic(err)
	}
	// A stand-in for the Lambda binary: these tests must not depend on ./lambda compiling.
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		panic(err)
	}
	codeDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	jsii.Close()
	os.Exit(code)
}

func fullProps() Props {
	return Props{
		Clusters:            []string{"prod", "arn:aws:ecs:eu-west-1:111122223333:cluster/shared"},
		Repositories:        []string{"app", "team-a/*"},
		RequireOptIn:        true,
		DryRun:              true,
		RegistryAccounts:    []string{"111122223333", "444455556666"},
		PassRoles:           []string{"app-task-*", "arn:aws:iam::111122223333:role/shared-exec"},
		ParameterPrefix:     "/pinroll",
		NotificationEmail:   "ops@example.com",
		ReconcileRate:       awscdk.Duration_Hours(jsii.Number(1)),
		DisableReconcile:    true,
		ReservedConcurrency: 2,
		// Not the default 5 minutes: the continuation queue's visibility and its alarm follow it.
		Timeout:      awscdk.Duration_Minutes(jsii.Number(10)),
		CodePath:     codeDir,
		LogRetention: awslogs.RetentionDays_TWO_YEARS,
		TargetRoles:  []string{"arn:aws:iam::777788889999:role/pinroll-target-eu-west-1", "arn:aws:iam::222233334444:role/ops/pinroll"},
		Vpc: &VpcConfig{SubnetIDs: []string{"subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"}, VpcID: "vpc-0cccccccccccccccc", Endpoints: true,
			RouteTableIDs: []string{"rtb-0eeeeeeeeeeeeeeee"}},
		Chat: &ChatConfig{SlackWorkspaceID: "T0123ABCD", SlackChannelID: "C0456EFGH",
			TeamsTeamID: "5f3e1c2a-1111-4222-8333-944455556666", TeamsChannelID: "19%3aabc123%40thread.tacv2",
			TeamsTenantID: "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd", LoggingLevel: "INFO"},
	}
}

const hubRole = "arn:aws:iam::999988887777:role/Pinroll-PinrollRole-ABC"

func targetFullProps() TargetProps {
	return TargetProps{
		HubRoleArn:    hubRole,
		RoleName:      "pinroll-deployer",
		Clusters:      []string{"prod"},
		PassRoles:     []string{"app-task-*"},
		AlarmTopicArn: "arn:aws:sns:eu-west-1:777788889999:ops",
	}
}

func fixtures(t *testing.T) (full, minimal *synthesized) {
	t.Helper()
	fixtureOnce.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				fixtureErr = fmt.Errorf("synth panicked: %v", r)
			}
		}()
		app := awscdk.NewApp(&awscdk.AppProps{
			Context: &map[string]any{"@aws-cdk/aws-iam:minimizePolicies": false},
		})
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		// Build every stack before the first Template_FromStack: that synthesizes the whole app.
		full := NewPinrollStack(app, "Full", &PinrollStackProps{Pinroll: fullProps()})
		minimal := NewPinrollStack(app, "Minimal", &PinrollStackProps{Pinroll: Props{CodePath: codeDir}})
		// The VPC variant also opts out of the index table (pinroll:indexTable=false).
		vpc := NewPinrollStack(app, "Vpc", &PinrollStackProps{Pinroll: Props{CodePath: codeDir, NoIndexTable: true, Vpc: &VpcConfig{
			SubnetIDs: []string{"subnet-0aaaaaaaaaaaaaaaa"}, SecurityGroupIDs: []string{"sg-0dddddddddddddddd"}}}})
		// No customer-managed key (pinroll:logEncryption=false): the table uses DynamoDB's AWS-managed key.
		noKey := NewPinrollStack(app, "NoKey", &PinrollStackProps{Pinroll: Props{CodePath: codeDir, NoLogEncryption: true}})
		targetFull := NewTargetStack(app, "TargetFull", &TargetStackProps{Target: targetFullProps()})
		targetMinimal := NewTargetStack(app, "TargetMinimal", nil)
		mk := func(stack awscdk.Stack) *synthesized {
			tmpl := assertions.Template_FromStack(stack, nil)
			raw := map[string]any{}
			b, _ := json.Marshal(tmpl.ToJSON())
			if err := json.Unmarshal(b, &raw); err != nil {
				panic(err)
			}
			root := "Pinroll"
			if stack.Node().TryFindChild(jsii.String("Target")) != nil {
				root = "Target"
			}
			return &synthesized{root: root, stack: stack, template: tmpl, raw: raw}
		}
		fixtureFull, fixtureMinimal, fixtureVpc, fixtureNoKey = mk(full), mk(minimal), mk(vpc), mk(noKey)
		fixtureTargetFull, fixtureTargetMinimal = mk(targetFull), mk(targetMinimal)
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureFull, fixtureMinimal
}

// more are the VPC variant of the hub and the two target stacks.
func more(t *testing.T) (vpc, targetFull, targetMinimal *synthesized) {
	t.Helper()
	fixtures(t)
	return fixtureVpc, fixtureTargetFull, fixtureTargetMinimal
}

// noKey is the hub without a customer-managed key.
func noKey(t *testing.T) *synthesized {
	t.Helper()
	fixtures(t)
	return fixtureNoKey
}

// all is every synthesized stack.
func all(t *testing.T) []*synthesized {
	full, min := fixtures(t)
	vpc, tf, tm := more(t)
	return []*synthesized{full, min, vpc, noKey(t), tf, tm}
}

// render turns CloudFormation intrinsics into readable strings so that expectations can be
// written as text: {"Ref":"AWS::Region"} → "${AWS::Region}", {"Ref":"X"} → "${X}",
// {"Fn::GetAtt":["X","Arn"]} → "${X.Arn}", Fn::Join → the joined text.
func render(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			if ref, ok := v["Ref"].(string); ok {
				return "${" + ref + "}"
			}
			if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
				return fmt.Sprintf("${%v.%v}", ga[0], ga[1])
			}
			if sel, ok := v["Fn::Select"].([]any); ok && len(sel) == 2 {
				if sp, ok := sel[1].(map[string]any)["Fn::Split"].([]any); ok && len(sp) == 2 {
					return fmt.Sprintf("split(%v)[%v]", render(sp[1]), sel[0])
				}
			}
			if j, ok := v["Fn::Join"].([]any); ok && len(j) == 2 {
				var parts []string
				for _, p := range j[1].([]any) {
					parts = append(parts, fmt.Sprint(render(p)))
				}
				return strings.Join(parts, j[0].(string))
			}
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = render(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = render(e)
		}
		return out
	default:
		return v
	}
}

// strs reads a string-or-list-of-strings field (IAM's Action, Resource, condition values).
func strs(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		sort.Strings(out)
		return out
	default:
		return []string{fmt.Sprint(v)}
	}
}
