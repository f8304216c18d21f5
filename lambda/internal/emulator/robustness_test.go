package emulator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// No input makes an operation panic or answer 500: odd bodies are client errors or empty results.
func TestOddBodiesNeverCrashAnOperation(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	ops := map[string][]string{
		"AmazonEC2ContainerServiceV20141113.": {"CreateCluster", "ListClusters", "DescribeClusters", "RegisterTaskDefinition",
			"DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "CreateService",
			"ListServices", "DescribeServices", "UpdateService", "DeleteService", "ListTasks", "DescribeTasks", "TagResource",
			"UntagResource", "ListTagsForResource"},
		"AmazonEC2ContainerRegistry_V20150921.": {"CreateRepository", "DescribeRepositories", "PutImage", "DescribeImages",
			"BatchGetImage", "ListImages", "BatchDeleteImage"},
	}
	bodies := []string{``, `{}`, `null`, `[]`, `"x"`, `{"cluster":"prod","service":"api","services":[""],"tasks":["/"],"taskDefinition":"arn:","resourceArn":"arn:aws:ecs:us-east-1:123456789012:service/",
		"repositoryName":"content-marketing-swarm-backend","imageIds":[{}],"imageManifest":"{}","maxResults":0,"nextToken":"%%%","family":"x","containerDefinitions":[{"name":"a","image":"b"}]}`,
		`{"containerDefinitions":{"name":1},"tags":[{"key":""}],"deploymentConfiguration":[],"desiredCount":-1,"filter":{"tagStatus":"?"}}`}
	for prefix, names := range ops {
		for _, op := range names {
			for _, body := range bodies {
				status, code, _ := post(t, srv.URL(), prefix+op, body)
				if status != 200 && status != 400 {
					t.Errorf("%s %s: %d %s", op, body, status, code)
				}
			}
		}
	}
}

func TestConcurrentUpdatesAndReads(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecsClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if i%2 == 0 {
					_, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), ForceNewDeployment: true})
					if err != nil {
						t.Error(err)
					}
				} else if _, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api", "worker"}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	srv.Emulator().Settle()
	if got := runningDigests(t, c, "prod", "api", "app"); len(got) != 2 {
		t.Errorf("after 40 deployments %d tasks run, want 2: %v", len(got), fmt.Sprint(got))
	}
}
