// Package discover finds the ECS services in scope and the task definitions they run.
//
// It makes as few calls as the problem allows: clusters and services are listed 100 to a
// page, services described 10 to a call (the API's maximum) with their tags, and each task
// definition described once — ever, per process: a task definition ARN with a revision is
// immutable, so the Cache never needs invalidating and survives warm Lambda invocations.
package discover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"
)

// ECS is the part of the ECS API discovery uses, with the SDK's exact signatures.
type ECS interface {
	ListClusters(context.Context, *ecs.ListClustersInput, ...func(*ecs.Options)) (*ecs.ListClustersOutput, error)
	ListServices(context.Context, *ecs.ListServicesInput, ...func(*ecs.Options)) (*ecs.ListServicesOutput, error)
	DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// API limits that shape the calls (AWS-NOTES.md, "Limits and delivery").
const (
	pageSize          = 100 // ListClusters and ListServices maximum page
	describeBatchSize = 10  // DescribeServices maximum names per call
)

// Service is what pinroll needs to know about one ECS service.
type Service struct {
	Cluster        string // cluster name
	ClusterARN     string
	Name           string
	ARN            string
	Status         string // ACTIVE, DRAINING, INACTIVE
	TaskDefinition string // task definition ARN with revision
	Controller     string // deployment controller: ECS, CODE_DEPLOY, EXTERNAL
	DesiredCount   int32
	Tags           map[string]string
}

// TaskDefinition is a described task definition and its tags.
type TaskDefinition struct {
	Definition *types.TaskDefinition
	Tags       []types.Tag
}

// Fleet is the discovered world: services in scope and the task definitions they run.
type Fleet struct {
	Services        []Service
	TaskDefinitions map[string]*TaskDefinition // by task definition ARN
}

// Cache holds task definitions by ARN. ARNs with a revision never change, so entries never
// go stale. Safe for concurrent use; the zero value is ready.
type Cache struct {
	mu sync.RWMutex
	m  map[string]*TaskDefinition
}

// Get returns the cached task definition for arn.
func (c *Cache) Get(arn string) (*TaskDefinition, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	td, ok := c.m[arn]
	return td, ok
}

// Put remembers td under arn.
func (c *Cache) Put(arn string, td *TaskDefinition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*TaskDefinition)
	}
	c.m[arn] = td
}

// Len is the number of cached task definitions.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Discoverer lists and describes. Create it once per process and reuse it: its cache is
// what makes warm invocations cheap.
type Discoverer struct {
	ECS   ECS
	Cache *Cache
	// Concurrency bounds the calls in flight per stage. Zero means a default tuned to
	// ECS's sustained throttle rates.
	Concurrency int
}

// DefaultConcurrency keeps calls in flight well inside ECS's per-API buckets.
const DefaultConcurrency = 8

// New returns a Discoverer with an empty cache.
func New(client ECS) *Discoverer {
	return &Discoverer{ECS: client, Cache: &Cache{}, Concurrency: DefaultConcurrency}
}

func (d *Discoverer) limit() int {
	if d.Concurrency > 0 {
		return d.Concurrency
	}
	return DefaultConcurrency
}

// Discover returns every service of the given clusters (names or ARNs; empty means every
// cluster of the account and region) and the task definition each one runs.
func (d *Discoverer) Discover(ctx context.Context, clusters []string) (*Fleet, error) {
	if len(clusters) == 0 {
		var err error
		if clusters, err = d.clusters(ctx); err != nil {
			return nil, err
		}
	}
	services, err := d.services(ctx, clusters)
	if err != nil {
		return nil, err
	}
	tds, err := d.taskDefinitions(ctx, services)
	if err != nil {
		return nil, err
	}
	return &Fleet{Services: services, TaskDefinitions: tds}, nil
}

