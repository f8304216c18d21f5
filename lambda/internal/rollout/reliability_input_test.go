package rollout_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// Issue 6, item 4: every malformed or adversarial event of the corpus, through the whole
// engine, against a live world: an error or a skip, never a panic, and — the emulator's own
// call log says so — not one mutating call (nor any other).
func TestAdversarialEventsNeverMutate(t *testing.T) {
	files, err := filepath.Glob("../trigger/testdata/malformed/*.json")
	if err != nil || len(files) < 100 {
		t.Fatalf("want at least 100 adversarial events, found %d (%v)", len(files), err)
	}
	w, _ := matrixWorld(t)
	w.em.ResetCalls()
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := w.engine.HandleRaw(context.Background(), raw)
		switch {
		case err != nil && strings.Contains(err.Error(), "internal error"):
			t.Errorf("%s: panicked: %v", filepath.Base(path), err)
		case err == nil && rep.Outcome != report.Skipped:
			t.Errorf("%s: outcome %s, want an error or a skip", filepath.Base(path), rep.Outcome)
		}
	}
	if m := w.mutations(); len(m) != 0 {
		t.Errorf("adversarial events made mutating calls: %v", m)
	}
	if log := w.em.CallLog(); len(log) != 0 {
		t.Errorf("adversarial events made %d AWS calls, first %s", len(log), log[0].Op)
	}
	t.Logf("%d adversarial events: no panic, the emulator's call log is empty", len(files))
}

// bodies records every request body an SDK client sends, to prove what was never asked.
type bodies struct {
	base aws.HTTPClient
	mu   sync.Mutex
	sent []string
}

func (b *bodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		raw, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(raw))
		b.mu.Lock()
		b.sent = append(b.sent, req.Header.Get("X-Amz-Target")+" "+string(raw))
		b.mu.Unlock()
	}
	return b.base.Do(req)
}

func (b *bodies) mentioning(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, body := range b.sent {
		if strings.Contains(body, s) {
			out = append(out, body)
		}
	}
	return out
}

// Issue 6, item 5: scope and trust. A cluster outside PINROLL_CLUSTERS is never listed, read
// or touched (no request names it, and ListClusters is not called at all); services that
// opted out, are paused, or did not opt in when opt-in is required are never updated; an
// image from a registry account outside PINROLL_REGISTRY_ACCOUNTS is never deployed.
func TestScopeAndTrust(t *testing.T) {
	spec := fleetSpec{
		repos:    map[string][]string{"app": {"app v1", "app v2"}},
		clusters: []string{"prod", "restricted"},
		tds:      []string{taskDefJSON("api", containerJSON("app", "{{registry}}/app:latest"))},
		services: []string{
			serviceJSON("prod", "api", "api:1", "pinroll:enabled", "true"),
			serviceJSON("prod", "plain", "api:1"),
			serviceJSON("prod", "opted-out", "api:1", "pinroll:enabled", "false"),
			serviceJSON("prod", "paused", "api:1", "pinroll:enabled", "true", "pinroll:paused", "ops, incident 42"),
			serviceJSON("restricted", "secret", "api:1"),
		},
	}
	event := awstest.PushEvent("scope", awstest.Account, "app", "latest", digestOf("app v2"))
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		updated []string
	}{
		{"clusters", config.Config{Clusters: []string{"prod"}}, []string{"api", "plain"}},
		{"opt-in required", config.Config{Clusters: []string{"prod"}, RequireOptIn: true}, []string{"api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newRWorld(t, spec.build(t), config.Config{}, emulator.Options{})
			rec := &bodies{base: w.cfg.HTTPClient}
			cfg := w.cfg
			cfg.HTTPClient = rec
			w.engine = atHome(rollout.New(tc.cfg, ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg), w.engine.Log))
			w.em.ResetCalls()
			rep, err := w.engine.HandleRaw(context.Background(), event)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.mentioning("restricted"); len(got) > 0 {
				t.Errorf("requests named the cluster outside PINROLL_CLUSTERS: %v", got)
			}
			if n := w.em.Calls()["ListClusters"]; n != 0 {
				t.Errorf("ListClusters called %d times with PINROLL_CLUSTERS set", n)
			}
			if n := w.em.Calls()["UpdateService"]; n != len(tc.updated) {
				t.Errorf("UpdateService called %d times, want %d (%v)", n, len(tc.updated), tc.updated)
			}
			var changed []string
			for _, c := range rep.Changes {
				changed = append(changed, c.Service)
			}
			if strings.Join(changed, ",") != strings.Join(tc.updated, ",") {
				t.Errorf("changed %v, want %v", changed, tc.updated)
			}
			for _, svc := range []string{"opted-out", "paused", "plain"} {
				if svc == "plain" && !tc.cfg.RequireOptIn {
					continue
				}
				if arn, _ := w.images("prod", svc); !strings.HasSuffix(arn, "/api:1") {
					t.Errorf("prod/%s was moved to %s", svc, arn)
				}
			}
			if arn, _ := w.images("restricted", "secret"); !strings.HasSuffix(arn, "/api:1") {
				t.Errorf("restricted/secret was moved to %s", arn)
			}
		})
	}
	t.Run("registry accounts", func(t *testing.T) {
		w := newRWorld(t, spec.build(t), config.Config{}, emulator.Options{})
		w.em.ResetCalls()
		const other = "210987654321"
		for _, tc := range []struct {
			cfg   config.Config
			event []byte
		}{
			// The event's account is not allowed (default: only the home account).
			{config.Config{}, awstest.PushEvent("foreign", other, "app", "latest", digestOf("app v2"))},
			// An allow-list that leaves out the home account.
			{config.Config{RegistryAccounts: []string{other}}, event},
		} {
			w.engine = w.newEngine(tc.cfg)
			rep, err := w.engine.HandleRaw(context.Background(), tc.event)
			if err != nil || rep.Outcome != report.Skipped {
				t.Errorf("%+v: %v, %s (%s); want skipped", tc.cfg, err, rep.Outcome, rep.Reason)
			}
		}
		if log := w.em.CallLog(); len(log) != 0 {
			t.Errorf("an event from a registry account outside the allow-list made %d AWS calls", len(log))
		}
	})
}
