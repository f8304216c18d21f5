package rollout_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// The scenario suite runs, from one set of definitions, against every backend that speaks
// the AWS protocol: moto (a third-party emulator) and pinroll's own emulator.
var moto *awstest.Moto

func TestMain(m *testing.M) {
	// The fault matrix's cells (the package's only parallel tests) spend most of their time
	// waiting out client timeouts, not on a core: run 16 at once unless -parallel says otherwise.
	// Not when fuzzing: there -parallel is the number of fuzzing processes.
	flag.Parse()
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["test.parallel"] && !given["test.fuzz"] && !given["test.fuzzworker"] {
		_ = flag.Set("test.parallel", "16")
	}
	var err error
	moto, err = awstest.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario tests need moto_server:", err)
		os.Exit(1)
	}
	code := m.Run()
	moto.Close()
	os.Exit(code)
}

type backend struct {
	name string
	// start gives a fresh, empty world and returns its SDK configuration.
	start func(t *testing.T) aws.Config
}

func backends() []backend {
	return []backend{
		{"moto", func(t *testing.T) aws.Config {
			if err := moto.Reset(); err != nil {
				t.Fatal(err)
			}
			return awstest.Config(t, moto.URL)
		}},
		{"emulator", func(t *testing.T) aws.Config {
			srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			return awstest.Config(t, srv.URL())
		}},
	}
}

// eachBackend runs test once per backend, each in a fresh world.
func eachBackend(t *testing.T, test func(t *testing.T, cfg aws.Config)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, b.start(t)) })
	}
}

// onBackend runs test on the named backend only, for behaviour the other does not model.
func onBackend(t *testing.T, name string, test func(t *testing.T, cfg aws.Config)) {
	for _, b := range backends() {
		if b.name == name {
			t.Run(b.name, func(t *testing.T) { test(t, b.start(t)) })
		}
	}
}

// atHome makes e an engine running in awstest.Account, as the function in that account is.
func atHome(e *rollout.Engine) *rollout.Engine {
	e.SetHomeAccount(awstest.Account)
	return e
}
