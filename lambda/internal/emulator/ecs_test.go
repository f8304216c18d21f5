package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func richTaskDefinition() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String("rich"),
		TaskRoleArn:             aws.String("arn:aws:iam::123456789012:role/task"),
		ExecutionRoleArn:        aws.String("arn:aws:iam::123456789012:role/exec"),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String("512"),
		Memory:                  aws.String("1024"),
		PidMode:                 types.PidModeTask,
		EnableFaultInjection:    aws.Bool(true),
		EphemeralStorage:        &types.EphemeralStorage{SizeInGiB: 30},
		RuntimePlatform:         &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64, OperatingSystemFamily: types.OSFamilyLinux},
		Volumes:                 []types.Volume{{Name: aws.String("scratch")}},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:              aws.String("app"),
			Image:             aws.String(registry + "/app:latest"),
			Essential:         aws.Bool(true),
			Cpu:               256,
			Memory:            aws.Int32(512),
			MemoryReservation: aws.Int32(256),
			Command:           []string{"serve", "--port", "8000"},
			Environment:       []types.KeyValuePair{{Name: aws.String("EMPTY"), Value: aws.String("")}, {Name: aws.String("A"), Value: aws.String("1")}},
			Secrets:           []types.Secret{{Name: aws.String("DB"), ValueFrom: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/db")}},
			PortMappings:      []types.PortMapping{{ContainerPort: aws.Int32(8000), Protocol: types.TransportProtocolTcp}},
			MountPoints:       []types.MountPoint{{SourceVolume: aws.String("scratch"), ContainerPath: aws.String("/tmp")}},
			LogConfiguration:  &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/rich"}},
			HealthCheck:       &types.HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: aws.Int32(10)},
			Ulimits:           []types.Ulimit{{Name: types.UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}},
			DockerLabels:      map[string]string{"team": "content"},
		}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("content")}},
	}
}

func TestRegisterDescribeTaskDefinitionRoundTripsEveryField(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	in := richTaskDefinition()
	reg, err := c.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(reg.TaskDefinition.TaskDefinitionArn); got != "arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1" {
		t.Errorf("arn = %s", got)
	}
	for _, ref := range []string{"rich", "rich:1", "arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1"} {
		out, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
		if err != nil {
			t.Fatalf("describe %s: %v", ref, err)
		}
		td := out.TaskDefinition
		back := &ecs.RegisterTaskDefinitionInput{
			Family: td.Family, TaskRoleArn: td.TaskRoleArn, ExecutionRoleArn: td.ExecutionRoleArn, NetworkMode: td.NetworkMode,
			RequiresCompatibilities: td.RequiresCompatibilities, Cpu: td.Cpu, Memory: td.Memory, PidMode: td.PidMode,
			EnableFaultInjection: td.EnableFaultInjection, EphemeralStorage: td.EphemeralStorage, RuntimePlatform: td.RuntimePlatform,
			Volumes: td.Volumes, ContainerDefinitions: td.ContainerDefinitions, Tags: out.Tags,
		}
		// What ECS fills in (see TestRegisterTaskDefinitionFillsInECSDefaults) is the only difference.
		want := richTaskDefinition()
		want.ContainerDefinitions[0].PortMappings[0].HostPort = aws.Int32(8000)
		want.ContainerDefinitions[0].VolumesFrom = []types.VolumeFrom{}
		if diff := cmp.Diff(jsonOf(t, want), jsonOf(t, back)); diff != "" {
			t.Errorf("describe %s (-registered +described):\n%s", ref, diff)
		}
		if td.Status != types.TaskDefinitionStatusActive || td.Revision != 1 || td.RegisteredAt == nil ||
			len(td.Compatibilities) != 2 || len(td.RequiresAttributes) == 0 {
			t.Errorf("ECS-added fields: status %s revision %d registeredAt %v compatibilities %v requiresAttributes %v",
				td.Status, td.Revision, td.RegisteredAt, td.Compatibilities, td.RequiresAttributes)
		}
	}
	if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("rich:1")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("rich:1")})
	if err != nil || out.TaskDefinition.Status != types.TaskDefinitionStatusInactive || out.TaskDefinition.DeregisteredAt == nil {
		t.Errorf("deregistered revision: %+v %v", out, err)
	}
	_, err = c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("rich")})
	wantCode(t, err, "ClientException")
}

func jsonOf(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// post sends one raw AWS JSON 1.1 request and returns status, error type header and body.
func post(t *testing.T, url, target, body string) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("answer is not JSON: %s", data)
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), m
}

