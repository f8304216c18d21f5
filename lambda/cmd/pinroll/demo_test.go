package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
)

// `make demo`, the README's first command, passes from this checkout: the incident is seen,
// fixed by the replayed push, verified, and the look-alike service is left alone.
func TestMakeDemo(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command("make", "--no-print-directory", "demo", "DEMO_ADDR="+addr)
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
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
		if !strings.Contains(string(out), want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out)
		}
	}
}
