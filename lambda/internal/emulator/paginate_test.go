package emulator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func TestServicePagesFollowECSLimits(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("nginx:1.27"), Memory: aws.Int32(128)}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("big"), ServiceName: aws.String(fmt.Sprintf("svc-%03d", i)),
			TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(max *int32) (sizes []int, all []string) {
		p := ecs.NewListServicesPaginator(c, &ecs.ListServicesInput{Cluster: aws.String("big"), MaxResults: max})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.ServiceArns))
			all = append(all, page.ServiceArns...)
		}
		return sizes, all
	}
	sizes, all := pages(aws.Int32(100))
	if fmt.Sprint(sizes) != "[100 100 50]" || len(all) != 250 || all[249] != "arn:aws:ecs:us-east-1:123456789012:service/big/svc-249" {
		t.Errorf("maxResults 100: pages %v, %d services", sizes, len(all))
	}
	if sizes, _ := pages(nil); len(sizes) != 25 || sizes[0] != 10 {
		t.Errorf("default page size: pages %v, want 25 pages of 10", sizes)
	}
	_, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("big"), MaxResults: aws.Int32(101)})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("big"), NextToken: aws.String("forged")})
	wantCode(t, err, "InvalidParameterException")

	names := make([]string, 11)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%03d", i)
	}
	_, err = c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("big"), Services: names})
	wantCode(t, err, "InvalidParameterException")
	if out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("big"), Services: names[:10]}); err != nil || len(out.Services) != 10 {
		t.Errorf("10 services: %v", err)
	}

	tasks := 0
	tp := ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String("big")})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.TaskArns) > 100 {
			t.Errorf("ListTasks page of %d", len(page.TaskArns))
		}
		tasks += len(page.TaskArns)
	}
	if tasks != 250 {
		t.Errorf("%d running tasks, want 250", tasks)
	}
	list, _ := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("big")})
	_, err = c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("big"), Tasks: append(list.TaskArns, "one-too-many")})
	wantCode(t, err, "InvalidParameterException")
}

func TestClusterAndTaskDefinitionPages(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	for i := range 120 {
		if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("c%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(first.ClusterArns) != 100 || first.NextToken == nil {
		t.Fatalf("first page: %d clusters, next %v (%v)", len(first.ClusterArns), first.NextToken, err)
	}
	second, err := c.ListClusters(ctx, &ecs.ListClustersInput{NextToken: first.NextToken})
	if err != nil || len(second.ClusterArns) != 20 || second.NextToken != nil {
		t.Errorf("second page: %d clusters, next %v (%v)", len(second.ClusterArns), second.NextToken, err)
	}

	for _, family := range []string{"b", "a", "b", "a", "b"} {
		if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("x"), Image: aws.String("busybox"), Memory: aws.Int32(128)}}}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)})
	if err != nil || fmt.Sprint(list.TaskDefinitionArns) != "[arn:aws:ecs:us-east-1:123456789012:task-definition/a:1 arn:aws:ecs:us-east-1:123456789012:task-definition/a:2]" || list.NextToken == nil {
		t.Errorf("first page %v (%v)", list.TaskDefinitionArns, err)
	}
	desc, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("b"), Sort: types.SortOrderDesc})
	if err != nil || len(desc.TaskDefinitionArns) != 3 || desc.TaskDefinitionArns[0] != "arn:aws:ecs:us-east-1:123456789012:task-definition/b:3" {
		t.Errorf("family b, newest first: %v (%v)", desc.TaskDefinitionArns, err)
	}
}
