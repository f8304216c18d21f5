package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// The real runtime loop: the built function under the AWS Lambda Runtime Interface Emulator,
// configured only through its environment (AWS_ENDPOINT_URL pointing at moto), fed the
// sample events.
func TestFunctionUnderRuntimeInterfaceEmulator(t *testing.T) {
	moto, err := awstest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	cfg := awstest.Config(t, moto.URL)
	world, err := fleet.Load("../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := world.Seed(context.Background(), ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}

	bootstrap, rie := awstest.BuildLambda(t, "..", t.TempDir())
	fn := awstest.StartFunction(t, rie, bootstrap,
		"AWS_ENDPOINT_URL="+moto.URL, "AWS_REGION="+awstest.Region,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_SESSION_TOKEN=",
		// The emulator's function lives in account 012345678912; the images in 123456789012.
		"PINROLL_REGISTRY_ACCOUNTS="+awstest.Account,
		"PINROLL_CLUSTERS=prod,dev")

	event := func(name string) []byte {
		raw, err := os.ReadFile("../events/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	push := event("push-tagged.json")
	var envelope struct{ ID string }
	if err := json.Unmarshal(push, &envelope); err != nil {
		t.Fatal(err)
	}
	got := fn.Invoke(t, push)
	if got["outcome"] != "deployed" || got["event_id"] != envelope.ID {
		t.Fatalf("push-tagged.json: %v", got)
	}
	if changes, _ := got["changes"].([]any); len(changes) != 2 {
		t.Errorf("push-tagged.json changed %d services, want prod/api and prod/worker: %v", len(changes), got["changes"])
	}
	w := awstest.NewWorld(t, cfg)
	const newDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	for _, svc := range []string{"api", "worker"} {
		running := w.ServiceTaskDefinition("prod", svc)
		if img := aws.ToString(running.Definition.ContainerDefinitions[0].Image); !strings.HasSuffix(img, "content-marketing-swarm-backend:latest@"+newDigest) {
			t.Errorf("prod/%s runs %s after the push", svc, img)
		}
	}
	if img := aws.ToString(w.ServiceTaskDefinition("dev", "api").Definition.ContainerDefinitions[0].Image); strings.Contains(img, "@") {
		t.Errorf("dev/api (the look-alike repository) was touched: %s", img)
	}

	if got := fn.Invoke(t, event("push-tagged.json")); got["outcome"] != "unchanged" {
		t.Errorf("redelivered push-tagged.json: %v, want unchanged", got)
	}
	if got := fn.Invoke(t, event("delete.json")); got["outcome"] != "skipped" {
		t.Errorf("delete.json: %v, want skipped", got)
	}
	got = fn.Invoke(t, []byte(`{"source":"aws.ecr","detail-type":"ECR Image Action","detail":{"image-digest":"sha256:zz"}}`))
	if got["errorType"] != "InvalidEventError" || !strings.Contains(got["errorMessage"].(string), "image-digest") {
		t.Errorf("malformed event: %v, want an InvalidEventError naming image-digest", got)
	}
}
