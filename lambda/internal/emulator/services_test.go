package emulator_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// registerEC2 registers a bridge-mode EC2 task definition and returns its ARN.
func registerEC2(t *testing.T, c *ecs.Client, family string) string {
	t.Helper()
	out, err := c.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("nginx"), Memory: aws.Int32(128)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// CreateService and UpdateService keep what they are given and ECS returns it: placement,
// load balancers, the service role (as an ARN), the launch type (EC2 when none is given).
func TestServiceKeepsPlacementLoadBalancersRoleAndLaunchType(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("ec2")}); err != nil {
		t.Fatal(err)
	}
	td := registerEC2(t, c, "web")
	lb := []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"),
		ContainerName: aws.String("web"), ContainerPort: aws.Int32(80)}}
	spread := []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}}
	created, err := c.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("ec2"), ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1),
		LoadBalancers: lb, PlacementStrategy: spread, Role: aws.String("ecsServiceRole"),
		HealthCheckGracePeriodSeconds: aws.Int32(30),
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, s *types.Service, strategy types.PlacementStrategyType) {
		t.Helper()
		if s.LaunchType != types.LaunchTypeEc2 || aws.ToString(s.RoleArn) != "arn:aws:iam::123456789012:role/ecsServiceRole" ||
			len(s.LoadBalancers) != 1 || aws.ToInt32(s.LoadBalancers[0].ContainerPort) != 80 ||
			len(s.PlacementStrategy) != 1 || s.PlacementStrategy[0].Type != strategy || aws.ToInt32(s.HealthCheckGracePeriodSeconds) != 30 {
			t.Errorf("%s: launchType %q roleArn %q loadBalancers %+v placementStrategy %+v grace %v", when,
				s.LaunchType, aws.ToString(s.RoleArn), s.LoadBalancers, s.PlacementStrategy, s.HealthCheckGracePeriodSeconds)
		}
	}
	check("CreateService", created.Service, types.PlacementStrategyTypeSpread)
	binpack := []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}
	updated, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("ec2"), Service: aws.String("web"), PlacementStrategy: binpack})
	if err != nil {
		t.Fatal(err)
	}
	check("UpdateService", updated.Service, types.PlacementStrategyTypeBinpack)
	described := describeService(t, c, "ec2", "web")
	check("DescribeServices", &described, types.PlacementStrategyTypeBinpack)
}

// Invalid CreateService and UpdateService input is refused the way ECS refuses it.
func TestServiceInputValidation(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("ec2")}); err != nil {
		t.Fatal(err)
	}
	td := registerEC2(t, c, "web")
	create := func(mod func(*ecs.CreateServiceInput)) error {
		in := &ecs.CreateServiceInput{Cluster: aws.String("ec2"), ServiceName: aws.String("s"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)}
		mod(in)
		_, err := c.CreateService(ctx, in)
		return err
	}
	for name, tc := range map[string]struct {
		mod  func(*ecs.CreateServiceInput)
		code string
	}{
		"launch type and capacity provider strategy": {func(in *ecs.CreateServiceInput) {
			in.LaunchType = types.LaunchTypeEc2
			in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}
		}, "InvalidParameterException"},
		"FARGATE with an EC2-only task definition": {func(in *ecs.CreateServiceInput) { in.LaunchType = types.LaunchTypeFargate }, "InvalidParameterException"},
		"unknown placement strategy": {func(in *ecs.CreateServiceInput) {
			in.PlacementStrategy = []types.PlacementStrategy{{Type: "sideways"}}
		}, "InvalidParameterException"},
		"binpack without a field": {func(in *ecs.CreateServiceInput) {
			in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack}}
		}, "InvalidParameterException"},
		"grace period without load balancers": {func(in *ecs.CreateServiceInput) { in.HealthCheckGracePeriodSeconds = aws.Int32(10) }, "InvalidParameterException"},
		"negative desired count":              {func(in *ecs.CreateServiceInput) { in.DesiredCount = aws.Int32(-1) }, "InvalidParameterException"},
		"missing task definition":             {func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("nope:1") }, "ClientException"},
		"bad name":                            {func(in *ecs.CreateServiceInput) { in.ServiceName = aws.String("no spaces") }, "InvalidParameterException"},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, create(tc.mod), tc.code) })
	}
	if err := create(func(*ecs.CreateServiceInput) {}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		in   *ecs.UpdateServiceInput
		code string
	}{
		"unknown placement constraint":        {&ecs.UpdateServiceInput{PlacementConstraints: []types.PlacementConstraint{{Type: "nearby"}}}, "InvalidParameterException"},
		"negative desired count":              {&ecs.UpdateServiceInput{DesiredCount: aws.Int32(-2)}, "InvalidParameterException"},
		"missing task definition":             {&ecs.UpdateServiceInput{TaskDefinition: aws.String("nope:9")}, "ClientException"},
		"grace period without load balancers": {&ecs.UpdateServiceInput{HealthCheckGracePeriodSeconds: aws.Int32(5)}, "InvalidParameterException"},
	} {
		t.Run("update "+name, func(t *testing.T) {
			tc.in.Cluster, tc.in.Service = aws.String("ec2"), aws.String("s")
			_, err := c.UpdateService(ctx, tc.in)
			wantCode(t, err, tc.code)
		})
	}
}

