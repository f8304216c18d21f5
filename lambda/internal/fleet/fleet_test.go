package fleet_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const defaultFleet = "../../../events/fleet.json"

// The manifests' digests are shared with the sample events; they must not drift.
func TestDefaultFleetDigests(t *testing.T) {
	f, err := fleet.Load(defaultFleet)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range f.Repositories {
		for _, img := range r.Images {
			got[r.Name] = append(got[r.Name], img.Digest()+" "+strings.Join(img.Tags, ","))
		}
	}
	want := map[string][]string{
		"content-marketing-swarm-backend": {
			"sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9 ",
			"sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d latest",
		},
		"content-marketing-swarm-dev-backend": {
			"sha256:52c71d4dce65c9636341f58553a691759e5e699e58dc495e68d6c2d1710d9885 latest",
		},
		// A multi-arch image: two platform manifests and the index that lists them.
		"multiarch-service": {
			"sha256:e8c38f46c63ed6698c25937d745279bde66d92c0035640a4f0c559921ec911ff ",
			"sha256:33f31bd75efc545101de3a330c8f6b77b78a33af48e977015c3cb9dc5a0283ab ",
			"sha256:d6860440eff99d386762df918d16f6cbc8500724d6f47632d50e8ca943a456cb v1.4.0",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if f.Account != "123456789012" || f.Region != "us-east-1" {
		t.Errorf("account/region = %s/%s", f.Account, f.Region)
	}
	prod := f.Clusters[0]
	if prod.Name != "prod" || prod.NodeCache["123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest"] != f.Repositories[0].Images[0].Digest() {
		t.Errorf("prod's node cache should hold the old image under the expanded name: %+v", prod)
	}
	td, ok := f.TaskDefinition("backend:1")
	if !ok || aws.ToString(td.Input.ContainerDefinitions[0].Image) != "123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest" {
		t.Errorf("backend:1 = %+v, want {{registry}} expanded", td.Input)
	}
	env := td.Input.ContainerDefinitions[0].Environment
	if len(env) < 2 || env[1].Value == nil || *env[1].Value != "" {
		t.Errorf("the empty environment value must survive decoding: %+v", env)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := fleet.Parse([]byte(`{
	  "account": "12345",
	  "repositories": [{"name": "App", "images": [{"tags": ["latest"], "manifest": "not json"}]}],
	  "clusters": [{"name": "prod", "imagePullBehavior": "sometimes"}],
	  "taskDefinitions": [{"family": "web", "containerDefinitions": [{"name": "app"}]}],
	  "services": [{"cluster": "staging", "name": "api", "taskDefinition": "web:2", "desiredCount": 1}]
	}`))
	if err == nil {
		t.Fatal("invalid fleet accepted")
	}
	for _, want := range []string{
		`account "12345"`,
		`repositories[0] (App): invalid repository name`,
		`repositories[0] (App).images[0]: manifest is not a JSON document`,
		`clusters[0] (prod): imagePullBehavior "sometimes"`,
		`taskDefinitions[0] (web): containerDefinitions[0]: no image`,
		`services[0] (staging/api): cluster "staging" is not in clusters`,
		`services[0] (staging/api): task definition "web:2" is not in taskDefinitions`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := fleet.Parse([]byte(`{"taskDefinitions": [{"family": "x", "containerDefinitions": [{"name": "a", "image": "b", "imagee": "typo"}]}]}`)); err == nil || !strings.Contains(err.Error(), "imagee") {
		t.Errorf("unknown task definition field not reported: %v", err)
	}
	if _, err := fleet.Parse([]byte(`{"clusterz": []}`)); err == nil {
		t.Error("unknown top-level field accepted")
	}
}

// Seed builds the fleet through the SDK's clients (here against the emulator; moto works the same).
func TestSeedThroughTheSDK(t *testing.T) {
	f, err := fleet.Load(defaultFleet)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seeded.Close() })
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(seeded.URL()),
	}
	ecsAPI, ecrAPI := ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)
	ctx := context.Background()
	if err := f.Seed(ctx, ecsAPI, ecrAPI); err != nil {
		t.Fatal(err)
	}
	images, err := ecrAPI.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("content-marketing-swarm-backend")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range images.ImageDetails {
		got = append(got, aws.ToString(d.ImageDigest)+" "+strings.Join(d.ImageTags, ","))
	}
	want := []string{f.Repositories[0].Images[0].Digest() + " ", f.Repositories[0].Images[1].Digest() + " latest"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seeded images (-want +got):\n%s", diff)
	}
	latest, err := ecrAPI.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("content-marketing-swarm-dev-backend"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("latest")}}})
	if err != nil || len(latest.Images) != 1 || aws.ToString(latest.Images[0].ImageManifest) != f.Repositories[1].Images[0].Manifest {
		t.Errorf("dev latest = %+v (%v)", latest, err)
	}
	td, err := ecsAPI.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("backend:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(td.Tags) != 1 || aws.ToString(td.Tags[0].Key) != "team" || len(td.TaskDefinition.ContainerDefinitions) != 3 {
		t.Errorf("backend:1 = %+v tags %+v", td.TaskDefinition, td.Tags)
	}
	svc, err := ecsAPI.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api", "legacy-codedeploy"}, Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Services) != 2 || !svc.Services[0].DeploymentConfiguration.DeploymentCircuitBreaker.Rollback ||
		svc.Services[1].DeploymentController.Type != types.DeploymentControllerTypeCodeDeploy || len(svc.Services[0].Tags) != 1 {
		t.Errorf("services = %+v", svc.Services)
	}
}
