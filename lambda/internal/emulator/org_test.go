package emulator_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// startOrg serves events/fleet-org.json: a registry account replicating to us-west-2 and two
// target accounts in both regions.
func startOrg(t *testing.T, opts emulator.Options) (*emulator.Server, *fleet.Fleet) {
	t.Helper()
	srv := start(t, opts)
	f, err := fleet.Load("../../../events/fleet-org.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	return srv, f
}

func TestOrgFleetLoadsEveryWorld(t *testing.T) {
	events := newAnyEvents()
	srv, f := startOrg(t, emulator.Options{OnEvent: events.sink})
	hub, _ := f.World(hubAccount, "us-east-1")
	latest := hub.Repositories[0].Images[1].Digest()
	dev, _ := f.World(devAccount, "us-east-1")
	own := dev.Repositories[0].Images[0].Digest()

	// Load replicated the registry's images to its us-west-2 registry, untagged one included.
	west := ecr.NewFromConfig(assumed(srv.URL(), roleARN(hubAccount), clientOptions{region: "us-west-2"}))
	imgs, err := west.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")})
	if err != nil || len(imgs.ImageDetails) != 2 || aws.ToString(imgs.ImageDetails[1].ImageDigest) != latest || imgs.ImageDetails[1].ImageTags[0] != "latest" {
		t.Fatalf("us-west-2 replica: %+v, %v", imgs, err)
	}
	for _, tc := range []struct {
		account, region, cluster, service, digest string
		tasks                                     int
	}{
		{devAccount, "us-east-1", "dev", "api", latest, 1},
		{devAccount, "us-east-1", "dev", "lookalike", own, 1}, // its own registry's shop/api
		{devAccount, "us-west-2", "dev", "api", latest, 1},
		{prodAccount, "us-east-1", "prod", "api", latest, 2},
		{prodAccount, "us-west-2", "prod", "api", latest, 2},
	} {
		c := ecs.NewFromConfig(assumed(srv.URL(), roleARN(tc.account), clientOptions{region: tc.region}))
		got := runningDigests(t, c, tc.cluster, tc.service, "app")
		if len(got) != tc.tasks || slices.ContainsFunc(got, func(d string) bool { return d != tc.digest }) {
			t.Errorf("%s/%s %s/%s runs %v, want %d × %s", tc.account, tc.region, tc.cluster, tc.service, got, tc.tasks, tc.digest)
		}
	}
	// The default account holds nothing of the organisation.
	if got := clusterNames(t, ecsClient(srv.URL(), clientOptions{})); len(got) != 0 {
		t.Errorf("default account clusters: %v", got)
	}
	srv.Emulator().Settle()
	if n := events.count(); n != 0 {
		t.Errorf("Load emitted %d events", n)
	}
}

// A target in us-west-2 that deploys a digest before its replica has arrived cannot pull it; once
// the replication event has come, it can. This is why the hub deploys a region from its
// replication events.
func TestTargetDeploysOnlyWhatHasBeenReplicated(t *testing.T) {
	ctx := context.Background()
	events := newAnyEvents()
	srv, _ := startOrg(t, emulator.Options{OnEvent: events.sink, ReplicationDelay: time.Hour})
	hubECR := ecr.NewFromConfig(assumed(srv.URL(), roleARN(hubAccount), clientOptions{}))
	pushed, err := hubECR.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("latest")})
	if err != nil {
		t.Fatal(err)
	}
	digest := aws.ToString(pushed.Image.ImageId.ImageDigest)

	c := ecs.NewFromConfig(assumed(srv.URL(), roleARN(prodAccount), clientOptions{region: "us-west-2"}))
	// deploy pins the service to the new digest and returns the task definition it runs then.
	deploy := func() string {
		t.Helper()
		cur, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("shop-api:1")})
		if err != nil {
			t.Fatal(err)
		}
		td := cur.TaskDefinition
		td.ContainerDefinitions[0].Image = aws.String(hubAccount + ".dkr.ecr.us-west-2.amazonaws.com/shop/api:latest@" + digest)
		reg, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: td.Family, ContainerDefinitions: td.ContainerDefinitions,
			Cpu: td.Cpu, Memory: td.Memory, NetworkMode: td.NetworkMode, RequiresCompatibilities: td.RequiresCompatibilities, ExecutionRoleArn: td.ExecutionRoleArn})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn}); err != nil {
			t.Fatal(err)
		}
		svc, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(svc.Services[0].TaskDefinition)
	}
	if td := deploy(); td != "arn:aws:ecs:us-west-2:"+prodAccount+":task-definition/shop-api:1" {
		t.Fatalf("deploying a digest to us-west-2 before it was replicated there: the service runs %s (tasks %v), want shop-api:1 after a rollback", td, runningDigests(t, c, "prod", "api", "app"))
	}
	srv.Emulator().Settle()
	evs := events.wait(t, 1)
	var replicated bool
	for _, ev := range evs {
		if ev.DetailType == "ECR Replication Action" && ev.Region == "us-west-2" && ev.Account == hubAccount && ev.Detail["image-digest"] == digest {
			replicated = true
		}
	}
	if !replicated {
		t.Fatalf("no replication event for %s in us-west-2: %+v", digest, evs)
	}
	if td := deploy(); td != "arn:aws:ecs:us-west-2:"+prodAccount+":task-definition/shop-api:3" {
		t.Errorf("after replication the service runs %s, want shop-api:3", td)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); len(got) != 2 || got[0] != digest || got[1] != digest {
		t.Errorf("prod us-west-2 runs %v", got)
	}
}