// CreateCluster keeps settings, capacity providers and the default strategy; DescribeClusters
// returns the optional parts that include asks for; a service created without a launch type
// takes the cluster's default strategy.
func TestClusterKeepsSettingsAndCapacityProviders(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	created, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName:       aws.String("spot"),
		Settings:          []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{
			{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3}, {CapacityProvider: aws.String("FARGATE"), Weight: 1, Base: 1}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("x")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := created.Cluster
	if len(cl.Settings) != 1 || aws.ToString(cl.Settings[0].Value) != "enabled" || len(cl.CapacityProviders) != 2 ||
		len(cl.DefaultCapacityProviderStrategy) != 2 || cl.DefaultCapacityProviderStrategy[1].Base != 1 {
		t.Errorf("CreateCluster answered %+v", cl)
	}
	plain, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"spot"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := plain.Clusters[0]; len(p.Settings) != 0 || len(p.Tags) != 0 || len(p.Statistics) != 0 || len(p.CapacityProviders) != 2 {
		t.Errorf("DescribeClusters without include: settings %v tags %v statistics %v capacityProviders %v", p.Settings, p.Tags, p.Statistics, p.CapacityProviders)
	}
	full, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"spot"},
		Include: []types.ClusterField{types.ClusterFieldSettings, types.ClusterFieldTags, types.ClusterFieldStatistics}})
	if err != nil {
		t.Fatal(err)
	}
	if f := full.Clusters[0]; len(f.Settings) != 1 || len(f.Tags) != 1 || len(f.Statistics) == 0 {
		t.Errorf("DescribeClusters with include: settings %v tags %v statistics %v", f.Settings, f.Tags, f.Statistics)
	}
	_, err = c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{"EVERYTHING"}})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("bad"),
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}})
	wantCode(t, err, "InvalidParameterException")

	reg, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("f"), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("busybox")}}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("spot"), ServiceName: aws.String("s"),
		TaskDefinition: reg.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Service.LaunchType != "" || len(svc.Service.CapacityProviderStrategy) != 2 {
		t.Errorf("service on a cluster with a default strategy: launchType %q strategy %+v", svc.Service.LaunchType, svc.Service.CapacityProviderStrategy)
	}
}

// With ECS-like timing CreateService answers the deployment IN_PROGRESS with no task running
// and desiredCount pending (the cluster counts them); scaling to 0 leaves nothing pending; the
// steady state comes when the deployment completes, not within the call.
func TestECSLikeDeploymentIsInProgressWhenTheCallAnswers(t *testing.T) {
	srv := start(t, emulator.Options{DeployDelay: emulator.ECSDeployDelay})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("ec2")}); err != nil {
		t.Fatal(err)
	}
	td := registerEC2(t, c, "web")
	out, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("ec2"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	s := out.Service
	if len(s.Deployments) != 1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress ||
		s.RunningCount != 0 || s.PendingCount != 2 || s.Deployments[0].RunningCount != 0 {
		t.Fatalf("CreateService answered running %d pending %d deployments %+v", s.RunningCount, s.PendingCount, s.Deployments)
	}
	for _, ev := range s.Events {
		t.Errorf("an event before the deployment completed: %s", aws.ToString(ev.Message))
	}
	pending := func() (int32, int32) {
		t.Helper()
		cl, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"ec2"}})
		if err != nil {
			t.Fatal(err)
		}
		return cl.Clusters[0].PendingTasksCount, cl.Clusters[0].RunningTasksCount
	}
	if p, r := pending(); p != 2 || r != 0 {
		t.Errorf("cluster pending %d running %d, want 2 and 0", p, r)
	}
	up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("ec2"), Service: aws.String("web"), DesiredCount: aws.Int32(0)})
	if err != nil {
		t.Fatal(err)
	}
	if up.Service.PendingCount != 0 || up.Service.Deployments[0].PendingCount != 0 {
		t.Errorf("scaled to 0 but pending %d (deployment %d)", up.Service.PendingCount, up.Service.Deployments[0].PendingCount)
	}
	if p, _ := pending(); p != 0 {
		t.Errorf("scaled to 0 but the cluster has %d pending tasks", p)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("ec2"), Service: aws.String("web"), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	done := describeService(t, c, "ec2", "web")
	if done.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted || done.RunningCount != 1 || done.PendingCount != 0 ||
		len(done.Events) == 0 {
		t.Errorf("after the deployment: running %d pending %d deployments %+v", done.RunningCount, done.PendingCount, done.Deployments)
	}
	if p, r := pending(); p != 0 || r != 1 {
		t.Errorf("cluster pending %d running %d, want 0 and 1", p, r)
	}
}

// ListAccountSettings: a new account has set nothing; its effective settings are ECS's
// defaults, paged 10 at a time at most.
func TestListAccountSettings(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	none, err := c.ListAccountSettings(ctx, &ecs.ListAccountSettingsInput{})
	if err != nil || len(none.Settings) != 0 {
		t.Fatalf("explicit settings of a new account: %+v (%v)", none, err)
	}
	var all []types.Setting
	p := ecs.NewListAccountSettingsPaginator(c, &ecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 4})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Settings) > 4 {
			t.Errorf("page of %d with maxResults 4", len(page.Settings))
		}
		all = append(all, page.Settings...)
	}
	found := map[types.SettingName]string{}
	for _, s := range all {
		found[s.Name] = aws.ToString(s.Value)
		if aws.ToString(s.PrincipalArn) != "arn:aws:iam::123456789012:root" {
			t.Errorf("%s: principal %s", s.Name, aws.ToString(s.PrincipalArn))
		}
	}
	if found[types.SettingNameServiceLongArnFormat] != "enabled" || found[types.SettingNameContainerInsights] != "disabled" || len(found) < 8 {
		t.Errorf("effective settings: %v", found)
	}
	one, err := c.ListAccountSettings(ctx, &ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameTaskLongArnFormat})
	if err != nil || len(one.Settings) != 1 || aws.ToString(one.Settings[0].Value) != "enabled" {
		t.Errorf("by name: %+v (%v)", one, err)
	}
	_, err = c.ListAccountSettings(ctx, &ecs.ListAccountSettingsInput{MaxResults: 11})
	wantCode(t, err, "InvalidParameterException")
}
