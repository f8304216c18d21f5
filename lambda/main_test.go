package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

const newDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"

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

	// An SQS event of the continuation queue is answered with a batch response: a record
	// whose body is no continuation is a batch item failure (the queue keeps it, and its
	// dead-letter queue after maxReceiveCount), not a function error.
	sqsEvent := []byte(`{"Records":[{"messageId":"m-1","receiptHandle":"h","body":"{\"format\":\"nope\"}","attributes":{"ApproximateReceiveCount":"1","MessageGroupId":"123456789012"},` +
		`"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:pinroll-continue.fifo","awsRegion":"us-east-1"}]}`)
	got = fn.Invoke(t, sqsEvent)
	failures, _ := got["batchItemFailures"].([]any)
	if len(failures) != 1 || failures[0].(map[string]any)["itemIdentifier"] != "m-1" {
		t.Errorf("SQS event with a malformed body: %v, want batchItemFailures naming m-1", got)
	}

	// A continuation through moto's SQS, delivered by the event source mapping to the built
	// function: the step of the push above for prod/api (already pinned, so nothing to do) ends
	// the rollout, and the mapping deletes the message the function handled.
	ctx := context.Background()
	q := sqs.NewFromConfig(cfg)
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("pinroll-continue.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := trigger.Decode(push)
	if err != nil {
		t.Fatal(err)
	}
	body, err := trigger.Continuation{
		Push: *ev.Push, Target: awstest.Account, Step: 1, Began: time.Now().UTC(),
		Services: map[string][]string{"arn:aws:ecs:us-east-1:" + awstest.Account + ":cluster/prod": {"api"}},
		Totals:   report.Totals{Changes: 1, Invocations: 1},
	}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: aws.String(string(body)),
		MessageGroupId: aws.String(awstest.Account), MessageDeduplicationId: aws.String("step-1")}); err != nil {
		t.Fatal(err)
	}
	mapping := &awstest.EventSourceMapping{SQS: q, QueueURL: aws.ToString(created.QueueUrl), Invoke: awstest.InvokeURL(fn.URL)}
	d, ok, err := mapping.Poll(ctx)
	if err != nil || !ok || d.Err != nil || len(d.Failed) != 0 || !strings.Contains(string(d.Answer), `"batchItemFailures":[]`) {
		t.Fatalf("continuation under the RIE: %+v %v %v (answer %s)", d, ok, err, d.Answer)
	}
	if _, ok, err := mapping.Poll(ctx); ok || err != nil {
		t.Errorf("the handled continuation is still on the queue (%v)", err)
	}
}

// The built function under the Runtime Interface Emulator, pointed at pinroll's emulator:
// push → deployment → ECS Deployment State Change → verified; and a pinned digest deleted
// before the pull → the circuit breaker rolls back → rolled_back, a failure.
func TestFunctionVerifiesDeploymentsOnTheEmulator(t *testing.T) {
	bootstrap, rie := awstest.BuildLambda(t, "..", t.TempDir())
	world, err := fleet.Load("../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		deleteDigest bool
		wantOutcome  string
		deployDelay  time.Duration
	}{
		{"completed deployment is verified", false, "verified", 0},
		{"missing digest is rolled back", true, "rolled_back", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var events [][]byte
			srv, err := emulator.Start("127.0.0.1:0", emulator.Options{DeployDelay: tc.deployDelay, OnDeploymentEvent: func(_ context.Context, ev []byte) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			if err := srv.Emulator().Load(world); err != nil {
				t.Fatal(err)
			}
			fn := awstest.StartFunction(t, rie, bootstrap,
				"AWS_ENDPOINT_URL="+srv.URL(), "AWS_REGION="+awstest.Region,
				"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_SESSION_TOKEN=",
				"PINROLL_REGISTRY_ACCOUNTS="+awstest.Account)
			push, err := os.ReadFile("../events/push-tagged.json")
			if err != nil {
				t.Fatal(err)
			}
			if got := fn.Invoke(t, push); got["outcome"] != "deployed" {
				t.Fatalf("push: %v", got)
			}
			if tc.deleteDigest {
				cfg := awstest.Config(t, srv.URL())
				_, err := ecr.NewFromConfig(cfg).BatchDeleteImage(context.Background(), &ecr.BatchDeleteImageInput{
					RepositoryName: aws.String("content-marketing-swarm-backend"),
					ImageIds:       []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(newDigest)}},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			srv.Emulator().Settle()
			mu.Lock()
			delivered := events
			mu.Unlock()
			outcomes := map[string]int{}
			for _, ev := range delivered {
				if !strings.Contains(string(ev), "service/prod/api") {
					continue
				}
				got := fn.Invoke(t, ev)
				outcome, _ := got["outcome"].(string)
				outcomes[outcome]++
				if outcome == "verified" || outcome == "rolled_back" {
					t.Logf("prod/api: %s — %s", outcome, got["reason"])
				}
			}
			if outcomes[tc.wantOutcome] != 1 {
				t.Errorf("prod/api deployment events gave %v, want exactly one %s", outcomes, tc.wantOutcome)
			}
			if tc.deleteDigest && outcomes["verified"] > 0 {
				t.Error("a rolled-back deployment was also reported verified")
			}
		})
	}
}
