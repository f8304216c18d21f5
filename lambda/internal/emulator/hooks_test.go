package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func TestInjectedThrottleIsRetriedBySDK(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	em := srv.Emulator()
	em.InjectFault("ListClusters", emulator.Fault{Kind: emulator.Throttle}, 1)
	out, err := ecsClient(srv.URL(), clientOptions{}).ListClusters(context.Background(), &ecs.ListClustersInput{})
	if err != nil || len(out.ClusterArns) != 2 {
		t.Fatalf("after one throttle the SDK's retry should succeed: %v %v", out, err)
	}
	if got := em.Calls()["ListClusters"]; got != 2 {
		t.Errorf("ListClusters called %d times, want 2 (throttled + retried)", got)
	}
	log := em.CallLog()
	if len(log) != 2 || log[0].Error != "ThrottlingException" || log[1].Error != "" || log[0].Service != "ecs" {
		t.Errorf("call log = %+v", log)
	}
}

func TestInjectedServerErrorPersistsUntilCleared(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	em := srv.Emulator()
	em.InjectFault("DescribeServices", emulator.Fault{Kind: emulator.ServerError}, -1)
	c := ecsClient(srv.URL(), clientOptions{})
	_, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
	wantCode(t, err, "ServerException")
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
		t.Errorf("status: %v", err)
	}
	if got := em.Calls()["DescribeServices"]; got != 3 {
		t.Errorf("DescribeServices called %d times, want 3 (the SDK's default attempts)", got)
	}
	em.InjectFault("DescribeServices", emulator.Fault{}, 0)
	if _, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}}); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}

func TestInjectedTimeoutOutlastsTheClient(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	srv.Emulator().InjectFault("", emulator.Fault{Kind: emulator.Timeout, Delay: 10 * time.Second}, 1)
	c := ecsClient(srv.URL(), clientOptions{maxAttempts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the client's deadline", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	if _, err := c.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String("prod")}); err != nil {
		t.Errorf("the fault was used up, yet: %v", err)
	}
}

func TestInjectedResetDropsTheConnection(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	em := srv.Emulator()
	c := ecsClient(srv.URL(), clientOptions{maxAttempts: 1})
	before := aws.ToString(describeService(t, c, "dev", "api").Deployments[0].Id)
	em.InjectFault("UpdateService", emulator.Fault{Kind: emulator.Reset}, 1)
	_, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true})
	if err == nil || errorCode(err) != "" {
		t.Fatalf("err = %v, want a transport error without an AWS answer", err)
	}
	if svc := describeService(t, c, "dev", "api"); len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Id) != before {
		t.Errorf("a reset call must not change state: %+v", svc.Deployments)
	}
	if _, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true}); err != nil {
		t.Errorf("after the reset: %v", err)
	}
}

func TestLatencyDelaysOnlyTheNamedOperation(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	srv.Emulator().SetLatency("ListClusters", 150*time.Millisecond)
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	began := time.Now()
	if _, err := c.ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Errorf("ListClusters took %s, want at least 150ms", took)
	}
	began = time.Now()
	if _, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("ListServices took %s, want no added latency", took)
	}
}

func TestThrottleBucketsFollowECSRates(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	em := srv.Emulator()
	clock := emulator.NewManualClock(time.Unix(1700000000, 0))
	em.EnableThrottling(clock)
	c := ecsClient(srv.URL(), clientOptions{maxAttempts: 1})
	ctx := context.Background()
	register := func() error {
		_, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("burst"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("x"), Image: aws.String("busybox"), Memory: aws.Int32(128)}}})
		return err
	}
	for i := range 20 {
		if err := register(); err != nil {
			t.Fatalf("call %d of the burst of 20: %v", i+1, err)
		}
	}
	wantCode(t, register(), "ThrottlingException")
	clock.Advance(999 * time.Millisecond)
	wantCode(t, register(), "ThrottlingException")
	clock.Advance(time.Millisecond)
	if err := register(); err != nil {
		t.Errorf("one token a second: %v", err)
	}
	wantCode(t, register(), "ThrottlingException")

	describe := func() error {
		_, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
		return err
	}
	for i := range 100 {
		if err := describe(); err != nil {
			t.Fatalf("DescribeServices %d of 100: %v", i+1, err)
		}
	}
	wantCode(t, describe(), "ThrottlingException")
	clock.Advance(50 * time.Millisecond) // 20 a second
	if err := describe(); err != nil {
		t.Errorf("after 50ms: %v", err)
	}
	// ListServices has its own bucket.
	if _, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")}); err != nil {
		t.Errorf("ListServices: %v", err)
	}
	em.DisableThrottling()
	if err := register(); err != nil {
		t.Errorf("throttling disabled: %v", err)
	}
}

func TestCallCountsAndLog(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	em := srv.Emulator()
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	_, _ = c.ListClusters(ctx, &ecs.ListClustersInput{})
	_, _ = c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
	_, _ = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true})
	_, _ = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/dev"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	calls := em.Calls()
	if calls["ListClusters"] != 1 || calls["DescribeServices"] != 1 || calls["UpdateService"] != 1 || calls["TagResource"] != 1 || len(calls) != 4 {
		t.Errorf("calls = %v", calls)
	}
	var mutating []string
	for _, call := range em.CallLog() {
		if call.Mutating {
			mutating = append(mutating, call.Op)
		}
		if call.Time.IsZero() {
			t.Errorf("call without time: %+v", call)
		}
	}
	if len(mutating) != 2 || mutating[0] != "UpdateService" || mutating[1] != "TagResource" {
		t.Errorf("mutating calls = %v", mutating)
	}
	em.ResetCalls()
	if len(em.Calls()) != 0 || len(em.CallLog()) != 0 {
		t.Error("ResetCalls kept something")
	}
}
