package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromEnv(t *testing.T) {
	got, err := FromEnv([]string{
		"HOME=/root",
		"PINROLL_CLUSTERS=prod, arn:aws:ecs:us-east-1:123456789012:cluster/staging,prod",
		"PINROLL_DRY_RUN=true",
		"PINROLL_REQUIRE_OPT_IN=false",
		"PINROLL_REGISTRY_ACCOUNTS=123456789012,210987654321",
		"PINROLL_NOTIFY_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:pinroll",
		"PINROLL_PARAMETER_PREFIX=/pinroll/images",
		"PINROLL_TARGET_ROLES=arn:aws:iam::222222222222:role/pinroll-target, arn:aws:iam::333333333333:role/ops/pinroll-target",
		"PINROLL_INDEX_TABLE=pinroll-Index_1.v2",
		"PINROLL_CONTINUE_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/pinroll-continue.fifo",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Clusters:         []string{"prod", "arn:aws:ecs:us-east-1:123456789012:cluster/staging"},
		DryRun:           true,
		RegistryAccounts: []string{"123456789012", "210987654321"},
		NotifyTopicARN:   "arn:aws:sns:us-east-1:123456789012:pinroll",
		ParameterPrefix:  "/pinroll/images",
		TargetRoles:      []string{"arn:aws:iam::222222222222:role/pinroll-target", "arn:aws:iam::333333333333:role/ops/pinroll-target"},
		IndexTable:       "pinroll-Index_1.v2",
		ContinueQueue:    "https://sqs.us-east-1.amazonaws.com/123456789012/pinroll-continue.fifo",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestFromEnvDefaults(t *testing.T) {
	got, err := FromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Config{}, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestFromEnvRejects(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string // must appear in the error
	}{
		{"PINROLL_DRYRUN=true", "PINROLL_DRYRUN: unknown variable"},
		{"PINROLL_DRY_RUN=yes", `PINROLL_DRY_RUN="yes"`},
		{"PINROLL_REQUIRE_OPT_IN=1x", `PINROLL_REQUIRE_OPT_IN="1x"`},
		{"PINROLL_CLUSTERS=prod,bad name", `"bad name" is not a cluster name or ARN`},
		{"PINROLL_REGISTRY_ACCOUNTS=12345", `"12345" is not a 12-digit account id`},
		{"PINROLL_NOTIFY_TOPIC_ARN=pinroll", "not an SNS topic ARN"},
		{"PINROLL_PARAMETER_PREFIX=pinroll/", "want a parameter path"},
		{"PINROLL_PARAMETER_PREFIX=/aws/x", "want a parameter path"},
		{"PINROLL_TARGET_ROLES=pinroll-target", `"pinroll-target" is not an IAM role ARN`},
		{"PINROLL_TARGET_ROLES=arn:aws:iam::2222:role/x", `"arn:aws:iam::2222:role/x" is not an IAM role ARN`},
		{"PINROLL_TARGET_ROLES=arn:aws:iam::222222222222:user/x", "is not an IAM role ARN"},
		{"PINROLL_TARGET_ROLES=arn:aws:iam::222222222222:role/a,arn:aws:iam::222222222222:role/b", "are both in account 222222222222"},
		{"PINROLL_INDEX_TABLE=ab", `PINROLL_INDEX_TABLE="ab": not a DynamoDB table name`},
		{"PINROLL_INDEX_TABLE=" + strings.Repeat("t", 256), "not a DynamoDB table name"},
		{"PINROLL_INDEX_TABLE=pinroll index", "not a DynamoDB table name"},
		{"PINROLL_INDEX_TABLE=arn:aws:dynamodb:us-east-1:123456789012:table/pinroll", "a name, not an ARN"},
		{"PINROLL_CONTINUE_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/pinroll-continue", "not the URL of an SQS FIFO queue"},
		{"PINROLL_CONTINUE_QUEUE_URL=pinroll-continue.fifo", "not the URL of an SQS FIFO queue"},
		{"PINROLL_CONTINUE_QUEUE_URL=arn:aws:sqs:us-east-1:123456789012:pinroll-continue.fifo", "not the URL of an SQS FIFO queue"},
		{"PINROLL_CONTINUE_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/1234/pinroll-continue.fifo", "not the URL of an SQS FIFO queue"},
		{"PINROLL_CONTINUE_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/" + strings.Repeat("q", 76) + ".fifo", "not the URL of an SQS FIFO queue"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := FromEnv([]string{tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("FromEnv(%q) error = %v, want it to contain %q", tc.env, err, tc.want)
			}
		})
	}
}

func TestFromEnvReportsEveryProblem(t *testing.T) {
	_, err := FromEnv([]string{"PINROLL_DRY_RUN=maybe", "PINROLL_TYPO=1"})
	if err == nil || !strings.Contains(err.Error(), "PINROLL_DRY_RUN") || !strings.Contains(err.Error(), "PINROLL_TYPO") {
		t.Fatalf("want both problems named, got %v", err)
	}
}

func TestRegistryAllowed(t *testing.T) {
	def := Config{}
	if !def.RegistryAllowed("123456789012", "123456789012") || def.RegistryAllowed("210987654321", "123456789012") {
		t.Error("default: only the home account may be deployed")
	}
	listed := Config{RegistryAccounts: []string{"210987654321"}}
	if !listed.RegistryAllowed("210987654321", "123456789012") || listed.RegistryAllowed("123456789012", "123456789012") {
		t.Error("listed: exactly the listed accounts may be deployed")
	}
}

func TestIndexTableNames(t *testing.T) {
	for _, name := range []string{"abc", strings.Repeat("t", 255), "pinroll.index-1_A", ""} {
		got, err := FromEnv([]string{"PINROLL_INDEX_TABLE=" + name})
		if err != nil || got.IndexTable != name {
			t.Errorf("PINROLL_INDEX_TABLE=%q: %q, %v", name, got.IndexTable, err)
		}
	}
}

func TestContinueQueueURLs(t *testing.T) {
	for _, url := range []string{
		"https://sqs.eu-west-1.amazonaws.com/123456789012/c.fifo",
		"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/pinroll_continue-1.fifo",
		"http://127.0.0.1:4566/123456789012/pinroll-continue.fifo", // moto and the emulator, locally
		"https://sqs.us-east-1.amazonaws.com/123456789012/" + strings.Repeat("q", 75) + ".fifo",
	} {
		got, err := FromEnv([]string{EnvContinueQueue + "=" + url})
		if err != nil || got.ContinueQueue != url {
			t.Errorf("%s=%q: %q, %v", EnvContinueQueue, url, got.ContinueQueue, err)
		}
	}
}

func TestKnownListsEveryVariable(t *testing.T) {
	for _, k := range Known() {
		var c Config
		if err := c.set(k, ""); err != nil {
			t.Errorf("%s is in Known() but not read: %v", k, err)
		}
	}
	if !slices.Contains(Known(), EnvIndexTable) {
		t.Errorf("Known() = %v, without %s", Known(), EnvIndexTable)
	}
}
