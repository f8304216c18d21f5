package rollout_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// The reliability suite runs on pinroll's emulator (faults, call log, Load) with the
// function's client policy — a timeout per HTTP attempt and the SDK's standard retryer —
// scaled down so a fault costs milliseconds: clientTimeout per attempt, tiny backoff.
const (
	clientTimeout = 1 * time.Second
	faultDelay    = 1500 * time.Millisecond // an injected Timeout outlasts the client
)

// fastConfig is the function's client policy (lambda/main.go) with short timeouts.
func fastConfig(t testing.TB, url string) aws.Config {
	cfg := awstest.Config(t, url)
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(clientTimeout)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxBackoff = 5 * time.Millisecond
			o.BaseDelay = time.Millisecond
		})
	}
	return cfg
}

// rworld is one emulator loaded with a fleet, and an engine on it.
type rworld struct {
	t      testing.TB
	srv    *emulator.Server
	em     *emulator.Emulator
	cfg    aws.Config
	ecs    *ecs.Client // fault-free reads for the checks (faults are cleared before checking)
	engine *rollout.Engine
	fleet  *fleet.Fleet
}

func newRWorld(t testing.TB, f *fleet.Fleet, pc config.Config, opts emulator.Options) *rworld {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(t, srv.URL())
	w := &rworld{t: t, srv: srv, em: srv.Emulator(), cfg: cfg, ecs: ecs.NewFromConfig(awstest.Config(t, srv.URL())), fleet: f}
	w.engine = w.newEngine(pc)
	return w
}

func (w *rworld) newEngine(pc config.Config) *rollout.Engine {
	return atHome(rollout.New(pc, ecs.NewFromConfig(w.cfg), ecr.NewFromConfig(w.cfg), slog.New(slog.DiscardHandler)))
}

func (w *rworld) handle(ctx context.Context, raw []byte) error {
	_, err := w.engine.HandleRaw(ctx, raw)
	return err
}

// revisions counts every revision of family (ACTIVE and INACTIVE).
func (w *rworld) revisions(family string) int {
	w.t.Helper()
	n := 0
	for _, status := range []types.TaskDefinitionStatus{types.TaskDefinitionStatusActive, types.TaskDefinitionStatusInactive} {
		p := ecs.NewListTaskDefinitionsPaginator(w.ecs, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				w.t.Fatalf("list task definitions %s: %v", family, err)
			}
			n += len(page.TaskDefinitionArns)
		}
	}
	return n
}

// images returns, for a service, its task definition ARN and its containers' images by name.
func (w *rworld) images(cluster, service string) (string, map[string]string) {
	w.t.Helper()
	ctx := context.Background()
	out, err := w.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil || len(out.Services) != 1 {
		w.t.Fatalf("describe service %s/%s: %v", cluster, service, err)
	}
	arn := aws.ToString(out.Services[0].TaskDefinition)
	td, err := w.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
	if err != nil {
		w.t.Fatalf("describe task definition %s: %v", arn, err)
	}
	images := map[string]string{}
	for _, c := range td.TaskDefinition.ContainerDefinitions {
		images[aws.ToString(c.Name)] = aws.ToString(c.Image)
	}
	return arn, images
}

// mutations lists the mutating calls in the emulator's call log.
func (w *rworld) mutations() []string {
	var out []string
	for _, c := range w.em.CallLog() {
		if c.Mutating {
			out = append(out, c.Op)
		}
	}
	return out
}

// fleetSpec builds fleets in Go for emulator.Load.
type fleetSpec struct {
	repos    map[string][]string // repository → seeds of images, oldest first; the last is :latest
	clusters []string
	tds      []string // task definitions JSON
	services []string // services JSON
}

func manifestOf(seed string) string { return awstest.Manifest(seed) }

// digestOf is the digest of the image built from seed.
func digestOf(seed string) string { return awstest.Digest(awstest.Manifest(seed)) }

func (s fleetSpec) build(t testing.TB) *fleet.Fleet {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"repositories":[`)
	names := make([]string, 0, len(s.repos))
	for name := range s.repos {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q,"images":[`, name)
		seeds := s.repos[name]
		for j, seed := range seeds {
			if j > 0 {
				b.WriteString(",")
			}
			tags := fmt.Sprintf(`["v%d"]`, j+1)
			if j == len(seeds)-1 {
				tags = fmt.Sprintf(`["v%d","latest"]`, j+1)
			}
			fmt.Fprintf(&b, `{"tags":%s,"manifest":%q}`, tags, manifestOf(seed))
		}
		b.WriteString("]}")
	}
	b.WriteString(`],"clusters":[`)
	for i, c := range s.clusters {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q}`, c)
	}
	b.WriteString(`],"taskDefinitions":[` + strings.Join(s.tds, ",") + `],"services":[` + strings.Join(s.services, ",") + `]}`)
	f, err := fleet.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("fleet: %v", err)
	}
	return f
}

// containerJSON is a container definition tracking image (with {{registry}}).
func containerJSON(name, image string) string {
	return fmt.Sprintf(`{"name":%q,"image":%q,"memory":256,"essential":true}`, name, image)
}

func taskDefJSON(family string, containers ...string) string {
	return fmt.Sprintf(`{"family":%q,"containerDefinitions":[%s]}`, family, strings.Join(containers, ","))
}

func serviceJSON(cluster, name, td string, tags ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(tags); i += 2 {
		m[tags[i]] = tags[i+1]
	}
	tagJSON := ""
	if len(m) > 0 {
		parts := []string{}
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
		slices.Sort(parts)
		tagJSON = `,"tags":{` + strings.Join(parts, ",") + `}`
	}
	return fmt.Sprintf(`{"cluster":%q,"name":%q,"taskDefinition":%q,"desiredCount":1%s}`, cluster, name, td, tagJSON)
}