func (d *Discoverer) clusters(ctx context.Context) ([]string, error) {
	var arns []string
	p := ecs.NewListClustersPaginator(d.ECS, &ecs.ListClustersInput{MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		arns = append(arns, page.ClusterArns...)
	}
	return arns, nil
}

// services lists and describes the services of every cluster, clusters concurrently.
func (d *Discoverer) services(ctx context.Context, clusters []string) ([]Service, error) {
	perCluster := make([][]Service, len(clusters))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.limit())
	for i, cluster := range clusters {
		g.Go(func() error {
			arns, err := d.listServices(ctx, cluster)
			if err != nil {
				return err
			}
			batches := slices.Collect(slices.Chunk(arns, describeBatchSize))
			described := make([][]Service, len(batches))
			bg, bctx := errgroup.WithContext(ctx)
			bg.SetLimit(d.limit())
			for j, batch := range batches {
				bg.Go(func() (err error) {
					described[j], err = d.describeServices(bctx, cluster, batch)
					return err
				})
			}
			if err := bg.Wait(); err != nil {
				return err
			}
			perCluster[i] = slices.Concat(described...)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(perCluster...), nil
}

func (d *Discoverer) listServices(ctx context.Context, cluster string) ([]string, error) {
	var arns []string
	p := ecs.NewListServicesPaginator(d.ECS, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list services of cluster %s: %w", cluster, err)
		}
		arns = append(arns, page.ServiceArns...)
	}
	return arns, nil
}

func (d *Discoverer) describeServices(ctx context.Context, cluster string, arns []string) ([]Service, error) {
	out, err := d.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster:  aws.String(cluster),
		Services: arns,
		Include:  []types.ServiceField{types.ServiceFieldTags},
	})
	if err != nil {
		return nil, fmt.Errorf("describe services of cluster %s: %w", cluster, err)
	}
	// A service deleted between ListServices and DescribeServices comes back as a
	// failure (MISSING): it no longer exists, so there is nothing to deploy to it.
	services := make([]Service, 0, len(out.Services))
	for _, s := range out.Services {
		services = append(services, FromSDK(s))
	}
	return services, nil
}

// FromSDK keeps what pinroll needs of a described service.
func FromSDK(s types.Service) Service {
	svc := Service{
		ClusterARN:     aws.ToString(s.ClusterArn),
		Name:           aws.ToString(s.ServiceName),
		ARN:            aws.ToString(s.ServiceArn),
		Status:         aws.ToString(s.Status),
		TaskDefinition: aws.ToString(s.TaskDefinition),
		Controller:     string(types.DeploymentControllerTypeEcs),
		DesiredCount:   s.DesiredCount,
		Tags:           make(map[string]string, len(s.Tags)),
	}
	svc.Cluster = ClusterName(svc.ClusterARN)
	if s.DeploymentController != nil && s.DeploymentController.Type != "" {
		svc.Controller = string(s.DeploymentController.Type)
	}
	for _, t := range s.Tags {
		svc.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return svc
}

// ClusterName returns the name in a cluster ARN (or the argument, when it is a name).
func ClusterName(cluster string) string {
	if i := strings.LastIndex(cluster, ":cluster/"); i >= 0 {
		return cluster[i+len(":cluster/"):]
	}
	return cluster
}

// taskDefinitions describes each distinct task definition once, or takes it from the cache.
func (d *Discoverer) taskDefinitions(ctx context.Context, services []Service) (map[string]*TaskDefinition, error) {
	out := make(map[string]*TaskDefinition)
	var missing []string
	for _, s := range services {
		arn := s.TaskDefinition
		if _, seen := out[arn]; seen || arn == "" {
			continue
		}
		td, ok := d.Cache.Get(arn)
		if !ok {
			missing = append(missing, arn)
		}
		out[arn] = td // nil until described below; marks the ARN as seen
	}
	described := make([]*TaskDefinition, len(missing))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.limit())
	for i, arn := range missing {
		g.Go(func() (err error) {
			described[i], err = d.Describe(ctx, arn)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, arn := range missing {
		out[arn] = described[i]
	}
	return out, nil
}

// Describe returns one task definition with its tags: from the cache when ref is an ARN
// seen before, else from ECS. A family name (latest revision) is always asked of ECS.
func (d *Discoverer) Describe(ctx context.Context, ref string) (*TaskDefinition, error) {
	if td, ok := d.Cache.Get(ref); ok {
		return td, nil
	}
	out, err := d.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(ref),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", ref, err)
	}
	if out.TaskDefinition == nil {
		return nil, fmt.Errorf("describe task definition %s: the answer holds no task definition", ref)
	}
	td := &TaskDefinition{Definition: out.TaskDefinition, Tags: out.Tags}
	// Cached by the ARN ECS returned, which carries the revision: immutable, even when ref
	// was a family name (whose latest revision may change).
	if arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn); arn != "" {
		d.Cache.Put(arn, td)
	}
	return td, nil
}
