package emulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// runningDigests returns, for each RUNNING task of a service, the imageDigest of the named container.
func runningDigests(t *testing.T, c *ecs.Client, cluster, service, container string) []string {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) == 0 {
		return nil
	}
	desc, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, task := range desc.Tasks {
		if aws.ToString(task.LastStatus) != "RUNNING" {
			continue // stopped between the two calls by a background deployment
		}
		for _, ct := range task.Containers {
			if aws.ToString(ct.Name) == container {
				digests = append(digests, aws.ToString(ct.ImageDigest))
			}
		}
	}
	return digests
}

func allEqual(got []string, want string, n int) bool {
	if len(got) != n {
		return false
	}
	for _, g := range got {
		if g != want {
			return false
		}
	}
	return true
}

// registerPinned registers a revision of the backend family whose app container is image.
func registerPinned(t *testing.T, c *ecs.Client, image string) string {
	t.Helper()
	ctx := context.Background()
	cur, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("backend:1")})
	if err != nil {
		t.Fatal(err)
	}
	td := cur.TaskDefinition
	containers := append([]types.ContainerDefinition(nil), td.ContainerDefinitions...)
	containers[0].Image = aws.String(image)
	out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: td.Family, ContainerDefinitions: containers, Cpu: td.Cpu, Memory: td.Memory,
		NetworkMode: td.NetworkMode, RequiresCompatibilities: td.RequiresCompatibilities,
		TaskRoleArn: td.TaskRoleArn, ExecutionRoleArn: td.ExecutionRoleArn,
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func TestIncidentNodesRunTheCachedImageThoughLatestMovedOn(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	ctx := context.Background()
	registryClient := ecrClient(srv.URL(), clientOptions{})
	latest, err := registryClient.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String("content-marketing-swarm-backend"),
		ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String("latest")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(latest.ImageDetails[0].ImageDigest); got != newImage {
		t.Fatalf("ECR latest = %s, want the fixed image %s", got, newImage)
	}
	c := ecsClient(srv.URL(), clientOptions{})
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, oldImage, 2) {
		t.Errorf("prod/api runs %v, want 2 tasks of the cached old image %s", got, oldImage)
	}
	if got := runningDigests(t, c, "prod", "worker", "worker"); !allEqual(got, oldImage, 1) {
		t.Errorf("prod/worker runs %v, want the cached old image", got)
	}
	if got := runningDigests(t, c, "dev", "api", "app"); !allEqual(got, devImage, 1) {
		t.Errorf("dev/api runs %v, want the dev image %s (no cache in dev)", got, devImage)
	}
	// A redeploy by tag changes nothing: the nodes still prefer their cached :latest.
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, oldImage, 2) {
		t.Errorf("after force-new-deployment prod/api runs %v, want still the cached %s", got, oldImage)
	}
	// Sidecars from other registries get a stable digest.
	desc, _ := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: mustListTasks(t, c, "prod", "api")})
	for _, ct := range desc.Tasks[0].Containers {
		if !strings.HasPrefix(aws.ToString(ct.ImageDigest), "sha256:") || len(aws.ToString(ct.ImageDigest)) != 71 {
			t.Errorf("container %s has imageDigest %q", aws.ToString(ct.Name), aws.ToString(ct.ImageDigest))
		}
	}
}

func mustListTasks(t *testing.T, c *ecs.Client, cluster, service string) []string {
	t.Helper()
	out, err := c.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})
	if err != nil {
		t.Fatal(err)
	}
	return out.TaskArns
}

