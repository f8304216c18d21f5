package awstest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// InitAllocations runs a built function once with GODEBUG=inittrace=1 and adds up what the
// initialisation of its packages allocated: counts that, unlike time on a shared machine, are
// the same in every run of one build. The runtime API it is given refuses connections, so the
// process ends at lambda.Start, as it asks for its first event. env is added to a minimal
// Lambda-like environment; out is what the process printed.
func InitAllocations(bin string, env ...string) (allocs, bytes int64, out []byte, err error) {
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"GODEBUG=inittrace=1", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_EC2_METADATA_DISABLED=true"}, env...)
	out, _ = cmd.CombinedOutput() // it fails at lambda.Start, by design
	for line := range strings.Lines(string(out)) {
		// init <package> @<t> ms, <t> ms clock, <n> bytes, <n> allocs
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" || f[10] != "allocs" {
			continue
		}
		b, err1 := strconv.ParseInt(f[7], 10, 64)
		a, err2 := strconv.ParseInt(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, out, fmt.Errorf("%s: unreadable inittrace line %q", bin, line)
		}
		bytes, allocs = bytes+b, allocs+a
	}
	if allocs == 0 {
		return 0, 0, out, fmt.Errorf("%s printed no package initialisation with GODEBUG=inittrace=1:\n%s", bin, out)
	}
	if !strings.Contains(string(out), "runtime/invocation/next") {
		return 0, 0, out, fmt.Errorf("%s did not reach lambda.Start:\n%s", bin, out)
	}
	return allocs, bytes, out, nil
}
