package emulator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/taskdef"
)

// ECS fills in defaults on RegisterTaskDefinition and returns them from Describe (compare the
// API reference's register-task-definition example): a client that copies a task definition
// must see them, and copying a described revision must register the same thing again.
func TestRegisterTaskDefinitionFillsInECSDefaults(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	status, _, out := post(t, srv.URL(), "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", `{
		"family":"sleep360","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"1 vCPU","memory":"2 GB",
		"containerDefinitions":[{"name":"sleep","image":"busybox","command":["sleep","360"],
			"portMappings":[{"containerPort":8080}]}],
		"volumes":[{"name":"shared","efsVolumeConfiguration":{"fileSystemId":"fs-1"}}]}`)
	if status != 200 {
		t.Fatalf("register: %d %v", status, out)
	}
	td := out["taskDefinition"].(map[string]any)
	container := td["containerDefinitions"].([]any)[0].(map[string]any)
	got := map[string]any{
		"cpu": td["cpu"], "memory": td["memory"], "placementConstraints": td["placementConstraints"],
		"rootDirectory": td["volumes"].([]any)[0].(map[string]any)["efsVolumeConfiguration"].(map[string]any)["rootDirectory"],
		"container.cpu": container["cpu"], "essential": container["essential"], "environment": container["environment"],
		"mountPoints": container["mountPoints"], "volumesFrom": container["volumesFrom"], "port": container["portMappings"],
	}
	want := map[string]any{
		"cpu": "1024", "memory": "2048", "placementConstraints": []any{}, "rootDirectory": "/",
		"container.cpu": float64(0), "essential": true, "environment": []any{}, "mountPoints": []any{}, "volumesFrom": []any{},
		"port": []any{map[string]any{"containerPort": float64(8080), "hostPort": float64(8080), "protocol": "tcp"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	// An explicit value is kept, not overwritten by the default.
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("sidecar"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("s"), Image: aws.String("busybox"),
			Memory: aws.Int32(64), Essential: aws.Bool(false), Cpu: 10}, {Name: aws.String("main"), Image: aws.String("busybox"), Memory: aws.Int32(64)}},
	}); err != nil {
		t.Fatal(err)
	}
	side, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sidecar")})
	if err != nil {
		t.Fatal(err)
	}
	if sc := side.TaskDefinition.ContainerDefinitions[0]; aws.ToBool(sc.Essential) || sc.Cpu != 10 {
		t.Errorf("explicit essential=false cpu=10 came back as %v %d", aws.ToBool(sc.Essential), sc.Cpu)
	}

	// Filling in is idempotent: what pinroll clones from a described revision registers the same.
	first, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sleep360:1")})
	if err != nil {
		t.Fatal(err)
	}
	clone, err := taskdef.Clone(first.TaskDefinition, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, clone); err != nil {
		t.Fatal(err)
	}
	second, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sleep360:2")})
	if err != nil {
		t.Fatal(err)
	}
	again, err := taskdef.Clone(second.TaskDefinition, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !taskdef.Equal(clone, again) {
		t.Errorf("re-registering a described revision changed it:\n%s", cmp.Diff(jsonOf(t, clone), jsonOf(t, again)))
	}
}

// RegisterTaskDefinition refuses what ECS refuses, with ClientException.
func TestRegisterTaskDefinitionValidations(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	container := func(mod func(*types.ContainerDefinition)) []types.ContainerDefinition {
		cd := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(128)}
		if mod != nil {
			mod(&cd)
		}
		return []types.ContainerDefinition{cd}
	}
	fargate := func(cpu, memory string) *ecs.RegisterTaskDefinitionInput {
		return &ecs.RegisterTaskDefinitionInput{Family: aws.String("f"), NetworkMode: types.NetworkModeAwsvpc,
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, Cpu: aws.String(cpu), Memory: aws.String(memory),
			ContainerDefinitions: container(nil)}
	}
	withPid := fargate("256", "512")
	withPid.PidMode = types.PidModeHost
	many := make([]types.ContainerDefinition, 11)
	for i := range many {
		many[i] = container(func(cd *types.ContainerDefinition) { cd.Name = aws.String("c" + strings.Repeat("x", i)) })[0]
	}
	for _, tc := range []struct {
		name string
		in   *ecs.RegisterTaskDefinitionInput
		msg  string
	}{
		{"EC2 without any memory", &ecs.RegisterTaskDefinitionInput{Family: aws.String("e"),
			ContainerDefinitions: container(func(cd *types.ContainerDefinition) { cd.Memory = nil })},
			"At least one of 'memory' or 'memoryReservation' must be specified"},
		{"Fargate with pidMode host", withPid, "pidMode"},
		{"Fargate 256 CPU with 4096 memory", fargate("256", "4096"), "No Fargate configuration exists for given values: 256 CPU, 4096 memory"},
		{"Fargate 1024 CPU with 2500 memory", fargate("1024", "2500"), "No Fargate configuration exists"},
		{"Fargate bridge", func() *ecs.RegisterTaskDefinitionInput {
			in := fargate("256", "512")
			in.NetworkMode = types.NetworkModeBridge
			return in
		}(), "awsvpc"},
		{"container name", &ecs.RegisterTaskDefinitionInput{Family: aws.String("n"),
			ContainerDefinitions: container(func(cd *types.ContainerDefinition) { cd.Name = aws.String("has space") })}, "Container.name"},
		{"reservation above the limit", &ecs.RegisterTaskDefinitionInput{Family: aws.String("r"),
			ContainerDefinitions: container(func(cd *types.ContainerDefinition) { cd.MemoryReservation = aws.Int32(256) })}, "memoryReservation"},
		{"eleven containers", &ecs.RegisterTaskDefinitionInput{Family: aws.String("m"), ContainerDefinitions: many}, "Too many containers."},
		{"no essential container", &ecs.RegisterTaskDefinitionInput{Family: aws.String("ess"),
			ContainerDefinitions: container(func(cd *types.ContainerDefinition) { cd.Essential = aws.Bool(false) })}, "at least one essential container"},
		{"awsvpc host port differs", func() *ecs.RegisterTaskDefinitionInput {
			in := fargate("256", "512")
			in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}}
			return in
		}(), "host ports and container ports in port mappings must match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RegisterTaskDefinition(ctx, tc.in)
			wantCode(t, err, "ClientException")
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
		})
	}
	for _, ok := range []*ecs.RegisterTaskDefinitionInput{fargate("256", "2048"), fargate("4096", "30720"), fargate("16384", "122880"),
		{Family: aws.String("task-memory"), Memory: aws.String("512"), ContainerDefinitions: container(func(cd *types.ContainerDefinition) { cd.Memory = nil })}} {
		if _, err := c.RegisterTaskDefinition(ctx, ok); err != nil {
			t.Errorf("register %s cpu %s memory %s: %v", aws.ToString(ok.Family), aws.ToString(ok.Cpu), aws.ToString(ok.Memory), err)
		}
	}
}