// Fields the emulator has never heard of come back verbatim: it stores the input, not a subset.
func TestTaskDefinitionKeepsUnknownFieldsVerbatim(t *testing.T) {
	srv := start(t, emulator.Options{})
	status, _, _ := post(t, srv.URL(), "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
		`{"family":"future","containerDefinitions":[{"name":"a","image":"nginx","memory":128,"someFutureField":{"x":[1,2]}}],"futureTopLevel":"kept"}`)
	if status != 200 {
		t.Fatalf("register: %d", status)
	}
	_, _, out := post(t, srv.URL(), "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", `{"taskDefinition":"future:1"}`)
	td := out["taskDefinition"].(map[string]any)
	container := td["containerDefinitions"].([]any)[0].(map[string]any)
	if td["futureTopLevel"] != "kept" || fmt.Sprint(container["someFutureField"]) != "map[x:[1 2]]" {
		t.Errorf("unknown fields lost: %v", td)
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := start(t, emulator.Options{})
	for _, tc := range []struct {
		target, body, code string
		status             int
	}{
		{"AmazonEC2ContainerServiceV20141113.RunTask", `{}`, "UnknownOperationException", 400},
		{"Nonsense.ListClusters", `{}`, "UnknownOperationException", 400},
		{"AmazonEC2ContainerServiceV20141113.ListClusters", `{"maxResults":`, "SerializationException", 400},
		{"AmazonEC2ContainerServiceV20141113.ListClusters", `{"maxResults":"ten"}`, "SerializationException", 400},
		{"AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", `[1,2]`, "SerializationException", 400},
		{"AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", `{"family":"x","containerDefinitions":[{"name":"a"}]}`, "ClientException", 400},
		{"AmazonEC2ContainerServiceV20141113.DescribeServices", `{"cluster":"nope","services":["a"]}`, "ClusterNotFoundException", 400},
		{"AmazonEC2ContainerRegistry_V20150921.DescribeImages", `{"repositoryName":"nope"}`, "RepositoryNotFoundException", 400},
	} {
		status, header, body := post(t, srv.URL(), tc.target, tc.body)
		if status != tc.status || header != tc.code || body["__type"] != tc.code || body["message"] == "" {
			t.Errorf("%s %s: %d %s %v, want %d %s", tc.target, tc.body, status, header, body, tc.status, tc.code)
		}
	}
}

func TestRegionComesFromTheCredentialScope(t *testing.T) {
	srv := start(t, emulator.Options{})
	ctx := context.Background()
	west := ecsClient(srv.URL(), clientOptions{region: "us-west-2"})
	out, err := west.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("west")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Cluster.ClusterArn); got != "arn:aws:ecs:us-west-2:123456789012:cluster/west" {
		t.Errorf("arn = %s", got)
	}
	east, err := ecsClient(srv.URL(), clientOptions{}).ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(east.ClusterArns) != 0 {
		t.Errorf("us-east-1 sees %v (%v), want nothing", east, err)
	}
}

func TestServicesTagsAndDescribeFailures(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api", "ghost"}, Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/prod/ghost" {
		t.Fatalf("describe = %+v / %+v", out.Services, out.Failures)
	}
	api := out.Services[0]
	if aws.ToString(api.ServiceArn) != "arn:aws:ecs:us-east-1:123456789012:service/prod/api" || api.DesiredCount != 2 || api.RunningCount != 2 ||
		!api.DeploymentConfiguration.DeploymentCircuitBreaker.Enable || api.DeploymentController.Type != types.DeploymentControllerTypeEcs ||
		len(api.Tags) != 1 || api.LaunchType != types.LaunchTypeFargate {
		t.Errorf("api = %+v", api)
	}
	arn := api.ServiceArn
	if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("pinroll:paused"), Value: aws.String("ops")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}})
	wantCode(t, err, "InvalidParameterException")
	tags, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 2 {
		t.Fatalf("tags = %+v (%v)", tags, err)
	}
	if _, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "pinroll:paused" {
		t.Errorf("after untag: %+v", tags.Tags)
	}
	for _, resource := range []string{"arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1", "arn:aws:ecs:us-east-1:123456789012:cluster/prod"} {
		if _, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(resource)}); err != nil {
			t.Errorf("tags of %s: %v", resource, err)
		}
	}
	// ListTagsForResource documents no ResourceNotFoundException (TagResource does).
	_, err = c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:service/prod/ghost")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:service/nocluster/ghost")})
	wantCode(t, err, "ClusterNotFoundException")
	_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:service/prod/ghost"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("ghost"), ForceNewDeployment: true})
	wantCode(t, err, "ServiceNotFoundException")
	_, err = c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("api"), TaskDefinition: aws.String("backend:1")})
	wantCode(t, err, "InvalidParameterException")

	// Scale down, then delete: the service is INACTIVE, still describable, no longer listed.
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if got := mustListTasks(t, c, "dev", "api"); len(got) != 0 {
		t.Errorf("scaled to 0 but %d tasks run", len(got))
	}
	if _, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("dev"), Service: aws.String("api")}); err != nil {
		t.Fatal(err)
	}
	if svc := describeService(t, c, "dev", "api"); aws.ToString(svc.Status) != "INACTIVE" {
		t.Errorf("deleted service status %s", aws.ToString(svc.Status))
	}
	list, _ := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("dev")})
	if len(list.ServiceArns) != 0 {
		t.Errorf("deleted service still listed: %v", list.ServiceArns)
	}
}
