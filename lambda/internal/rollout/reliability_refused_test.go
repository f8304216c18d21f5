package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// A failure no retry can fix is not reported as one a retry will fix. A task definition with
// 48 tags of its own (ECS allows 50; pinroll adds 4) cannot be re-registered: that service
// fails for good, with the numbers, while the healthy service of the same push deploys, and
// the event is no error — so Lambda does not retry it twice into the dead-letter queue.
func TestServiceAtTheTagLimitFailsForGoodWhileTheOthersDeploy(t *testing.T) {
	var tags []string
	for i := range 48 {
		tags = append(tags, fmt.Sprintf(`{"key":"team-tag-%02d","value":"v"}`, i))
	}
	tagged := fmt.Sprintf(`{"family":"tagged","containerDefinitions":[%s],"tags":[%s]}`,
		containerJSON("app", "{{registry}}/app:latest"), strings.Join(tags, ","))
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}},
		clusters: []string{"prod"},
		tds:      []string{tagged, taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest"))},
		services: []string{serviceJSON("prod", "tagged", "tagged:1"), serviceJSON("prod", "api", "api:1")},
	}.build(t)
	w := newRWorld(t, f, config.Config{}, emulator.Options{})
	event := awstest.PushEvent("tags", awstest.Account, "app", "latest", digestOf("app v2"))
	ctx := context.Background()

	for delivery := 1; delivery <= 2; delivery++ {
		rep, err := w.engine.HandleRaw(ctx, event)
		if err != nil {
			t.Fatalf("delivery %d: %v; want no error (a retry cannot help)", delivery, err)
		}
		if len(rep.Failed) != 1 || rep.Failed[0].Service != "tagged" || rep.Failed[0].Account != awstest.Account {
			t.Fatalf("delivery %d: failed = %+v; want prod/tagged in account %s", delivery, rep.Failed, awstest.Account)
		}
		for _, want := range []string{"48 tags of its own", "pinroll adds 4", "ECS allows 50"} {
			if !strings.Contains(rep.Failed[0].Why, want) {
				t.Errorf("delivery %d: why %q does not say %q", delivery, rep.Failed[0].Why, want)
			}
		}
		if !rep.IsFailure() {
			t.Errorf("delivery %d: a report with a failed service is not flagged as a failure", delivery)
		}
		switch {
		case delivery == 1 && (rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Service != "api"):
			t.Errorf("first delivery: %s %+v; want prod/api deployed", rep.Outcome, rep.Changes)
		case delivery == 2 && (rep.Outcome != report.EventFailed || len(rep.Changes) != 0 || len(rep.Unchanged) != 1):
			// Nothing left that can deploy: api is current, tagged still cannot be registered.
			t.Errorf("redelivery: %s, changes %+v, unchanged %+v; want failed, none, prod/api", rep.Outcome, rep.Changes, rep.Unchanged)
		}
	}
	if n := w.revisions("tagged"); n != 1 {
		t.Errorf("tagged has %d revisions, want 1 (nothing registered)", n)
	}
	if n := w.revisions("api"); n != 2 {
		t.Errorf("api has %d revisions, want 2", n)
	}
	if _, images := w.images("prod", "api"); !strings.HasSuffix(images["app"], "@"+digestOf("app v2")) {
		t.Errorf("prod/api runs %s", images["app"])
	}
}

// A task definition that pinning pushes past ECS's 64 KiB limit fails for good (ECS's
// ClientException, with its numbers), while the healthy service of the same push deploys and
// the event is no error.
func TestServicePastTheSizeLimitFailsForGoodWhileTheOthersDeploy(t *testing.T) {
	build := func(pad int) string {
		var env []string
		for i := 0; i < 250; i++ {
			env = append(env, fmt.Sprintf(`{"name":"VAR_%04d","value":%q}`, i, strings.Repeat("x", 200)))
		}
		env = append(env, fmt.Sprintf(`{"name":"PAD","value":%q}`, strings.Repeat("y", pad)))
		big := fmt.Sprintf(`{"name":"app","image":"{{registry}}/app:latest","memory":256,"essential":true,"environment":[%s]}`, strings.Join(env, ","))
		return taskDefJSON("big", big)
	}
	// The largest padding ECS (the emulator, as ECS) still accepts: the original fits, and
	// pinning (a digest in the image, four audit tags) pushes it over.
	fits := func(pad int) bool {
		srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		f := fleetSpec{repos: map[string][]string{"app": {"app v1"}}, clusters: []string{"prod"}, tds: []string{build(pad)}}.build(t)
		return srv.Emulator().Load(f) == nil
	}
	lo, hi := 0, 1<<16 // fits(lo), !fits(hi)
	if !fits(lo) {
		t.Fatal("250 variables of 200 bytes do not fit in 64 KiB")
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	pad := lo
	f := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}},
		clusters: []string{"prod"},
		tds:      []string{build(pad), taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest"))},
		services: []string{serviceJSON("prod", "big", "big:1"), serviceJSON("prod", "api", "api:1")},
	}.build(t)
	w := newRWorld(t, f, config.Config{}, emulator.Options{})
	rep, err := w.engine.HandleRaw(context.Background(), awstest.PushEvent("size", awstest.Account, "app", "latest", digestOf("app v2")))
	if err != nil {
		t.Fatalf("push: %v; want no error (a retry cannot help)", err)
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Service != "big" || !strings.Contains(rep.Failed[0].Why, "65536") {
		t.Fatalf("failed = %+v; want prod/big with ECS's size limit", rep.Failed)
	}
	if rep.Outcome != report.Deployed || len(rep.Changes) != 1 || rep.Changes[0].Service != "api" {
		t.Errorf("push: %s %+v; want prod/api deployed beside the failure", rep.Outcome, rep.Changes)
	}
	if n := w.revisions("big"); n != 1 {
		t.Errorf("big has %d revisions, want 1", n)
	}
	if strings.Contains(rep.Failed[0].Why, "RequestID") {
		t.Errorf("the reason carries the SDK's transport details: %s", rep.Failed[0].Why)
	}
	t.Logf("refused: %s", rep.Failed[0].Why)
}
