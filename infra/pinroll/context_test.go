package pinroll

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

// GIVEN context as cdk.json gives it (typed) or as `-c` gives it (strings), THEN the same props.
func TestPropsFromContext(t *testing.T) {
	typed := map[string]any{
		CtxClusters: []any{"prod", "staging"}, CtxRepositories: []any{"app", "team-a/*"},
		CtxRequireOptIn: true, CtxDryRun: false, CtxRegistryAccounts: []any{"111122223333"},
		CtxPassRoles: []any{"app-*"}, CtxParameterPrefix: "/pinroll", CtxNotify: true,
		CtxNotificationEmail: "ops@example.com", CtxReconcileRate: "1 hour", CtxReservedConcurrency: 2.0,
		CtxStackName: "PinrollProd", "@aws-cdk/core:other-flag": true,
		CtxTargetRoles: []any{"arn:aws:iam::777788889999:role/pinroll-target-us-east-1"}, CtxLogRetentionDays: 731.0,
		CtxLogEncryption: false, CtxAlarmActions: false, CtxStack: "all", CtxHubRoleArn: "arn:aws:iam::999988887777:role/hub",
		CtxTargetRoleName: "deployer",
		CtxVpc:            map[string]any{"subnetIds": []any{"subnet-0aaaaaaaaaaaaaaaa"}, "securityGroupIds": []any{"sg-0dddddddddddddddd"}},
		CtxIndexTable:     false, CtxSlackWorkspaceID: "T0123ABCD", CtxSlackChannelID: "C0456EFGH",
		CtxTeamsTeamID: "5f3e1c2a-1111-4222-8333-944455556666", CtxTeamsChannelID: "19%3aabc%40thread.tacv2",
		CtxTeamsTenantID: "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd", CtxChatLoggingLevel: "INFO",
	}
	flags := map[string]any{
		CtxClusters: "prod, staging", CtxRepositories: "app,team-a/*",
		CtxRequireOptIn: "true", CtxDryRun: "false", CtxRegistryAccounts: "111122223333",
		CtxPassRoles: "app-*", CtxParameterPrefix: "/pinroll", CtxNotify: "true",
		CtxNotificationEmail: "ops@example.com", CtxReconcileRate: "1 hour", CtxReservedConcurrency: "2",
		CtxStackName:   "PinrollProd",
		CtxTargetRoles: "arn:aws:iam::777788889999:role/pinroll-target-us-east-1", CtxLogRetentionDays: "731",
		CtxLogEncryption: "false", CtxAlarmActions: "false", CtxStack: "all", CtxHubRoleArn: "arn:aws:iam::999988887777:role/hub",
		CtxTargetRoleName: "deployer", CtxVpc: "subnet-0aaaaaaaaaaaaaaaa,sg-0dddddddddddddddd",
		CtxIndexTable: "false", CtxSlackWorkspaceID: "T0123ABCD", CtxSlackChannelID: "C0456EFGH",
		CtxTeamsTeamID: "5f3e1c2a-1111-4222-8333-944455556666", CtxTeamsChannelID: "19%3aabc%40thread.tacv2",
		CtxTeamsTenantID: "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd", CtxChatLoggingLevel: "INFO",
	}
	for name, ctx := range map[string]map[string]any{"cdk.json": typed, "-c": flags} {
		cfg, err := PropsFromContext(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := *cfg.Props.ReconcileRate.ToMinutes(nil); got != 60 {
			t.Errorf("%s: reconcile rate %v minutes, want 60", name, got)
		}
		cfg.Props.ReconcileRate = nil
		want := StackConfig{StackName: "PinrollProd", Stacks: StackAll, Props: Props{
			Clusters: []string{"prod", "staging"}, Repositories: []string{"app", "team-a/*"}, RequireOptIn: true,
			RegistryAccounts: []string{"111122223333"}, PassRoles: []string{"app-*"}, ParameterPrefix: "/pinroll",
			Notify: true, NotificationEmail: "ops@example.com", ReservedConcurrency: 2,
			TargetRoles:  []string{"arn:aws:iam::777788889999:role/pinroll-target-us-east-1"},
			LogRetention: awslogs.RetentionDays_TWO_YEARS, NoLogEncryption: true, NoAlarmActions: true,
			Vpc:          &VpcConfig{SubnetIDs: []string{"subnet-0aaaaaaaaaaaaaaaa"}, SecurityGroupIDs: []string{"sg-0dddddddddddddddd"}},
			NoIndexTable: true,
			Chat: &ChatConfig{SlackWorkspaceID: "T0123ABCD", SlackChannelID: "C0456EFGH",
				TeamsTeamID: "5f3e1c2a-1111-4222-8333-944455556666", TeamsChannelID: "19%3aabc%40thread.tacv2",
				TeamsTenantID: "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd", LoggingLevel: "INFO"},
		}, Target: TargetProps{
			HubRoleArn: "arn:aws:iam::999988887777:role/hub", RoleName: "deployer",
			Clusters: []string{"prod", "staging"}, PassRoles: []string{"app-*"},
		}}
		if diff := cmp.Diff(want, cfg); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	cfg, err := PropsFromContext(map[string]any{CtxReconcileRate: "off"})
	if err != nil || !cfg.Props.DisableReconcile || cfg.StackName != DefaultStackName {
		t.Errorf("off: %+v %v", cfg, err)
	}
	// The Control Tower defaults hold when the keys are absent: a key, an alarm topic, the hub only.
	// The index table is on by default; no chat without its ids.
	if cfg.Props.NoLogEncryption || cfg.Props.NoAlarmActions || cfg.Stacks != StackHub || cfg.Props.Vpc != nil ||
		cfg.Props.NoIndexTable || cfg.Props.Chat != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	want := &VpcConfig{SubnetIDs: []string{"subnet-0aaaaaaaaaaaaaaaa"}, VpcID: "vpc-0cccccccccccccccc", Endpoints: true,
		RouteTableIDs: []string{"rtb-0eeeeeeeeeeeeeeee"}}
	for _, v := range []string{`{"subnetIds": ["subnet-0aaaaaaaaaaaaaaaa"], "vpcId": "vpc-0cccccccccccccccc", "endpoints": true, "routeTableIds": ["rtb-0eeeeeeeeeeeeeeee"]}`,
		"subnet-0aaaaaaaaaaaaaaaa, vpc-0cccccccccccccccc, rtb-0eeeeeeeeeeeeeeee, endpoints"} {
		cfg, err = PropsFromContext(map[string]any{CtxVpc: v})
		if err != nil || !cmp.Equal(want, cfg.Props.Vpc) {
			t.Errorf("vpc %s: %+v %v", v, cfg.Props.Vpc, err)
		}
	}

	_, err = PropsFromContext(map[string]any{
		"pinroll:cluster": "prod", CtxReconcileRate: "every 5 minutes", CtxReservedConcurrency: 0.5, CtxDryRun: "yes please",
		CtxLogRetentionDays: 42.0, CtxStack: "spoke", CtxVpc: "subnet-0aaaaaaaaaaaaaaaa,i-0123", CtxLogEncryption: "maybe",
	})
	for _, want := range []string{`unknown context key "pinroll:cluster"`, CtxReconcileRate, CtxReservedConcurrency, CtxDryRun,
		CtxLogRetentionDays + ": 42", CtxStack, CtxVpc, CtxLogEncryption} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// GIVEN bad props, THEN Validate names every problem at once.
func TestValidate(t *testing.T) {
	p := Props{
		Clusters: []string{"prod", "no spaces"}, Repositories: []string{"App"}, RegistryAccounts: []string{"123"},
		PassRoles: []string{"*"}, ParameterPrefix: "pinroll/", ReservedConcurrency: -1, CodePath: t.TempDir(),
		TargetRoles: []string{
			"arn:aws:iam::777788889999:role/a", "arn:aws:iam::777788889999:role/a", // twice
			"arn:aws:iam::777788889999:role/b",     // a second role in the same account
			"arn:aws:iam::123:role/c",              // not a 12-digit account
			"arn:aws:iam::222233334444:user/d",     // not a role
			"arn:aws:iam::222233334444:role/app-*", // a pattern
		},
		Vpc: &VpcConfig{SubnetIDs: []string{"subnet-x"}, Endpoints: true},
		Chat: &ChatConfig{SlackWorkspaceID: "T0123ABCD", TeamsTeamID: "not-a-uuid", TeamsChannelID: "general",
			TeamsTenantID: "0a1b2c3d-aaaa-4bbb-8ccc-dddddddddddd", LoggingLevel: "DEBUG"},
	}
	err := p.Validate()
	for _, want := range []string{`"no spaces"`, `"App"`, `"123"`, `PassRoles: "*"`, "ParameterPrefix", "ReservedConcurrency", "bootstrap is missing",
		`TargetRoles (pinroll:targetRoles): "arn:aws:iam::777788889999:role/a" is listed twice`,
		`"arn:aws:iam::777788889999:role/a" and "arn:aws:iam::777788889999:role/b" are both in account 777788889999`,
		`"arn:aws:iam::123:role/c" is not an IAM role ARN`, `"arn:aws:iam::222233334444:user/d" is not`, `"arn:aws:iam::222233334444:role/app-*" is not`,
		`Vpc: "subnet-x" is not a subnet id`, "Vpc: give SecurityGroupIDs, or VpcID", "Vpc: Endpoints needs the VpcID",
		"Vpc: Endpoints with the index table needs the subnets' RouteTableIDs",
		"give both the Slack workspace id and the channel id", `"not-a-uuid" is not a Teams team id`,
		`(pinroll:chatLoggingLevel): "DEBUG" is not ERROR, INFO or NONE`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// GIVEN a reserved concurrency below the continuation mapping's maximum concurrency, or a timeout
// outside Lambda's range, THEN Validate names the field, the value and the way out; 2 and 15
// minutes are accepted.
func TestValidateConcurrencyAndTimeout(t *testing.T) {
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    Props
		want string // "" for valid
	}{
		{Props{ReservedConcurrency: 1}, "ReservedConcurrency (pinroll:reservedConcurrency): 1 is below 2, the continuation queue's maximum concurrency"},
		{Props{ReservedConcurrency: -3}, "ReservedConcurrency (pinroll:reservedConcurrency): -3 is below 2"},
		{Props{ReservedConcurrency: 2}, ""},
		{Props{Timeout: awscdk.Duration_Minutes(jsii.Number(16))}, "Timeout: 960 seconds is not a whole number of seconds from 1 to 900"},
		{Props{Timeout: awscdk.Duration_Millis(jsii.Number(1500))}, "Timeout: 1.5 seconds is not a whole number of seconds"},
		{Props{Timeout: awscdk.Duration_Minutes(jsii.Number(15))}, ""},
	} {
		tc.p.CodePath = code
		err := tc.p.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.p, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want it to mention %q", tc.p, err, tc.want)
		}
	}
}

// GIVEN README "Deploy", THEN every context key the app reads is in its Configure table.
func TestREADMEDocumentsEveryContextKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "### Configure")
	end := strings.Index(readme[start:], "Example `cdk.json`")
	if start < 0 || end < 0 {
		t.Fatal(`README has no "### Configure" table`)
	}
	table := readme[start : start+end]
	for _, k := range contextKeys {
		if !strings.Contains(table, "`"+k+"`") {
			t.Errorf("README's Configure table does not document %s", k)
		}
	}
}