// ECS limits a task definition to 64 KiB and a resource to 50 tags of its own (aws: tags do
// not count), keys to 128 and values to 256 characters.
func TestRegisterTaskDefinitionAndTagResourceLimits(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	big := &ecs.RegisterTaskDefinitionInput{Family: aws.String("big"), ContainerDefinitions: []types.ContainerDefinition{{
		Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(128),
		Environment: []types.KeyValuePair{{Name: aws.String("BLOB"), Value: aws.String(strings.Repeat("x", 66000))}}}}}
	_, err := c.RegisterTaskDefinition(ctx, big)
	wantCode(t, err, "ClientException")
	if !strings.Contains(err.Error(), "Max allowed length is '65536' bytes.") || !strings.Contains(err.Error(), "Actual length: '") {
		t.Errorf("size limit message: %v", err)
	}
	big.ContainerDefinitions[0].Environment[0].Value = aws.String(strings.Repeat("x", 60000))
	if _, err := c.RegisterTaskDefinition(ctx, big); err != nil {
		t.Errorf("60 kB task definition: %v", err)
	}

	tags := func(n int) []types.Tag {
		var out []types.Tag
		for i := range n {
			out = append(out, types.Tag{Key: aws.String("k" + strings.Repeat("0", i)), Value: aws.String("v")})
		}
		return out
	}
	td := func(family string, tags []types.Tag) *ecs.RegisterTaskDefinitionInput {
		return &ecs.RegisterTaskDefinitionInput{Family: aws.String(family), Tags: tags,
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("busybox"), Memory: aws.Int32(64)}}}
	}
	_, err = c.RegisterTaskDefinition(ctx, td("t51", tags(51)))
	wantCode(t, err, "InvalidParameterException")
	if !strings.Contains(err.Error(), "50") || !strings.Contains(err.Error(), "51") {
		t.Errorf("tag limit message should give the numbers: %v", err)
	}
	reg, err := c.RegisterTaskDefinition(ctx, td("t48", tags(48)))
	if err != nil {
		t.Fatal(err)
	}
	arn := reg.TaskDefinition.TaskDefinitionArn
	more := []types.Tag{{Key: aws.String("pinroll:a"), Value: aws.String("1")}, {Key: aws.String("pinroll:b"), Value: aws.String("2")}}
	if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: more}); err != nil {
		t.Fatalf("tagging up to 50: %v", err)
	}
	_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("pinroll:c"), Value: aws.String("3")}}})
	wantCode(t, err, "InvalidParameterException")
	// Replacing an existing key's value is not a new tag.
	if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("pinroll:a"), Value: aws.String("x")}}}); err != nil {
		t.Errorf("retagging an existing key at the limit: %v", err)
	}
	for _, bad := range []types.Tag{
		{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")},
		{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))},
	} {
		_, err := c.RegisterTaskDefinition(ctx, td("bad", []types.Tag{bad}))
		wantCode(t, err, "InvalidParameterException")
	}
	// 128 and 256 characters (not bytes) are allowed.
	if _, err := c.RegisterTaskDefinition(ctx, td("unicode", []types.Tag{{Key: aws.String(strings.Repeat("é", 128)), Value: aws.String(strings.Repeat("ü", 256))}})); err != nil {
		t.Errorf("128-character key, 256-character value: %v", err)
	}
}

