package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// World builds ECR and ECS state for a test through the real SDK, so the same test runs
// against moto and against pinroll's emulator. Every failure stops the test.
type World struct {
	T   testing.TB
	Cfg aws.Config
	ECS *ecs.Client
	ECR *ecr.Client
}

// NewWorld returns a builder over cfg.
func NewWorld(t testing.TB, cfg aws.Config) *World {
	return &World{T: t, Cfg: cfg, ECS: ecs.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg)}
}

// Registry is the ECR registry host of the test account, in the world's region.
func (w *World) Registry() string {
	region := w.Cfg.Region
	if region == "" {
		region = Region
	}
	return Account + ".dkr.ecr." + region + ".amazonaws.com"
}

// Image is the image reference of repository:tag in the test registry.
func (w *World) Image(repository, tag string) string {
	return w.Registry() + "/" + repository + ":" + tag
}

// Repository creates an ECR repository.
func (w *World) Repository(name string) {
	w.T.Helper()
	if _, err := w.ECR.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}); err != nil {
		w.T.Fatalf("create repository %s: %v", name, err)
	}
}

// Manifest is a small OCI image manifest that differs for every seed.
func Manifest(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%x","size":1469},"layers":[]}`, sum)
}

// Digest is the digest of a manifest: sha256 over its bytes.
func Digest(manifest string) string {
	sum := sha256.Sum256([]byte(manifest))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Push puts an image built from seed into repository under tag and returns its digest.
func (w *World) Push(repository, tag, seed string) string {
	w.T.Helper()
	manifest := Manifest(seed)
	digest := Digest(manifest)
	_, err := w.ECR.PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName:         aws.String(repository),
		ImageManifest:          aws.String(manifest),
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json"),
		ImageTag:               aws.String(tag),
		ImageDigest:            aws.String(digest), // moto does not compute it
	})
	if err != nil {
		w.T.Fatalf("put image %s:%s: %v", repository, tag, err)
	}
	return digest
}

// TagDigest returns the digest repository:tag points to now.
func (w *World) TagDigest(repository, tag string) string {
	w.T.Helper()
	out, err := w.ECR.DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String(repository),
		ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if err != nil || len(out.ImageDetails) != 1 {
		w.T.Fatalf("describe %s:%s: %v", repository, tag, err)
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest)
}

// Cluster creates a cluster and returns its ARN.
func (w *World) Cluster(name string) string {
	w.T.Helper()
	out, err := w.ECS.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String(name)})
	if err != nil {
		w.T.Fatalf("create cluster %s: %v", name, err)
	}
	return aws.ToString(out.Cluster.ClusterArn)
}

// Container is a minimal container definition.
func Container(name, image string) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String(image), Memory: aws.Int32(256), Essential: aws.Bool(true)}
}

// TaskDefinition registers a task definition of the given containers and returns its ARN.
func (w *World) TaskDefinition(family string, containers ...types.ContainerDefinition) string {
	w.T.Helper()
	return w.Register(&ecs.RegisterTaskDefinitionInput{Family: aws.String(family), ContainerDefinitions: containers})
}

// Register registers in and returns the new revision's ARN.
func (w *World) Register(in *ecs.RegisterTaskDefinitionInput) string {
	w.T.Helper()
	out, err := w.ECS.RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		w.T.Fatalf("register task definition %s: %v", aws.ToString(in.Family), err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// ServiceOption adjusts a service before it is created.
type ServiceOption func(*ecs.CreateServiceInput)

// Tags tags the service.
func Tags(kv ...string) ServiceOption {
	return func(in *ecs.CreateServiceInput) {
		for i := 0; i+1 < len(kv); i += 2 {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
	}
}

// Controller sets the service's deployment controller.
func Controller(c types.DeploymentControllerType) ServiceOption {
	return func(in *ecs.CreateServiceInput) { in.DeploymentController = &types.DeploymentController{Type: c} }
}

// Service creates a service running taskDefinition in cluster.
func (w *World) Service(cluster, name, taskDefinition string, opts ...ServiceOption) {
	w.T.Helper()
	in := &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name), TaskDefinition: aws.String(taskDefinition), DesiredCount: aws.Int32(1)}
	for _, o := range opts {
		o(in)
	}
	if _, err := w.ECS.CreateService(context.Background(), in); err != nil {
		w.T.Fatalf("create service %s/%s: %v", cluster, name, err)
	}
}

// Running is what a service runs: its task definition ARN, the definition and its tags.
type Running struct {
	ARN        string
	Definition *types.TaskDefinition
	Tags       map[string]string
}

// ServiceTaskDefinition describes the task definition a service is set to run now.
func (w *World) ServiceTaskDefinition(cluster, service string) Running {
	w.T.Helper()
	ctx := context.Background()
	out, err := w.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil || len(out.Services) != 1 {
		w.T.Fatalf("describe service %s/%s: %v (%d found)", cluster, service, err, len(out.Services))
	}
	arn := aws.ToString(out.Services[0].TaskDefinition)
	td, err := w.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		w.T.Fatalf("describe task definition %s: %v", arn, err)
	}
	tags := map[string]string{}
	for _, t := range td.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return Running{ARN: arn, Definition: td.TaskDefinition, Tags: tags}
}

// Revisions lists the ARNs of every revision of family, active or not.
func (w *World) Revisions(family string) []string {
	w.T.Helper()
	var arns []string
	for _, status := range []types.TaskDefinitionStatus{types.TaskDefinitionStatusActive, types.TaskDefinitionStatusInactive} {
		p := ecs.NewListTaskDefinitionsPaginator(w.ECS, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				w.T.Fatalf("list task definitions %s: %v", family, err)
			}
			arns = append(arns, page.TaskDefinitionArns...)
		}
	}
	return arns
}

// ReplicaEvent is the ECR Replication Action that ECR emits in region when it has copied
// repository:tag@digest there from the test region (result SUCCESS, or e.g. FAILURE).
func ReplicaEvent(id, account, region, repository, tag, digest, result string) []byte {
	ev := map[string]any{
		"version": "0", "id": id, "detail-type": "ECR Replication Action", "source": "aws.ecr",
		"account": account, "time": time.Now().UTC().Format(time.RFC3339), "region": region,
		"resources": []string{"arn:aws:ecr:" + region + ":" + account + ":repository/" + repository},
		"detail": map[string]any{
			"result": result, "repository-name": repository, "image-digest": digest, "image-tag": tag,
			"action-type": "REPLICATE", "source-account": account, "source-region": Region,
		},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return raw
}

// PushEvent is an ECR push event (EventBridge envelope) for repository:tag at digest.
func PushEvent(id, account, repository, tag, digest string) []byte {
	ev := map[string]any{
		"version": "0", "id": id, "detail-type": "ECR Image Action", "source": "aws.ecr",
		"account": account, "time": time.Now().UTC().Format(time.RFC3339), "region": Region, "resources": []string{},
		"detail": map[string]any{
			"result": "SUCCESS", "repository-name": repository, "image-digest": digest,
			"action-type": "PUSH", "image-tag": tag,
			"manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
			"artifact-media-type": "application/vnd.oci.image.config.v1+json",
		},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return raw
}

// LaunchType sets the service's launch type.
func LaunchType(lt types.LaunchType) ServiceOption {
	return func(in *ecs.CreateServiceInput) { in.LaunchType = lt }
}
