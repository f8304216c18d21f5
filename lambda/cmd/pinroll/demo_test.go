package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// freeAddr returns a loopback address nothing listens on (for a moment), below Linux's
// ephemeral range (32768–60999), so that the many connections and port-0 listeners of tests
// running in parallel do not take it before make binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// makeCmd runs make in the repository root with the shell's environment plus env.
func makeCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// `make demo`, the README's first command, passes from this checkout — also from a shell set
// up for another region and a profile that does not exist here: the incident is seen, fixed
// by the replayed push, verified, and the look-alike service is left alone.
func TestMakeDemo(t *testing.T) {
	for name, env := range map[string][]string{
		"this shell":                          nil,
		"another region, no such AWS profile": {"AWS_REGION=eu-west-1", "AWS_DEFAULT_REGION=eu-west-1", "AWS_PROFILE=nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := makeCmd(t, env, "demo", "DEMO_ADDR="+freeAddr(t))
			if err != nil {
				t.Fatalf("make demo: %v\n%s", err, out)
			}
			for _, want := range []string{
				"MISMATCH: 3 of 3 checks failed",
				"DEPLOYED  2 services in 1 cluster now pinned to sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d",
				"near miss, not touched: 123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-dev-backend:latest",
				"dev/api  backend-dev:1",
				"demo: OK",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("make demo output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// make demo-org is the organisation's story; it checks itself (every task in every account
// and region on the pushed digest, the look-alike untouched) and fails otherwise. The push
// rolls out in two waves: the dev account, then — after dev's deployment is verified — prod.
func TestMakeDemoOrg(t *testing.T) {
	out, err := makeCmd(t, []string{"AWS_REGION=eu-west-1", "AWS_PROFILE=nonexistent"}, "demo-org", "ORG_ADDR="+freeAddr(t))
	if err != nil {
		t.Fatalf("make demo-org: %v\n%s", err, out)
	}
	const digest = "sha256:51914e70739b31d8857a8ce174fb50cd3af72dc511cc94dde2c3fe121c779594"
	for _, want := range []string{
		"0002-ecr-replication-action-111111111111-us-west-2.json",
		// Wave 0, the dev account, first; prod (pinroll:wave=1) registered and held...
		"DEPLOYED  1 service in 1 cluster now pinned to " + digest + "; 1 service waits for an approval or a wave (see held)",
		"333333333333 prod/api        HELD: wave 1 waits for wave 0, deployed now, to be verified; shop-api:2 (" + digest + ") is registered and held",
		// ...until dev's deployment event verifies its tasks and deploys prod.
		"VERIFIED  dev/api: every running container checked (1) runs the digest it should; next wave deployed: 1 service (see changes)",
		"111111111111.dkr.ecr.us-west-2.amazonaws.com/shop/api:latest@" + digest,
		"(the replica from 111111111111 in us-east-1)",
		"every api task of 333333333333 in us-west-2 runs " + digest,
		"222222222222 dev/lookalike   near miss, not touched",
		"demo-org: OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("make demo-org output lacks %q:\n%s", want, out)
		}
	}
}

// A busy demo port is named as DEMO_ADDR, with what to type instead — the demo does not talk
// to whatever listens there.
func TestMakeDemoOnABusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := makeCmd(t, nil, "demo", "DEMO_ADDR="+l.Addr().String())
	if err == nil || !strings.Contains(out, "demo: DEMO_ADDR="+l.Addr().String()+" is already in use") || !strings.Contains(out, "make demo DEMO_ADDR=") {
		t.Errorf("make demo on a busy port: %v\n%s", err, out)
	}
}

// `make invoke` runs an event through the built function under the Lambda Runtime Interface
// Emulator against a fresh emulator, and prints the function's answer.
func TestMakeInvoke(t *testing.T) {
	out, err := makeCmd(t, []string{"AWS_REGION=eu-west-1", "AWS_PROFILE=nonexistent"}, "invoke", "EVENT=events/push-tagged.json")
	if err != nil {
		t.Fatalf("make invoke: %v\n%s", err, out)
	}
	for _, want := range []string{`"event_id":"5f1c8a3e-2b7d-4e9f-8a61-0c3d2e4f5a6b"`, `"outcome":"deployed"`, `"service":"worker"`} {
		if !strings.Contains(out, want) {
			t.Errorf("make invoke output lacks %s:\n%s", want, out)
		}
	}
	out, err = makeCmd(t, nil, "invoke", "EVENT=events/nope.json")
	if err == nil || !strings.Contains(out, "invoke: EVENT=events/nope.json cannot be read") {
		t.Errorf("make invoke EVENT=events/nope.json: %v\n%s", err, out)
	}
}
