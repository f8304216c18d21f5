package bench

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// Naive is the REFERENCE that pinroll's numbers are compared with, not code pinroll runs: the
// straightforward way to handle a push — list (pages of 100, as the console does), then
// describe each service alone and the task definition of each service, one call after the
// other, no batching, no cache, no concurrency. It plans and applies with pinroll's own
// planner and applier, so only discovery differs. Pace, when set, keeps it inside ECS's
// buckets (it would be throttled otherwise); it is not part of what makes it naive.
type Naive struct {
	ECS  *ecs.Client
	ECR  *ecr.Client
	Pace *discover.Pacer
}

// Push handles one push event the naive way and returns the changes made.
func (n *Naive) Push(ctx context.Context, raw []byte) ([]report.Change, error) {
	ev, err := trigger.Decode(raw)
	if err != nil || ev.Push == nil {
		return nil, fmt.Errorf("naive: not a push: %v", err)
	}
	p := ev.Push
	if _, err := n.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(p.Repository), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(p.Digest)}},
	}); err != nil {
		return nil, err
	}
	f := &discover.Fleet{TaskDefinitions: map[string]*discover.TaskDefinition{}}
	clusters, err := n.clusters(ctx)
	if err != nil {
		return nil, err
	}
	for _, cluster := range clusters {
		var arns []string
		for token := (*string)(nil); ; {
			if err := n.Pace.Wait(ctx, "ListServices"); err != nil {
				return nil, err
			}
			page, err := n.ECS.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100), NextToken: token})
			if err != nil {
				return nil, err
			}
			arns = append(arns, page.ServiceArns...)
			if token = page.NextToken; token == nil {
				break
			}
		}
		for _, arn := range arns {
			if err := n.Pace.Wait(ctx, "DescribeServices"); err != nil {
				return nil, err
			}
			out, err := n.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{arn}, Include: []types.ServiceField{types.ServiceFieldTags}})
			if err != nil {
				return nil, err
			}
			for _, s := range out.Services {
				svc := discover.FromSDK(s)
				if err := n.Pace.Wait(ctx, "DescribeTaskDefinition"); err != nil {
					return nil, err
				}
				td, err := n.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: s.TaskDefinition, Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
				if err != nil {
					return nil, err
				}
				f.Services = append(f.Services, svc)
				f.TaskDefinitions[svc.TaskDefinition] = &discover.TaskDefinition{Definition: td.TaskDefinition, Tags: td.Tags}
			}
		}
	}
	pl := plan.Make(plan.Input{Pushed: p.Pushed(), Fleet: f})
	res := (&apply.Applier{ECS: n.ECS}).Apply(ctx, pl, apply.Audit{Tag: p.Tag, Digest: p.Digest, EventID: p.EventID}, nil)
	return res.Changes, res.Err()
}

func (n *Naive) clusters(ctx context.Context) ([]string, error) {
	var arns []string
	for token := (*string)(nil); ; {
		if err := n.Pace.Wait(ctx, "ListClusters"); err != nil {
			return nil, err
		}
		page, err := n.ECS.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(100), NextToken: token})
		if err != nil {
			return nil, err
		}
		arns = append(arns, page.ClusterArns...)
		if token = page.NextToken; token == nil {
			return arns, nil
		}
	}
}
