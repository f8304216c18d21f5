package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const (
	account  = "123456789012"
	registry = account + ".dkr.ecr.us-east-1.amazonaws.com"
	oldImage = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9"
	newImage = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	devImage = "sha256:52c71d4dce65c9636341f58553a691759e5e699e58dc495e68d6c2d1710d9885"
)

// start serves a new emulator on 127.0.0.1 for the test's duration.
func start(t *testing.T, opts emulator.Options) *emulator.Server {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// startIncident serves the default fleet (events/fleet.json).
func startIncident(t *testing.T, opts emulator.Options) *emulator.Server {
	t.Helper()
	srv := start(t, opts)
	f, err := fleet.Load("../../../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	return srv
}

type clientOptions struct {
	region      string
	maxAttempts int // 0: the SDK's default retryer without backoff delays
}

func sdkConfig(url string, o clientOptions) aws.Config {
	if o.region == "" {
		o.region = "us-east-1"
	}
	return aws.Config{
		Region:       o.region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				if o.maxAttempts > 0 {
					so.MaxAttempts = o.maxAttempts
				}
				so.Backoff = noBackoff{}
				so.RateLimiter = ratelimit.None
			})
		},
	}
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func ecsClient(url string, o clientOptions) *ecs.Client { return ecs.NewFromConfig(sdkConfig(url, o)) }
func ecrClient(url string, o clientOptions) *ecr.Client { return ecr.NewFromConfig(sdkConfig(url, o)) }

// errorCode returns the AWS error code of err, "" if it is not an API error.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
}

// eventLog collects deployment events delivered in-process.
type eventLog struct {
	mu     sync.Mutex
	events []deploymentEvent
}

type deploymentEvent struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     struct {
		EventType    string `json:"eventType"`
		EventName    string `json:"eventName"`
		DeploymentID string `json:"deploymentId"`
		UpdatedAt    string `json:"updatedAt"`
		Reason       string `json:"reason"`
	} `json:"detail"`
}

func (l *eventLog) sink(_ context.Context, event []byte) {
	var ev deploymentEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) take() []deploymentEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}
