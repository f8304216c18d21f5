package rollout_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// FuzzHandleRaw feeds arbitrary events to the whole engine against a live emulator world
// (seeded with the adversarial corpus and real pushes). It must never panic, and an event
// that does not end deployed must not have made a single mutating call — the emulator's
// call log is the witness.
func FuzzHandleRaw(f *testing.F) {
	files, err := filepath.Glob("../trigger/testdata/malformed/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if len(raw) <= 8<<10 {
			f.Add(raw)
		}
	}
	w, event := matrixWorld(f)
	f.Add(event)
	f.Add(awstest.PushEvent("old", awstest.Account, "app", "latest", digestOf("app v1")))
	f.Add(awstest.PushEvent("other-repo", awstest.Account, "app-dev", "latest", digestOf("app v2")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		w.em.ResetCalls()
		rep, err := w.engine.HandleRaw(context.Background(), raw)
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("panic: %v", err)
		}
		if err != nil || rep.Outcome != report.Deployed {
			if m := w.mutations(); len(m) > 0 {
				t.Fatalf("outcome %q, error %v, yet mutating calls %v", rep.Outcome, err, m)
			}
		}
	})
}