// Error messages are ECS's for the same code.
func TestTaskDefinitionErrorMessagesAreECSs(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	_, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
	wantCode(t, err, "ClientException")
	if !strings.HasSuffix(err.Error(), "ClientException: Invalid revision number. Number: web") {
		t.Errorf("DeregisterTaskDefinition without a revision: %v", err)
	}
	_, err = c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:7")})
	wantCode(t, err, "ClientException")
	if !strings.HasSuffix(err.Error(), "ClientException: Unable to describe task definition.") {
		t.Errorf("DescribeTaskDefinition of a missing revision: %v", err)
	}
}

// Tags AWS itself adds (aws:cloudformation:…) can be part of a loaded world; they do not count
// toward the 50 and cannot be removed.
func TestReservedTagsDoNotCountTowardTheLimit(t *testing.T) {
	srv := start(t, emulator.Options{})
	var own []string
	for i := range 48 {
		own = append(own, fmt.Sprintf(`{"key":"k%02d","value":"v"}`, i))
	}
	f, err := fleet.Parse([]byte(`{"repositories":[],"clusters":[],"services":[],"taskDefinitions":[` +
		`{"family":"cfn","containerDefinitions":[{"name":"a","image":"busybox","memory":64}],"tags":[` + strings.Join(own, ",") +
		`,{"key":"aws:cloudformation:stack-name","value":"app"},{"key":"aws:cloudformation:logical-id","value":"TaskDef"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	arn := aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/cfn:1")
	if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{
		{Key: aws.String("pinroll:a"), Value: aws.String("1")}, {Key: aws.String("pinroll:b"), Value: aws.String("2")}}}); err != nil {
		t.Fatalf("48 own + 2 aws: tags, adding 2: %v", err)
	}
	_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("pinroll:c"), Value: aws.String("3")}}})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"aws:cloudformation:stack-name"}})
	wantCode(t, err, "InvalidParameterException")
	tags, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 52 {
		t.Errorf("tags: %d (%v), want 52", len(tags.Tags), err)
	}
	// A user's own request may not carry aws: keys.
	_, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("x"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("busybox"), Memory: aws.Int32(64)}},
		Tags:                 []types.Tag{{Key: aws.String("aws:mine"), Value: aws.String("v")}}})
	wantCode(t, err, "InvalidParameterException")
}

// CreateService and UpdateService name a missing task definition the way ECS does.
func TestMissingTaskDefinitionMessageIsECSs(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	_, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String("backend:99")})
	wantCode(t, err, "ClientException")
	if !strings.HasSuffix(err.Error(), "ClientException: TaskDefinition not found.") {
		t.Errorf("UpdateService: %v", err)
	}
	_, err = c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("new"), TaskDefinition: aws.String("nope:1")})
	if !strings.HasSuffix(err.Error(), "ClientException: TaskDefinition not found.") {
		t.Errorf("CreateService: %v", err)
	}
}