func TestPinnedDeploymentRunsTheNewDigestAndReportsCompletion(t *testing.T) {
	var events eventLog
	srv := startIncident(t, emulator.Options{OnDeploymentEvent: events.sink})
	ctx := context.Background()
	c := ecsClient(srv.URL(), clientOptions{})
	arn := registerPinned(t, c, registry+"/content-marketing-swarm-backend:latest@"+newImage)
	up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(up.Service.TaskDefinition); got != arn {
		t.Errorf("service task definition = %s, want %s", got, arn)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, newImage, 2) {
		t.Errorf("prod/api runs %v, want 2 tasks of %s", got, newImage)
	}
	svc := describeService(t, c, "prod", "api")
	if len(svc.Deployments) != 1 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted || svc.RunningCount != 2 {
		t.Errorf("deployments = %+v, running %d; want one COMPLETED with 2 running", svc.Deployments, svc.RunningCount)
	}
	stopped, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("api"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(stopped.TaskArns) != 2 {
		t.Errorf("stopped tasks = %v (%v), want the 2 old ones", stopped, err)
	}

	srv.Emulator().Settle()
	evs := events.take()
	if len(evs) != 2 {
		t.Fatalf("events = %+v, want IN_PROGRESS then COMPLETED", evs)
	}
	done := evs[1]
	if done.DetailType != "ECS Deployment State Change" || done.Source != "aws.ecs" || done.Account != account ||
		done.Region != "us-east-1" || done.Detail.EventType != "INFO" || done.Detail.EventName != "SERVICE_DEPLOYMENT_COMPLETED" ||
		done.Detail.DeploymentID != aws.ToString(svc.Deployments[0].Id) ||
		len(done.Resources) != 1 || done.Resources[0] != "arn:aws:ecs:us-east-1:123456789012:service/prod/api" {
		t.Errorf("completed event = %+v", done)
	}
	if evs[0].Detail.EventName != "SERVICE_DEPLOYMENT_IN_PROGRESS" {
		t.Errorf("first event = %+v, want IN_PROGRESS", evs[0])
	}
}

func describeService(t *testing.T, c *ecs.Client, cluster, name string) types.Service {
	t.Helper()
	out, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("describe %s/%s: %+v", cluster, name, out.Failures)
	}
	return out.Services[0]
}

func TestMissingDigestFailsAndCircuitBreakerRollsBack(t *testing.T) {
	var events eventLog
	srv := startIncident(t, emulator.Options{OnDeploymentEvent: events.sink})
	ctx := context.Background()
	c := ecsClient(srv.URL(), clientOptions{})
	good := registerPinned(t, c, registry+"/content-marketing-swarm-backend:latest@"+newImage)
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(good)}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	events.take()

	missing := "sha256:" + strings.Repeat("d", 64)
	bad := registerPinned(t, c, registry+"/content-marketing-swarm-backend:latest@"+missing)
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(bad)}); err != nil {
		t.Fatal(err)
	}
	svc := describeService(t, c, "prod", "api")
	if got := aws.ToString(svc.TaskDefinition); got != good {
		t.Errorf("after rollback the service runs %s, want the previous revision %s", got, good)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, newImage, 2) {
		t.Errorf("after rollback prod/api runs %v, want %s again", got, newImage)
	}
	stopped, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("api"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: stopped.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	failedToStart := 0
	for _, task := range desc.Tasks {
		if aws.ToString(task.TaskDefinitionArn) == bad {
			failedToStart++
			if !strings.HasPrefix(aws.ToString(task.StoppedReason), "CannotPullContainerError") || task.StopCode != types.TaskStopCodeTaskFailedToStart {
				t.Errorf("failed task stopped with %q / %s", aws.ToString(task.StoppedReason), task.StopCode)
			}
		}
	}
	if failedToStart != 2 {
		t.Errorf("%d tasks of the bad revision failed to start, want 2", failedToStart)
	}

	srv.Emulator().Settle()
	evs := events.take()
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Detail.EventName)
	}
	want := "SERVICE_DEPLOYMENT_IN_PROGRESS SERVICE_DEPLOYMENT_FAILED SERVICE_DEPLOYMENT_IN_PROGRESS SERVICE_DEPLOYMENT_COMPLETED"
	if strings.Join(names, " ") != want {
		t.Fatalf("events %v, want %s", names, want)
	}
	failed, rollback := evs[1], evs[3]
	if failed.Detail.EventType != "ERROR" ||
		failed.Detail.Reason != "ECS deployment circuit breaker: tasks failed to start. Rolling back to deployment "+rollback.Detail.DeploymentID+"." {
		t.Errorf("failed event = %+v", failed.Detail)
	}
	if failed.Detail.DeploymentID == rollback.Detail.DeploymentID {
		t.Errorf("rollback reuses the failed deployment id %s", failed.Detail.DeploymentID)
	}
}

