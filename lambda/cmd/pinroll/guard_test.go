package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

const (
	oldDigest = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9" // untagged in the default fleet
	newDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d" // :latest
)

// A lifecycle policy that looks tidy and breaks pinned services: untagged images expire after
// 14 days, and :latest is archived a day after its push.
const tidyPolicy = `{"rules":[` +
	`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["latest"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}},` +
	`{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

// pinnedFleet is the default fleet plus prod/pinned-old and prod/pinned-new, pinned by digest
// to the old and the new backend image.
func pinnedFleet(t *testing.T) *fleet.Fleet {
	t.Helper()
	raw, err := os.ReadFile(root + "/events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var world map[string]any
	if err := json.Unmarshal(raw, &world); err != nil {
		t.Fatal(err)
	}
	for name, digest := range map[string]string{"pinned-old": oldDigest, "pinned-new": newDigest} {
		world["taskDefinitions"] = append(world["taskDefinitions"].([]any), map[string]any{
			"family": name, "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"}, "cpu": "256", "memory": "512",
			"containerDefinitions": []map[string]any{{"name": "app", "image": "{{registry}}/content-marketing-swarm-backend@" + digest, "essential": true}},
		})
		world["services"] = append(world["services"].([]any), map[string]any{"cluster": "prod", "name": name, "taskDefinition": name + ":1", "desiredCount": 1, "launchType": "FARGATE"})
	}
	edited, err := json.Marshal(world)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse(edited)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pinnedWorld is pinnedFleet on an emulator whose clock the test moves.
func pinnedWorld(t *testing.T) (url string, emu *emulator.Emulator, later func(time.Duration)) {
	t.Helper()
	f := pinnedFleet(t)
	var mu sync.Mutex
	now := time.Now()
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	return srv.URL(), srv.Emulator(), func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
}

// `pinroll verify` reports a pinned digest an ECR lifecycle rule expired, and one it archived,
// with what to do, and exits 1 though the running tasks still run what they should: the next
// task start would fail.
func TestVerifyReportsPinnedImagesALifecycleRuleExpiredOrArchived(t *testing.T) {
	localEnv(t)
	url, emu, later := pinnedWorld(t)
	args := []string{"verify", "--endpoint-url", url, "--cluster", "prod", "--service", "pinned-old,pinned-new"}
	code, stdout, stderr := runCLI(t, args...)
	if code != exitOK || strings.Contains(stdout, "MISSING") {
		t.Fatalf("healthy: exit %d\n%s\n%s", code, stdout, stderr)
	}

	registry := ecr.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := registry.PutLifecyclePolicy(context.Background(), &ecr.PutLifecyclePolicyInput{
		RepositoryName: aws.String("content-marketing-swarm-backend"), LifecyclePolicyText: aws.String(tidyPolicy),
	}); err != nil {
		t.Fatal(err)
	}
	later(15 * 24 * time.Hour)
	if done := emu.RunLifecyclePolicies(); len(done) != 2 {
		t.Fatalf("lifecycle run: %+v, want the old image expired and the new one archived", done)
	}

	code, stdout, stderr = runCLI(t, args...)
	host := "123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend@"
	for _, want := range []string{
		"MISSING IMAGE prod/pinned-old pinned-old:1 " + host + oldDigest + ": not in ECR (expired or deleted): an ECR lifecycle rule expired it",
		"MISSING IMAGE prod/pinned-new pinned-new:1 " + host + newDigest + ": archived since ",
		"aws ecr update-image-storage-class --registry-id 123456789012 --repository-name content-marketing-swarm-backend --image-id imageDigest=" + newDigest + " --target-storage-class STANDARD",
		"MISMATCH: ", "2 pinned images ECR can no longer serve",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify lacks %q\n%s\n%s", want, stdout, stderr)
		}
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d: a missing image is a failure", code, exitFailed)
	}

	code, stdout, _ = runCLI(t, append(args, "--json")...)
	var rep report.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitFailed || len(rep.MissingImages) != 2 {
		t.Errorf("verify --json: exit %d, %d missing images (%v)\n%s", code, len(rep.MissingImages), err, stdout)
	}
}

// On moto, which keeps lifecycle policies but never applies them, the expiry is modelled by
// deleting the pinned image (BatchDeleteImage), as the rule would: `pinroll verify` reports it
// and exits 1 there too.
func TestVerifyReportsADeletedPinnedImageOnMoto(t *testing.T) {
	moto, err := awstest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	localEnv(t) // after moto starts: moto_server needs no empty AWS_REGION
	cfg := awstest.Config(t, moto.URL)
	f := pinnedFleet(t)
	if err := f.Seed(context.Background(), ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	args := []string{"verify", "--endpoint-url", moto.URL, "--cluster", "prod", "--service", "pinned-new"}
	if _, stdout, _ := runCLI(t, args...); strings.Contains(stdout, "MISSING IMAGE") {
		t.Fatalf("before the deletion:\n%s", stdout)
	}
	out, err := ecr.NewFromConfig(cfg).BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String("content-marketing-swarm-backend"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(newDigest)}},
	})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	for _, f := range out.Failures {
		// A retried call whose first attempt deleted the image (moto answered it late, once,
		// on a loaded machine) reports the image not found: what counts is that it is gone.
		if f.FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
			t.Fatalf("delete: %s: %s", f.FailureCode, aws.ToString(f.FailureReason))
		}
	}
	var gone *ecrtypes.ImageNotFoundException
	if _, err := ecr.NewFromConfig(cfg).DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String("content-marketing-swarm-backend"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(newDigest)}},
	}); !errors.As(err, &gone) {
		t.Fatalf("after the deletion, DescribeImages of %s: %v; want ImageNotFoundException", newDigest, err)
	}
	code, stdout, stderr := runCLI(t, args...)
	want := "MISSING IMAGE prod/pinned-new pinned-new:1 123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend@" + newDigest + ": not in ECR (expired or deleted)"
	if code != exitFailed || !strings.Contains(stdout, want) {
		t.Errorf("exit %d, want %d with %q\n%s\n%s", code, exitFailed, want, stdout, stderr)
	}
}
