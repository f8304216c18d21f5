package emulator_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// botocore speaks the query protocol its own way (STS, SNS) and signs with session tokens; the CLI
// must see the assumed account and publish as the SDK does.
func TestAWSCLIAssumesRolesAndPublishes(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the AWS CLI is not on PATH (pip install awscli): the protocol check needs it")
	}
	srv := start(t, emulator.Options{})
	home := t.TempDir()
	run := func(t *testing.T, creds []string, args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", srv.URL(), "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), append(creds, "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home, "AWS_PAGER=")...)
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("aws %s printed %s", strings.Join(args, " "), out)
		}
		return m
	}
	base := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN="}

	out := run(t, base, "sts", "assume-role", "--role-arn", roleARN(devAccount), "--role-session-name", "cli", "--duration-seconds", "900")
	c := out["Credentials"].(map[string]any)
	if _, ok := c["Expiration"].(string); !ok {
		t.Errorf("assume-role printed %v", out)
	}
	role := []string{"AWS_ACCESS_KEY_ID=" + c["AccessKeyId"].(string), "AWS_SECRET_ACCESS_KEY=" + c["SecretAccessKey"].(string), "AWS_SESSION_TOKEN=" + c["SessionToken"].(string)}
	if who := run(t, role, "sts", "get-caller-identity"); who["Account"] != devAccount || who["Arn"] != "arn:aws:sts::"+devAccount+":assumed-role/pinroll-target/cli" {
		t.Errorf("get-caller-identity with the role's credentials: %v", who)
	}
	created := run(t, role, "ecs", "create-cluster", "--cluster-name", "dev")
	if arn := created["cluster"].(map[string]any)["clusterArn"]; arn != "arn:aws:ecs:us-east-1:"+devAccount+":cluster/dev" {
		t.Errorf("cluster created with the role's credentials: %v", arn)
	}
	if clusters := run(t, base, "ecs", "list-clusters"); len(clusters["clusterArns"].([]any)) != 0 {
		t.Errorf("the default account sees dev's cluster: %v", clusters)
	}

	topic := run(t, base, "sns", "create-topic", "--name", "pinroll-notify")["TopicArn"].(string)
	pub := run(t, base, "sns", "publish", "--topic-arn", topic, "--subject", "pinroll: deployed", "--message", "hello",
		"--message-attributes", `{"outcome":{"DataType":"String","StringValue":"deployed"}}`)
	got := srv.Emulator().Published()
	if len(got) != 1 || got[0].MessageID != pub["MessageId"] || got[0].Subject != "pinroll: deployed" || got[0].Message != "hello" ||
		got[0].Attributes["outcome"].StringValue != "deployed" {
		t.Errorf("published through the CLI: %+v (answered %v)", got, pub)
	}

	cmd := exec.Command(awsCLI, "--endpoint-url", srv.URL(), "sts", "assume-role", "--role-arn", "arn:aws:iam::1:user/x-long-enough", "--role-session-name", "cli")
	cmd.Env = append(os.Environ(), append(base, "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "HOME="+home)...)
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "ValidationError") {
		t.Errorf("assume-role of a user ARN: %v\n%s", err, msg)
	}
}