func TestFailedDeploymentWithoutRollbackKeepsOldTasks(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	ctx := context.Background()
	c := ecsClient(srv.URL(), clientOptions{})
	cur, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("backend-worker")})
	if err != nil {
		t.Fatal(err)
	}
	td := cur.TaskDefinition
	td.ContainerDefinitions[0].Image = aws.String(registry + "/content-marketing-swarm-backend:no-such-tag")
	reg, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: td.Family, ContainerDefinitions: td.ContainerDefinitions, Cpu: td.Cpu, Memory: td.Memory,
		NetworkMode: td.NetworkMode, RequiresCompatibilities: td.RequiresCompatibilities,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("worker"), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn}); err != nil {
		t.Fatal(err)
	}
	svc := describeService(t, c, "prod", "worker")
	if len(svc.Deployments) != 2 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateFailed ||
		aws.ToString(svc.Deployments[0].Status) != "PRIMARY" || aws.ToString(svc.Deployments[1].Status) != "ACTIVE" {
		t.Errorf("deployments = %+v, want a FAILED PRIMARY and the old ACTIVE one", svc.Deployments)
	}
	if got := runningDigests(t, c, "prod", "worker", "worker"); !allEqual(got, oldImage, 1) {
		t.Errorf("worker runs %v, want the old task still running", got)
	}
}

func TestCodeDeployServiceRefusesTaskDefinitionUpdate(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	_, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("legacy-codedeploy"), TaskDefinition: aws.String("backend:1")})
	wantCode(t, err, "InvalidParameterException")
}

func TestDelayedDeploymentCompletesInBackgroundOrOnSettle(t *testing.T) {
	var events eventLog
	srv := startIncident(t, emulator.Options{DeployDelay: time.Hour, OnDeploymentEvent: events.sink})
	ctx := context.Background()
	c := ecsClient(srv.URL(), clientOptions{})
	arn := registerPinned(t, c, registry+"/content-marketing-swarm-backend:latest@"+newImage)
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	svc := describeService(t, c, "prod", "api")
	if len(svc.Deployments) != 2 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress || svc.PendingCount != 2 {
		t.Fatalf("before settling: %+v", svc.Deployments)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, oldImage, 2) {
		t.Errorf("during the rollout the old tasks run: got %v", got)
	}
	srv.Emulator().Settle()
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, newImage, 2) {
		t.Errorf("after Settle prod/api runs %v", got)
	}
	if evs := events.take(); len(evs) != 2 || evs[1].Detail.EventName != "SERVICE_DEPLOYMENT_COMPLETED" {
		t.Errorf("events = %+v", evs)
	}

	fast := startIncident(t, emulator.Options{DeployDelay: 20 * time.Millisecond})
	fc := ecsClient(fast.URL(), clientOptions{})
	arn = registerPinned(t, fc, registry+"/content-marketing-swarm-backend:latest@"+newImage)
	if _, err := fc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allEqual(runningDigests(t, fc, "prod", "api", "app"), newImage, 2) {
		if time.Now().After(deadline) {
			t.Fatal("background deployment did not complete")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeploymentEventsArePostedToURL(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	srv := startIncident(t, emulator.Options{DeploymentEventURL: sink.URL + "/2015-03-31/functions/function/invocations"})
	c := ecsClient(srv.URL(), clientOptions{})
	if _, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("posted %d events, want 2: %v", len(bodies), bodies)
	}
	var ev deploymentEvent
	if err := json.Unmarshal([]byte(bodies[1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Detail.EventName != "SERVICE_DEPLOYMENT_COMPLETED" || ev.Resources[0] != "arn:aws:ecs:us-east-1:123456789012:service/dev/api" || !strings.HasPrefix(ev.Detail.DeploymentID, "ecs-svc/") {
		t.Errorf("posted event = %+v", ev)
	}
}

// A sink that calls back into the emulator must not deadlock it.
func TestEventSinkMayCallTheEmulator(t *testing.T) {
	var url string
	got := make(chan int, 4)
	srv := startIncident(t, emulator.Options{OnDeploymentEvent: func(ctx context.Context, _ []byte) {
		out, err := ecsClient(url, clientOptions{}).ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("dev")})
		if err == nil {
			got <- len(out.TaskArns)
		}
	}})
	url = srv.URL()
	c := ecsClient(url, clientOptions{})
	if _, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("sink never got an answer from the emulator")
	}
	srv.Emulator().Settle()
}
