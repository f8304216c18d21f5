package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

// slowAccount is an account's ECS with no clusters that answers ListClusters slowly, and
// counts how many of its callers across all accounts are inside at once.
type slowAccount struct {
	ECS
	mu           *sync.Mutex
	inside, most *int
	answerTakes  time.Duration
}

func (s slowAccount) ListClusters(ctx context.Context, _ *ecs.ListClustersInput, _ ...func(*ecs.Options)) (*ecs.ListClustersOutput, error) {
	s.mu.Lock()
	*s.inside++
	*s.most = max(*s.most, *s.inside)
	s.mu.Unlock()
	time.Sleep(s.answerTakes)
	s.mu.Lock()
	*s.inside--
	s.mu.Unlock()
	return &ecs.ListClustersOutput{}, nil
}

// Planning a push works on at most maxParallelTargets accounts at once, as applying does: a
// hub of 20 targets never discovers all 20 at the same time, and still overlaps them.
func TestPlanningBoundsTheTargetsWorkedOnAtOnce(t *testing.T) {
	var mu sync.Mutex
	var inside, most int
	e := New(config.Config{}, nil, nil, slog.New(slog.DiscardHandler))
	e.Targets = nil
	for i := range 20 {
		account := fmt.Sprintf("%012d", 100000000000+i)
		tgt := NewTarget(account, "arn:aws:iam::"+account+":role/pinroll-target", slowAccount{mu: &mu, inside: &inside, most: &most, answerTakes: 20 * time.Millisecond}, nil)
		tgt.Discoverer.Pace = nil
		e.Targets = append(e.Targets, tgt)
	}
	p := trigger.Push{EventID: "e", Account: "123456789012", Region: "us-east-1", Repository: "app", Tag: "latest", Digest: "sha256:" + fmt.Sprintf("%064d", 0)}
	plans := e.planTargets(context.Background(), p, nil)
	for _, tp := range plans {
		if tp.err != nil {
			t.Fatalf("%s: %v", tp.t, tp.err)
		}
	}
	if most > maxParallelTargets || most < 2 {
		t.Errorf("%d targets discovered at once, want between 2 and %d", most, maxParallelTargets)
	}
}
