package pinroll

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cfnGuard is the binary @cdklabs/cdk-validator-cfnguard ships (package.json), and its Control
// Tower rules.
func cfnGuard(t *testing.T) (bin, rules string) {
	t.Helper()
	pkg := filepath.Join("..", "..", "node_modules", "@cdklabs", "cdk-validator-cfnguard")
	osDir, arch := "ubuntu", map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if runtime.GOOS == "darwin" {
		osDir = "macos"
	}
	bin = filepath.Join(pkg, "bin", osDir, arch, "cfn-guard")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("cfn-guard is not installed (npm ci installs @cdklabs/cdk-validator-cfnguard): %v", err)
	}
	return bin, filepath.Join(pkg, "rules", "control-tower", "cfn-guard")
}

var guardLine = regexp.MustCompile(`(?m)^(ct-[a-z0-9-]+)\.guard/\S+\s+(PASS|FAIL|SKIP)$`)

// GIVEN every synthesized template, WHEN Control Tower's proactive controls run over it, THEN none
// fails but CT.LAMBDA.PR.3 for a function outside a VPC (optional: README "Deploy"); the VPC
// variants pass it, and every template passes some rules (the run is real).
func TestControlTowerGuard(t *testing.T) {
	bin, rules := cfnGuard(t)
	full, min := fixtures(t)
	vpc, tf, tm := more(t)
	for _, tc := range []struct {
		s      *synthesized
		failed []string
	}{{full, nil}, {min, []string{"ct-lambda-pr-3"}}, {vpc, nil}, {tf, nil}, {tm, nil},
		// Without the log key: its log group fails PR.3 as README says; the table still passes
		// CT.DYNAMODB.PR.2 with DynamoDB's AWS-managed key.
		{noKey(t), []string{"ct-cloudwatch-pr-3", "ct-lambda-pr-3"}}} {
		name := *tc.s.stack.StackName()
		f := filepath.Join(t.TempDir(), name+".template.json")
		b, _ := json.Marshal(tc.s.raw)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(bin, "validate", "-d", f, "-r", rules, "-S", "all").CombinedOutput()
		count := map[string]int{}
		var failed []string
		for _, m := range guardLine.FindAllStringSubmatch(string(out), -1) {
			count[m[2]]++
			if m[2] == "FAIL" {
				failed = append(failed, m[1])
			}
		}
		sort.Strings(failed)
		if diff := cmp.Diff(tc.failed, failed); diff != "" {
			t.Errorf("%s: failed controls (-want +got):\n%s", name, diff)
		}
		if count["PASS"] == 0 {
			t.Errorf("%s: no control passed: %s", name, out)
		}
		t.Logf("%s: %d passed, %d failed, %d not applicable", name, count["PASS"], count["FAIL"], count["SKIP"])
	}
}
