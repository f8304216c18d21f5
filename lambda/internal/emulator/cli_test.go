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

// The AWS CLI v1 (botocore) must work unchanged with --endpoint-url.
func TestAWSCLIWorksAgainstTheEmulator(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the AWS CLI is not on PATH (pip install awscli): the protocol check needs it")
	}
	srv := startIncident(t, emulator.Options{})
	tasks := mustListTasks(t, ecsClient(srv.URL(), clientOptions{}), "prod", "api")
	home := t.TempDir()
	run := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", srv.URL(), "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(),
			"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home, "AWS_PAGER=")
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
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(awsCLI, "--endpoint-url", srv.URL(), "ecs", "describe-services", "--cluster", "nope", "--services", "api")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "ClusterNotFoundException") {
			t.Errorf("aws ecs describe-services on a missing cluster: %v\n%s", err, out)
		}
	})
	for _, tc := range []struct {
		name  string
		args  []string
		check func(m map[string]any) bool
	}{
		{"repositories", []string{"ecr", "describe-repositories"}, func(m map[string]any) bool {
			return len(m["repositories"].([]any)) == 3 // backend, dev-backend, multiarch-service
		}},
		{"images", []string{"ecr", "describe-images", "--repository-name", "content-marketing-swarm-backend", "--image-ids", "imageTag=latest"}, func(m map[string]any) bool {
			return m["imageDetails"].([]any)[0].(map[string]any)["imageDigest"] == newImage
		}},
		{"clusters", []string{"ecs", "list-clusters"}, func(m map[string]any) bool {
			return len(m["clusterArns"].([]any)) == 2
		}},
		{"task definition", []string{"ecs", "describe-task-definition", "--task-definition", "backend:1", "--include", "TAGS"}, func(m map[string]any) bool {
			td := m["taskDefinition"].(map[string]any)
			return td["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1" && len(m["tags"].([]any)) == 1
		}},
		{"services", []string{"ecs", "describe-services", "--cluster", "prod", "--services", "api", "worker"}, func(m map[string]any) bool {
			return len(m["services"].([]any)) == 2
		}},
		{"service list", []string{"ecs", "list-services", "--cluster", "prod"}, func(m map[string]any) bool {
			return len(m["serviceArns"].([]any)) == 4 // api, worker, legacy-codedeploy, storefront
		}},
		{"task definition defaults", []string{"ecs", "describe-task-definition", "--task-definition", "backend:1"}, func(m map[string]any) bool {
			app := m["taskDefinition"].(map[string]any)["containerDefinitions"].([]any)[0].(map[string]any)
			return app["cpu"] == float64(0) && len(app["mountPoints"].([]any)) == 0 && app["volumesFrom"] != nil
		}},
		{"cluster settings", []string{"ecs", "describe-clusters", "--clusters", "prod", "--include", "SETTINGS", "STATISTICS"}, func(m map[string]any) bool {
			cl := m["clusters"].([]any)[0].(map[string]any)
			return len(cl["settings"].([]any)) == 1 && len(cl["statistics"].([]any)) > 0
		}},
		{"account settings", []string{"ecs", "list-account-settings", "--effective-settings", "--name", "serviceLongArnFormat"}, func(m map[string]any) bool {
			return m["settings"].([]any)[0].(map[string]any)["value"] == "enabled"
		}},
		{"batch get failure", []string{"ecr", "batch-get-image", "--repository-name", "content-marketing-swarm-backend", "--image-ids", "imageDigest=sha256:zz"}, func(m map[string]any) bool {
			return m["failures"].([]any)[0].(map[string]any)["failureCode"] == "InvalidImageDigest"
		}},
		{"tasks", append([]string{"ecs", "describe-tasks", "--cluster", "prod", "--tasks"}, tasks...), func(m map[string]any) bool {
			containers := m["tasks"].([]any)[0].(map[string]any)["containers"].([]any)
			return containers[0].(map[string]any)["imageDigest"] == oldImage
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if m := run(t, tc.args...); !tc.check(m) {
				t.Errorf("aws %s: unexpected answer %v", strings.Join(tc.args, " "), m)
			}
		})
	}
}
