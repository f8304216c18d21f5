package emulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// EventURL and the older DeploymentEventURL / OnDeploymentEvent all receive every event, deployment
// and replication alike.
func TestEventSinksOldAndNewNamesReceiveEveryEvent(t *testing.T) {
	var mu sync.Mutex
	posted := map[string][]string{}
	sink := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var ev struct {
				DetailType string `json:"detail-type"`
			}
			_ = json.Unmarshal(body, &ev)
			mu.Lock()
			posted[path] = append(posted[path], ev.DetailType)
			mu.Unlock()
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/new", sink("new"))
	mux.Handle("/old", sink("old"))
	hs := httptest.NewServer(mux) // 127.0.0.1
	defer hs.Close()
	var inproc []string
	srv := startIncident(t, emulator.Options{EventURL: hs.URL + "/new", DeploymentEventURL: hs.URL + "/old",
		OnDeploymentEvent: func(_ context.Context, ev []byte) {
			var e struct {
				DetailType string `json:"detail-type"`
			}
			_ = json.Unmarshal(ev, &e)
			mu.Lock()
			inproc = append(inproc, e.DetailType)
			mu.Unlock()
		}})
	ctx := context.Background()
	c := ecrClient(srv.URL(), clientOptions{})
	if _, err := c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: replicationTo("us-west-2", account)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("content-marketing-swarm-backend"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("v9")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecsClient(srv.URL(), clientOptions{}).UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("dev"), Service: aws.String("api"), ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	mu.Lock()
	defer mu.Unlock()
	for name, got := range map[string][]string{"EventURL": posted["new"], "DeploymentEventURL": posted["old"], "OnDeploymentEvent": inproc} {
		if len(got) < 2 || got[0] != "ECR Replication Action" || got[len(got)-1] != "ECS Deployment State Change" {
			t.Errorf("%s received %v", name, got)
		}
	}
}

// ECS's limits are per account and region: one account's empty bucket does not throttle another.
func TestThrottleBucketsArePerAccount(t *testing.T) {
	srv := start(t, emulator.Options{})
	srv.Emulator().EnableThrottling(emulator.NewManualClock(time.Unix(0, 0)))
	srv.Emulator().SetThrottleLimit("ListClusters", emulator.Limit{Burst: 1})
	home := ecsClient(srv.URL(), clientOptions{maxAttempts: 1})
	dev := ecs.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{maxAttempts: 1}))
	for i, want := range []string{"", "ThrottlingException"} {
		_, err := home.ListClusters(context.Background(), &ecs.ListClustersInput{})
		if errorCode(err) != want {
			t.Errorf("default account's call %d: %v, want %q", i, err, want)
		}
	}
	if _, err := dev.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Errorf("dev's first call: %v", err)
	}
	west := ecsClient(srv.URL(), clientOptions{maxAttempts: 1, region: "us-west-2"})
	if _, err := west.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Errorf("the default account's first call in us-west-2: %v", err)
	}
}

func TestCreateTopicMethodServesPublish(t *testing.T) {
	srv := start(t, emulator.Options{})
	arn := srv.Emulator().CreateTopic(account, "us-east-1", "pinroll-notify")
	if _, err := snsClient(srv.URL(), clientOptions{}).Publish(context.Background(), &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Emulator().Published(); len(got) != 1 || got[0].TopicARN != "arn:aws:sns:us-east-1:"+account+":pinroll-notify" {
		t.Errorf("published: %+v", got)
	}
}
