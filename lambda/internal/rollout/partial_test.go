package rollout_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// failingUpdates is an ECS client whose UpdateService fails, once, for the named services.
type failingUpdates struct {
	*ecs.Client
	mu   sync.Mutex
	fail map[string]bool
}

func (f *failingUpdates) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.mu.Lock()
	fail := f.fail[aws.ToString(in.Service)]
	delete(f.fail, aws.ToString(in.Service))
	f.mu.Unlock()
	if fail {
		return nil, errors.New("injected: connection reset by peer")
	}
	return f.Client.UpdateService(ctx, in, opts...)
}

func TestRetryAfterPartialFailureReusesTheRevision(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail []string
		cold bool // the redelivery lands on a new process, with an empty cache
	}{
		{"one of three updates fails", []string{"b"}, false},
		{"every update fails after the register", []string{"a", "b", "c"}, false},
		{"every update fails, redelivered to a new process", []string{"a", "b", "c"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, cfg aws.Config) {
				w := awstest.NewWorld(t, cfg)
				w.Repository("app")
				w.Cluster("prod")
				td := w.TaskDefinition("shared", awstest.Container("app", w.Image("app", "latest")))
				for _, name := range []string{"a", "b", "c"} {
					w.Service("prod", name, td)
				}
				digest := w.Push("app", "latest", "v2")

				rec := &awstest.Recorder{}
				recorded := rec.Wrap(cfg)
				client := &failingUpdates{Client: ecs.NewFromConfig(recorded), fail: map[string]bool{}}
				for _, name := range tc.fail {
					client.fail[name] = true
				}
				engine := rollout.New(config.Config{}, client, ecr.NewFromConfig(recorded), slog.New(slog.DiscardHandler))
				event := awstest.PushEvent("e1", awstest.Account, "app", "latest", digest)

				_, err := engine.HandleRaw(context.Background(), event)
				var incomplete *apply.IncompleteError
				if !errors.As(err, &incomplete) {
					t.Fatalf("first delivery: error %v, want an IncompleteError", err)
				}
				if len(incomplete.Done) != 3-len(tc.fail) {
					t.Errorf("first delivery reports %d services done, want %d", len(incomplete.Done), 3-len(tc.fail))
				}

				if tc.cold {
					engine = rollout.New(config.Config{}, client, ecr.NewFromConfig(recorded), slog.New(slog.DiscardHandler))
				}
				rep, err := engine.HandleRaw(context.Background(), event)
				if err != nil || rep.Outcome != report.Deployed {
					t.Fatalf("redelivery: %v, %+v", err, rep)
				}
				if len(rep.Changes) != len(tc.fail) || len(rep.Unchanged) != 3-len(tc.fail) {
					t.Errorf("redelivery changed %d and left %d unchanged, want %d and %d", len(rep.Changes), len(rep.Unchanged), len(tc.fail), 3-len(tc.fail))
				}
				if n := rec.Count("RegisterTaskDefinition"); n != 1 {
					t.Errorf("RegisterTaskDefinition called %d times over two deliveries, want 1", n)
				}
				if revs := w.Revisions("shared"); len(revs) != 2 {
					t.Errorf("family has %d revisions, want 2 (no duplicate): %v", len(revs), revs)
				}
				arns := map[string]bool{}
				for _, name := range []string{"a", "b", "c"} {
					arns[w.ServiceTaskDefinition("prod", name).ARN] = true
				}
				if len(arns) != 1 || arns[td] {
					t.Errorf("services run %v, want all three on the one new revision", arns)
				}
			})
		})
	}
}
