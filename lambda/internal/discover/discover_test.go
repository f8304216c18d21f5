package discover_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func emulated(t *testing.T) (*awstest.World, *emulator.Emulator, aws.Config) {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := awstest.Config(t, srv.URL())
	return awstest.NewWorld(t, cfg), srv.Emulator(), cfg
}

// Pagination is tested on pinroll's emulator, which pages and enforces limits as ECS does
// (moto returns everything in one page and accepts any batch size).
func TestDiscoverPagesThroughEverything(t *testing.T) {
	w, emu, cfg := emulated(t)
	for i := range 120 {
		w.Cluster(fmt.Sprintf("c%03d", i))
	}
	td := w.TaskDefinition("app", awstest.Container("app", "nginx"))
	for i := range 250 {
		w.Service("c000", fmt.Sprintf("svc-%03d", i), td)
	}
	emu.ResetCalls()

	ops := &awstest.Operations{}
	d := discover.New(ecs.NewFromConfig(ops.Wrap(cfg)))
	f, err := d.Discover(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 250 {
		t.Errorf("discovered %d services, want 250", len(f.Services))
	}
	seen := map[string]bool{}
	for _, s := range f.Services {
		if seen[s.ARN] {
			t.Errorf("service %s discovered twice", s.ARN)
		}
		seen[s.ARN] = true
	}
	// 120 clusters: 2 pages of 100. 250 services in c000: 3 pages; 119 empty clusters: 1 each.
	// 250 services: 25 DescribeServices of 10. One task definition: 1 describe. Counted as
	// discovery calls them (a loaded machine's SDK retry once made the emulator see 123
	// ListServices for 122 calls); the emulator saw at least as many.
	want := map[string]int{"ListClusters": 2, "ListServices": 3 + 119, "DescribeServices": 25, "DescribeTaskDefinition": 1}
	served := emu.Calls()
	for op, n := range want {
		if got := ops.Count(op); got != n || served[op] < n {
			t.Errorf("%s called %d times (the emulator served %d), want %d", op, got, served[op], n)
		}
	}
}

// The emulator refuses more than 10 services a DescribeServices call, as ECS does; this
// proves it, so the test above would fail if discovery ever asked for more.
func TestDescribeServicesLimitIsEnforced(t *testing.T) {
	w, _, cfg := emulated(t)
	w.Cluster("prod")
	names := make([]string, 11)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	_, err := ecs.NewFromConfig(cfg).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: names})
	if err == nil {
		t.Fatal("DescribeServices with 11 services succeeded; the emulator must refuse it like ECS")
	}
}

func TestTaskDefinitionsAreDescribedOnceThenCached(t *testing.T) {
	w, emu, cfg := emulated(t)
	w.Cluster("prod")
	shared := w.TaskDefinition("shared", awstest.Container("app", "nginx"))
	w.Service("prod", "a", shared)
	w.Service("prod", "b", shared)
	w.Service("prod", "c", w.TaskDefinition("own", awstest.Container("app", "nginx")))
	d := discover.New(ecs.NewFromConfig(cfg))

	emu.ResetCalls()
	if _, err := d.Discover(context.Background(), []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if n := emu.Calls()["DescribeTaskDefinition"]; n != 2 {
		t.Errorf("cold: %d DescribeTaskDefinition calls, want 2 (one per distinct task definition)", n)
	}
	emu.ResetCalls()
	f, err := d.Discover(context.Background(), []string{"prod"})
	if err != nil {
		t.Fatal(err)
	}
	if n := emu.Calls()["DescribeTaskDefinition"]; n != 0 {
		t.Errorf("warm: %d DescribeTaskDefinition calls, want 0", n)
	}
	if len(f.TaskDefinitions) != 2 || d.Cache.Len() != 2 {
		t.Errorf("warm fleet has %d task definitions, cache %d; want 2 and 2", len(f.TaskDefinitions), d.Cache.Len())
	}
}

func TestUnknownClusterIsAnErrorNamingIt(t *testing.T) {
	_, _, cfg := emulated(t)
	_, err := discover.New(ecs.NewFromConfig(cfg)).Discover(context.Background(), []string{"nope"})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error %v, want one naming the cluster", err)
	}
}
