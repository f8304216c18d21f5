package rollout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// orderWorld: web (app + sidecar) on prod/web, api (app) on prod/api; app has v1, v2, v3
// (latest = v3), sidecar v1, v2 (latest = v2).
func orderWorld(t *testing.T) *rworld {
	return newRWorld(t, fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2", "app v3"}, "sidecar": {"sidecar v1", "sidecar v2"}},
		clusters: []string{"prod"},
		tds: []string{
			taskDefJSON("web", containerJSON("app", "{{registry}}/app:latest"), containerJSON("sidecar", "{{registry}}/sidecar:latest")),
			taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest")),
		},
		services: []string{serviceJSON("prod", "web", "web:1"), serviceJSON("prod", "api", "api:1")},
	}.build(t), config.Config{}, emulator.Options{})
}

// state is what every service runs, image by image, plus the revision count of each family.
func (w *rworld) state() string {
	var b strings.Builder
	for _, svc := range []string{"api", "web"} {
		_, images := w.images("prod", svc)
		fmt.Fprintf(&b, "%s: app=%s sidecar=%s\n", svc, images["app"], images["sidecar"])
	}
	fmt.Fprintf(&b, "revisions: api=%d web=%d\n", w.revisions("api"), w.revisions("web"))
	return b.String()
}

// Issue 6, item 2: the same event delivered 1–10 times, interleaved with other events (the
// sidecar's push, stale pushes of the app's older digests) in random orders, ends in the same
// state as each relevant event delivered once.
func TestDuplicatesInAnyInterleavingEndAsOnce(t *testing.T) {
	events := map[string][]byte{
		"app":     awstest.PushEvent("app-v3", awstest.Account, "app", "latest", digestOf("app v3")),
		"sidecar": awstest.PushEvent("sidecar-v2", awstest.Account, "sidecar", "latest", digestOf("sidecar v2")),
		"old1":    awstest.PushEvent("app-v1", awstest.Account, "app", "latest", digestOf("app v1")),
		"old2":    awstest.PushEvent("app-v2", awstest.Account, "app", "latest", digestOf("app v2")),
	}
	once := orderWorld(t)
	for _, name := range []string{"app", "sidecar"} {
		if err := once.handle(context.Background(), events[name]); err != nil {
			t.Fatal(err)
		}
	}
	want := once.state()

	rng := rand.New(rand.NewPCG(6, 6))
	for round := range 8 {
		var seq []string
		for name := range events {
			for range 1 + rng.IntN(10) {
				seq = append(seq, name)
			}
		}
		rng.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
		w := orderWorld(t)
		for _, name := range seq {
			if err := w.handle(context.Background(), events[name]); err != nil {
				t.Fatalf("round %d, %s: %v", round, name, err)
			}
		}
		if got := w.state(); got != want {
			t.Errorf("round %d (%d deliveries: %v): state\n%s\nwant (each once)\n%s", round, len(seq), seq, got, want)
		}
	}
}

// Events for D1, D2, D3 of one tag, delivered in every order, end with D3 everywhere.
func TestThreeDigestsInEveryOrderEndWithTheLast(t *testing.T) {
	perms := [][3]int{{1, 2, 3}, {1, 3, 2}, {2, 1, 3}, {2, 3, 1}, {3, 1, 2}, {3, 2, 1}}
	for _, p := range perms {
		w := orderWorld(t)
		for _, v := range p {
			ev := awstest.PushEvent(fmt.Sprintf("d%d", v), awstest.Account, "app", "latest", digestOf(fmt.Sprintf("app v%d", v)))
			if err := w.handle(context.Background(), ev); err != nil {
				t.Fatalf("order %v, D%d: %v", p, v, err)
			}
		}
		for _, svc := range []string{"api", "web"} {
			if _, images := w.images("prod", svc); !strings.HasSuffix(images["app"], "@"+digestOf("app v3")) {
				t.Errorf("order %v: prod/%s runs %s, want D3", p, svc, images["app"])
			}
		}
		if n := w.revisions("api"); n != 2 {
			t.Errorf("order %v: api has %d revisions, want 2", p, n)
		}
	}
}

// A rollback — the tag moved back to an older image, and that push deployed — is not undone
// by a late redelivery of the newer event.
func TestRedeliveredEventDoesNotUndoARollback(t *testing.T) {
	w := orderWorld(t)
	v3 := awstest.PushEvent("d3", awstest.Account, "app", "latest", digestOf("app v3"))
	if err := w.handle(context.Background(), v3); err != nil {
		t.Fatal(err)
	}
	// Roll back: latest → v2 again (the push of an existing manifest under the tag).
	if _, err := ecr.NewFromConfig(w.cfg).PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName: aws.String("app"), ImageManifest: aws.String(manifestOf("app v2")), ImageTag: aws.String("latest"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.handle(context.Background(), awstest.PushEvent("rollback", awstest.Account, "app", "latest", digestOf("app v2"))); err != nil {
		t.Fatal(err)
	}
	rep, err := w.engine.HandleRaw(context.Background(), v3)
	if err != nil || rep.Outcome != report.Skipped || !strings.Contains(rep.Reason, "stale") {
		t.Errorf("redelivered newer event after the rollback: %v, %s (%s); want skipped as stale", err, rep.Outcome, rep.Reason)
	}
	for _, svc := range []string{"api", "web"} {
		if _, images := w.images("prod", svc); !strings.HasSuffix(images["app"], "@"+digestOf("app v2")) {
			t.Errorf("prod/%s runs %s, want the rolled-back D2", svc, images["app"])
		}
	}
}
