package fleet

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ECS is the part of the ECS API that Seed uses.
type ECS interface {
	CreateCluster(ctx context.Context, in *ecs.CreateClusterInput, optFns ...func(*ecs.Options)) (*ecs.CreateClusterOutput, error)
	RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	CreateService(ctx context.Context, in *ecs.CreateServiceInput, optFns ...func(*ecs.Options)) (*ecs.CreateServiceOutput, error)
}

// ECR is the part of the ECR API that Seed uses.
type ECR interface {
	CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, optFns ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	PutImage(ctx context.Context, in *ecr.PutImageInput, optFns ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
}

var (
	_ ECS = (*ecs.Client)(nil)
	_ ECR = (*ecr.Client)(nil)
)

// ReplicationAPI is the ECR call that seeds a registry's replication configuration; the ECR
// client given to Seed must have it when the world has one.
type ReplicationAPI interface {
	PutReplicationConfiguration(ctx context.Context, in *ecr.PutReplicationConfigurationInput, optFns ...func(*ecr.Options)) (*ecr.PutReplicationConfigurationOutput, error)
}

var _ ReplicationAPI = (*ecr.Client)(nil)

// Seed creates the fleet through the ECS and ECR APIs: repositories and their images (in order,
// one PutImage per tag, imageDigest given because moto does not compute it), clusters, task
// definitions with their tags, and services with theirs. Node caches cannot be created through an
// API; against the local emulator use its Load to get them. The clients must point at the fleet's
// region. A fleet of several worlds is seeded world by world (World.Seed), each with clients of
// its account and region.
func (f *Fleet) Seed(ctx context.Context, ecsAPI ECS, ecrAPI ECR) error {
	if len(f.Worlds) > 0 {
		return fmt.Errorf("seed: the fleet has %d worlds; seed each with World.Seed and clients of its account and region", len(f.Worlds))
	}
	w := f.single()
	return w.Seed(ctx, ecsAPI, ecrAPI)
}

// Seed creates the world through the ECS and ECR APIs, as Fleet.Seed does, starting with its
// registry's replication configuration (so the images it pushes are replicated).
func (f *World) Seed(ctx context.Context, ecsAPI ECS, ecrAPI ECR) error {
	if f.Replication != nil {
		api, ok := ecrAPI.(ReplicationAPI)
		if !ok {
			return fmt.Errorf("seed: world %s has a replication configuration but the ECR client cannot PutReplicationConfiguration", f.Where())
		}
		in := &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &ecrtypes.ReplicationConfiguration{}}
		for _, r := range f.Replication.Rules {
			rule := ecrtypes.ReplicationRule{Destinations: []ecrtypes.ReplicationDestination{}}
			for _, d := range r.Destinations {
				rule.Destinations = append(rule.Destinations, ecrtypes.ReplicationDestination{Region: aws.String(d.Region), RegistryId: aws.String(d.RegistryID)})
			}
			for _, fl := range r.RepositoryFilters {
				rule.RepositoryFilters = append(rule.RepositoryFilters, ecrtypes.RepositoryFilter{Filter: aws.String(fl.Filter), FilterType: ecrtypes.RepositoryFilterType(fl.FilterType)})
			}
			in.ReplicationConfiguration.Rules = append(in.ReplicationConfiguration.Rules, rule)
		}
		if _, err := api.PutReplicationConfiguration(ctx, in); err != nil {
			return fmt.Errorf("seed: put replication configuration of %s: %w", f.Where(), err)
		}
	}
	for _, r := range f.Repositories {
		if _, err := ecrAPI.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(r.Name)}); err != nil {
			return fmt.Errorf("seed: create repository %s: %w", r.Name, err)
		}
		for _, img := range r.Images {
			tags := img.Tags
			if len(tags) == 0 {
				tags = []string{""}
			}
			for _, tag := range tags {
				in := &ecr.PutImageInput{
					RepositoryName: aws.String(r.Name),
					ImageManifest:  aws.String(img.Manifest),
					ImageDigest:    aws.String(img.Digest()),
				}
				if img.MediaType != "" {
					in.ImageManifestMediaType = aws.String(img.MediaType)
				}
				if tag != "" {
					in.ImageTag = aws.String(tag)
				}
				if _, err := ecrAPI.PutImage(ctx, in); err != nil {
					return fmt.Errorf("seed: put image %s@%s (tag %q): %w", r.Name, img.Digest(), tag, err)
				}
			}
		}
	}
	for _, c := range f.Clusters {
		if _, err := ecsAPI.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(c.Name)}); err != nil {
			return fmt.Errorf("seed: create cluster %s: %w", c.Name, err)
		}
	}
	for _, td := range f.TaskDefinitions {
		if td.Input == nil {
			return fmt.Errorf("seed: task definition %s was not loaded (use fleet.Load or fleet.Parse)", td.Ref())
		}
		if _, err := ecsAPI.RegisterTaskDefinition(ctx, td.Input); err != nil {
			return fmt.Errorf("seed: register task definition %s: %w", td.Ref(), err)
		}
	}
	for _, s := range f.Services {
		in := &ecs.CreateServiceInput{
			Cluster:              aws.String(s.Cluster),
			ServiceName:          aws.String(s.Name),
			TaskDefinition:       aws.String(s.TaskDefinition),
			DesiredCount:         aws.Int32(s.DesiredCount),
			DeploymentController: &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerType(s.Controller())},
			Tags:                 serviceTags(s.Tags),
		}
		if s.LaunchType != "" {
			in.LaunchType = ecstypes.LaunchType(s.LaunchType)
		}
		if s.CircuitBreaker != nil || s.DeploymentConfiguration != nil {
			in.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{}
		}
		if s.CircuitBreaker != nil {
			in.DeploymentConfiguration.DeploymentCircuitBreaker = &ecstypes.DeploymentCircuitBreaker{
				Enable:   s.CircuitBreaker.Enable,
				Rollback: s.CircuitBreaker.Rollback,
			}
		}
		if c := s.DeploymentConfiguration; c != nil {
			d := in.DeploymentConfiguration
			d.Strategy, d.BakeTimeInMinutes = ecstypes.DeploymentStrategy(c.Strategy), c.BakeTimeInMinutes
			if l := c.LinearConfiguration; l != nil {
				d.LinearConfiguration = &ecstypes.LinearConfiguration{StepPercent: l.StepPercent, StepBakeTimeInMinutes: l.StepBakeTimeInMinutes}
			}
			if k := c.CanaryConfiguration; k != nil {
				d.CanaryConfiguration = &ecstypes.CanaryConfiguration{CanaryPercent: k.CanaryPercent, CanaryBakeTimeInMinutes: k.CanaryBakeTimeInMinutes}
			}
		}
		if _, err := ecsAPI.CreateService(ctx, in); err != nil {
			return fmt.Errorf("seed: create service %s/%s: %w", s.Cluster, s.Name, err)
		}
	}
	return nil
}

// serviceTags turns a tag map into ECS tags in key order; nil when there are none (ECS rejects an
// empty list on some calls).
func serviceTags(m map[string]string) []ecstypes.Tag {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]ecstypes.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, ecstypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}
