package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// guardFleet is a fleet of `services` services in 10 clusters running `families` task
// definition families round robin. Each family's revision 2 pins <repo>:t<f>@<digest> and
// records revision 1 — pinned to another digest, tagged o<f> — as its pinroll:previous, as
// pinroll's own revisions do; the families' repositories are the first of repos round robin.
// digests counts the distinct pinned digests per repository: current and previous.
func guardFleet(t *testing.T, services, families int, repos []string) (f *fleet.Fleet, digests map[string]int) {
	t.Helper()
	raw := map[string]any{}
	images := map[string][]fleet.Image{}
	digests = map[string]int{}
	var tds []any
	td := func(family, image string, tags []map[string]string) map[string]any {
		return map[string]any{
			"family": family, "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"}, "cpu": "256", "memory": "512",
			"containerDefinitions": []map[string]any{{"name": "main", "image": image, "essential": true}},
			"tags":                 tags,
		}
	}
	for i := range families {
		repo := repos[i%len(repos)]
		family := fmt.Sprintf("f-%04d", i)
		previous, current := awstest.Manifest(family+" previous"), awstest.Manifest(family+" current")
		images[repo] = append(images[repo], fleet.Image{Tags: []string{fmt.Sprintf("o%d", i)}, Manifest: previous}, fleet.Image{Tags: []string{fmt.Sprintf("t%d", i)}, Manifest: current})
		digests[repo] += 2
		tds = append(tds,
			td(family, fmt.Sprintf("{{registry}}/%s:o%d@%s", repo, i, awstest.Digest(previous)), nil),
			td(family, fmt.Sprintf("{{registry}}/%s:t%d@%s", repo, i, awstest.Digest(current)), []map[string]string{
				{"key": "pinroll:previous", "value": fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:1", awstest.Region, awstest.Account, family)},
				{"key": "pinroll:tag", "value": fmt.Sprintf("t%d", i)},
			}))
	}
	var repositories []fleet.Repository
	for _, r := range repos {
		repositories = append(repositories, fleet.Repository{Name: r, Images: images[r]})
	}
	var clusters, svcs []any
	for c := range 10 {
		clusters = append(clusters, map[string]any{"name": fmt.Sprintf("c%d", c)})
	}
	for s := range services {
		svcs = append(svcs, map[string]any{"cluster": fmt.Sprintf("c%d", s%10), "name": fmt.Sprintf("svc-%04d", s), "taskDefinition": fmt.Sprintf("f-%04d:2", s%families), "desiredCount": 0, "launchType": "FARGATE"})
	}
	raw["account"], raw["region"] = awstest.Account, awstest.Region
	raw["repositories"], raw["clusters"], raw["taskDefinitions"], raw["services"] = repositories, clusters, tds, svcs
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, err = fleet.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f, digests
}

// perRepository counts DescribeImages calls by repository.
type perRepository struct {
	rollout.ECR
	mu       sync.Mutex
	calls    map[string]int
	attempts int // HTTP requests the SDK made for those calls, its own retries included
}

func (p *perRepository) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	out, err := p.ECR.DescribeImages(ctx, in, opts...)
	attempts := 1 // a failed call fails the test anyway: the fleet is healthy
	if out != nil {
		if results, ok := retry.GetAttemptResults(out.ResultMetadata); ok && len(results.Results) > 0 {
			attempts = len(results.Results)
		}
	}
	p.mu.Lock()
	p.calls[aws.ToString(in.RepositoryName)]++
	p.attempts += attempts
	p.mu.Unlock()
	return out, err
}

func (p *perRepository) total() int {
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

func ceilDiv(n, d int) int { return (n + d - 1) / d }

// 5,000 pinned services guarded for ⌈digests/100⌉ DescribeImages calls per repository: every
// digest of their current and previous revisions described once, 100 a call, and no tag
// described on its own while every tag is where the services pinned it. (What an expired or
// archived digest costs — the refused batch split until it is isolated — and how it is
// reported are TestReconcileReports…'s.)
func TestGuarding5000ServicesCostsOneDescribeImagesPerHundredDigests(t *testing.T) {
	repos := []string{"team-a/api", "team-b/worker", "team-c/web"}
	f, digests := guardFleet(t, 5000, 240, repos)
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	emu := srv.Emulator()
	if err := emu.Load(f); err != nil {
		t.Fatal(err)
	}
	cfg := awstest.Config(t, srv.URL())
	// A new connection per request: Go's transport re-sends a request whose kept-alive
	// connection the server closed at that moment, which the emulator's log would count twice
	// (an extra logged call was seen once on a loaded machine); pinroll's calls are what this test counts.
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.DisableKeepAlives = true })
	counted := &perRepository{ECR: ecr.NewFromConfig(cfg), calls: map[string]int{}}
	engine := atHome(rollout.New(config.Config{}, ecs.NewFromConfig(cfg), counted, slog.New(slog.NewTextHandler(io.Discard, nil))))
	engine.Home().Discoverer.Pace = nil // counts, not ECS's rate: the emulator does not throttle here

	start := time.Now()
	emu.ResetCalls()
	rep, err := engine.HandleRaw(context.Background(), reconcileEvent("scale"))
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if len(rep.MissingImages) != 0 || rep.IsFailure() {
		t.Fatalf("healthy fleet: %d missing images (%s)", len(rep.MissingImages), rep.Reason)
	}
	bound := 0
	for _, r := range repos {
		want := ceilDiv(digests[r], 100)
		bound += want
		if got := counted.calls[r]; got > want {
			t.Errorf("%s: %d DescribeImages calls for %d digests, want at most %d", r, got, digests[r], want)
		}
	}
	logged := 0
	for _, c := range emu.CallLog() {
		if c.Op == "DescribeImages" {
			logged++
		}
	}
	// The emulator sees every HTTP request: pinroll's calls and the SDK's retries of them (on
	// a loaded machine a request now and then meets a transient failure and is sent again;
	// once that made 7 logged requests for 6 calls). The calls are what the bound is about.
	if retries := counted.attempts - counted.total(); logged-retries > bound || logged == 0 || logged != counted.attempts {
		t.Errorf("the emulator's call log has %d DescribeImages requests for %d calls (%d SDK retries), want at most Σ⌈digests/100⌉ = %d calls, one request each but for retries",
			logged, counted.total(), retries, bound)
	}
	t.Logf("5000 services, %v digests per repository: %d DescribeImages calls (bound %d), %v per repository, in %v", digests, logged, bound, counted.calls, elapsed.Round(time.Millisecond))

}
